"""Forecast model inputs and targets, computed by ONE set of functions for training, backtests and the device.

* :func:`calendar_features` — hour-of-day, day-of-week and day-of-year as sin/cos pairs ``(n, k)``.
* :func:`input_features` — the model's input channels ``(n, F)`` from raw rows: each value column
  as a level, a change from the previous row, or a log-return, followed by the calendar encodings.
* :func:`target_matrix` / :func:`invert_targets` — what the model predicts for an origin ``t``
  and horizon steps ``h = 1..H`` (``level``: ``y[t+h]``; ``change``: ``y[t+h] - y[t]``;
  ``log_return``: ``log(y[t+h] / y[t])``, the default for prices) and back to levels.

:class:`FeatureSpec` describes them; it travels in the run directory and in the bundle manifest
(``manifest["forecast"]``), so the device computes exactly what training computed. NumPy only.

>>> spec = FeatureSpec(columns=("y",), target="y", input_steps=3, horizon=2, target_transform="change")
>>> y = np.array([[1.0], [2.0], [4.0], [7.0], [11.0]])
>>> target_matrix(y[:, 0], np.array([2]), 2, "change").tolist()
[[3.0, 7.0]]
>>> invert_targets(np.array([[3.0, 7.0]]), np.array([4.0]), "change").tolist()
[[7.0, 11.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.data.windowing import segment_windows
from har_edge.errors import DataError

__all__ = ["TRANSFORMS", "CALENDAR_FEATURES", "FeatureSpec", "calendar_features", "input_features", "target_matrix",
           "invert_targets", "input_windows"]

TRANSFORMS = ("level", "change", "log_return")
CALENDAR_FEATURES = ("hour_sin", "hour_cos", "dow_sin", "dow_cos", "doy_sin", "doy_cos")
_DAY_S = 86400.0
_YEAR_DAYS = 365.2425


@dataclass(frozen=True)
class FeatureSpec:
    """How raw rows become model inputs and targets.

    Attributes:
        columns: value columns in input order (the series' own order).
        target: the forecast column (one of ``columns``).
        input_steps: rows in one input window (W).
        horizon: steps forecast (H).
        target_transform: ``level`` | ``change`` | ``log_return`` (see the module docstring).
        input_transform: the same choice applied row to row to every value column's input.
        calendar: names from :data:`CALENDAR_FEATURES` appended as input channels.
    """

    columns: tuple[str, ...]
    target: str
    input_steps: int
    horizon: int
    target_transform: str = "change"
    input_transform: str = "level"
    calendar: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.target not in self.columns:
            raise DataError(f"target {self.target!r} is not one of the columns {list(self.columns)}")
        for name, value in (("target_transform", self.target_transform), ("input_transform", self.input_transform)):
            if value not in TRANSFORMS:
                raise DataError(f"{name}={value!r}; expected one of {TRANSFORMS}")
        unknown = [c for c in self.calendar if c not in CALENDAR_FEATURES]
        if unknown:
            raise DataError(f"calendar features {unknown} unknown; expected names from {CALENDAR_FEATURES}")
        if self.input_steps < 2 or self.horizon < 1:
            raise DataError(f"input_steps={self.input_steps}, horizon={self.horizon}; expected input_steps >= 2, horizon >= 1")

    @property
    def target_index(self) -> int:
        return self.columns.index(self.target)

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Input channel names ``(F,)``: ``<column>`` / ``<column>_change`` / ``<column>_logret``, then calendar."""
        suffix = {"level": "", "change": "_change", "log_return": "_logret"}[self.input_transform]
        return tuple(f"{c}{suffix}" for c in self.columns) + tuple(self.calendar)

    @property
    def history_rows(self) -> int:
        """Raw rows needed for one forecast: W, plus one for a row-to-row input transform."""
        return self.input_steps + (0 if self.input_transform == "level" else 1)

    def to_dict(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "target": self.target, "input_steps": self.input_steps,
                "horizon": self.horizon, "target_transform": self.target_transform,
                "input_transform": self.input_transform, "calendar": list(self.calendar)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        try:
            return cls(columns=tuple(d["columns"]), target=str(d["target"]), input_steps=int(d["input_steps"]),
                       horizon=int(d["horizon"]), target_transform=str(d["target_transform"]),
                       input_transform=str(d["input_transform"]), calendar=tuple(d.get("calendar", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"forecast feature spec is malformed ({exc}): {d!r:.200}") from exc


def calendar_features(times_s: NDArray[np.floating], names: tuple[str, ...]) -> NDArray[np.float64]:
    """Sin/cos encodings ``(n, len(names))`` of Unix times ``(n,)`` (clock time as written, UTC)."""
    t = np.asarray(times_s, dtype=np.float64)
    out = np.empty((t.shape[0], len(names)))
    day_frac = np.mod(t, _DAY_S) / _DAY_S
    days = np.floor(t / _DAY_S)
    dow_frac = np.mod(days + 3, 7) / 7.0  # 1970-01-01 was a Thursday: Monday = 0
    stamps = t.astype("datetime64[s]")
    doy = (stamps.astype("datetime64[D]") - stamps.astype("datetime64[Y]")).astype(np.float64) + day_frac
    doy_frac = doy / _YEAR_DAYS
    fracs = {"hour": day_frac, "dow": dow_frac, "doy": doy_frac}
    for j, name in enumerate(names):
        kind, fn = name.split("_")
        angle = 2 * np.pi * fracs[kind]
        out[:, j] = np.sin(angle) if fn == "sin" else np.cos(angle)
    return out


def _rowwise(values: NDArray[np.float64], transform: str) -> NDArray[np.float64]:
    """Row-to-row transform ``(n, c)`` → ``(n, c)``; row 0 is NaN for ``change`` / ``log_return``."""
    if transform == "level":
        return values
    out = np.full_like(values, np.nan)
    if transform == "change":
        out[1:] = np.diff(values, axis=0)
    else:
        if (values <= 0).any():
            raise DataError("log_return needs positive values; the series has values <= 0")
        out[1:] = np.diff(np.log(values), axis=0)
    return out


def input_features(times_s: NDArray[np.floating], values: NDArray[np.floating], spec: FeatureSpec) -> NDArray[np.float64]:
    """Model input channels ``(n, F)`` for raw rows ``values`` ``(n, len(spec.columns))`` at ``times_s`` ``(n,)``.

    With a row-to-row ``input_transform`` row 0 is NaN (it has no previous row).
    """
    if values.ndim != 2 or values.shape[1] != len(spec.columns):
        raise DataError(f"values shape {values.shape}; expected (n, {len(spec.columns)}) for columns {list(spec.columns)}")
    feats = _rowwise(np.asarray(values, dtype=np.float64), spec.input_transform)
    if spec.calendar:
        feats = np.concatenate([feats, calendar_features(times_s, spec.calendar)], axis=1)
    return feats


def input_windows(features: NDArray[np.floating], origins: NDArray[np.integer], input_steps: int) -> NDArray[np.float64]:
    """Input windows ``(k, W, F)`` ending at each origin row (inclusive), cut by :func:`segment_windows`."""
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and (origins.min() < input_steps - 1 or origins.max() >= features.shape[0]):
        raise DataError(f"origins {origins.min()}..{origins.max()} need {input_steps} rows before them within "
                        f"{features.shape[0]} rows")
    windows = segment_windows(features, input_steps, 1, where="features")
    return np.asarray(windows[origins - (input_steps - 1)], dtype=np.float64)


def target_matrix(level: NDArray[np.floating], origins: NDArray[np.integer], horizon: int, transform: str) -> NDArray[np.float64]:
    """Targets ``(k, H)`` for origins ``(k,)`` of the target column ``level`` ``(n,)``: steps ``t+1..t+H``."""
    level = np.asarray(level, dtype=np.float64)
    origins = np.asarray(origins, dtype=np.int64)
    if origins.size and origins.max() + horizon >= level.shape[0]:
        raise DataError(f"origin {origins.max()} + horizon {horizon} is past the last row {level.shape[0] - 1}")
    spans = segment_windows(level, horizon + 1, 1, where="target")[origins]  # (k, H+1): y[t], ..., y[t+H]
    base, future = spans[:, :1], spans[:, 1:]
    if transform == "level":
        return np.array(future)
    if transform == "change":
        return future - base
    if transform == "log_return":
        return np.log(future / base)
    raise DataError(f"target transform {transform!r}; expected one of {TRANSFORMS}")


def invert_targets(z: NDArray[np.floating], last_level: NDArray[np.floating], transform: str) -> NDArray[np.float64]:
    """Levels ``(k, H)`` from model targets ``z`` ``(k, H)`` and the origin levels ``(k,)``."""
    zz: NDArray[np.float64] = np.array(z, dtype=np.float64)
    base = np.asarray(last_level, dtype=np.float64).reshape(-1, 1)
    if transform == "level":
        return zz
    if transform == "change":
        return base + zz
    if transform == "log_return":
        return base * np.exp(zz)
    raise DataError(f"target transform {transform!r}; expected one of {TRANSFORMS}")
