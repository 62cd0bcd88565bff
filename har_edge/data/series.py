"""The one loader of time series: a CSV with a time column (or year/month/day/hour columns) and value columns.

It reads the four forecasting data sets (Beijing hourly weather, Melbourne daily temperatures,
USD/IDR, BBCA.JK) and a user's own files, for training (``har-edge forecast train``) and for
replay on the device (``har-edge run --bundle FORECASTER --source csv:…``). NumPy only.

Why not :mod:`har_edge.data.csv_format`: that reader parses all-numeric recording rows in numpy
blocks; series files carry date strings (``2010-01-01``, quoted or not), ``NA`` markers and text
columns (Beijing's wind direction) that are simply not read. The standard library's ``csv``
module splits the fields; numpy converts the chosen columns.

Nothing is silent:

* **spacing** ``regular``: every step of ``step_s`` must be present. Missing steps are refused
  (``fill = "refuse"``, the default) or inserted and filled by the named rule (``interpolate``:
  linear in time; ``ffill``: the last value), and counted.
* **spacing** ``rows``: each row is one step (business or trading days); calendar gaps are allowed
  and reported (the largest gap), not filled.
* NaN / ``NA`` / empty values of the chosen columns: refused, or filled by the same rule, counted.
* ``drop_zero`` columns: rows where such a column is 0 are dropped and counted (BBCA's 119
  zero-volume rows are non-trading days).
* Duplicate or decreasing timestamps and off-grid times are always refused.

Times are Unix seconds (float64). Date strings without a zone are read as UTC, so calendar
features see the clock time written in the file.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.data.units import normalise_unit_name
from har_edge.errors import DataError

__all__ = ["FILL_RULES", "SPACINGS", "SeriesSpec", "Series", "SeriesReport", "load_series", "parse_times", "parse_step"]

log = logging.getLogger(__name__)

FILL_RULES = ("refuse", "interpolate", "ffill")
SPACINGS = ("regular", "rows")
_MISSING = {"", "na", "nan", "null", "none", "n/a", "#n/a"}
_STEP_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400}


def parse_step(text: str | float | int) -> float:
    """``"1h"`` / ``"30min"`` / ``"1d"`` / ``"15s"`` or a number of seconds → seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        t = str(text).strip().lower()
        unit = next((u for u in sorted(_STEP_UNITS, key=len, reverse=True) if t.endswith(u)), None)
        try:
            value = float(t[: -len(unit)] if unit else t) * (_STEP_UNITS[unit] if unit else 1)
        except ValueError:
            value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise DataError(f"step={text!r}; expected a positive duration like '1h', '1d', '30min' or seconds")
    return value


@dataclass(frozen=True)
class SeriesSpec:
    """Where a series is and how to read it (the ``[series]`` table of a forecast config).

    Attributes:
        path: the CSV file (relative paths are resolved against the data root by the caller).
        columns: value columns to read, in this order; the first is not special (see ``target``).
        units: one declared unit per column (see :mod:`har_edge.data.units`).
        target: the column to forecast.
        time_column: a column of ISO dates/datetimes or Unix seconds; or
        time_parts: ``["year", "month", "day"[, "hour"[, "minute"]]]`` column names, in that order.
        step: the nominal step (``"1h"``, ``"1d"``).
        spacing: ``regular`` (every step present) or ``rows`` (a row is a step: business days).
        fill: ``refuse`` | ``interpolate`` | ``ffill`` for missing steps and missing values.
        drop_zero: rows where one of these columns is 0 are dropped (counted).
    """

    path: str = ""
    columns: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    target: str = ""
    time_column: str = ""
    time_parts: tuple[str, ...] = ()
    step: str = "1h"
    spacing: str = "regular"
    fill: str = "refuse"
    drop_zero: tuple[str, ...] = ()

    @property
    def step_s(self) -> float:
        return parse_step(self.step)

    def check(self, where: str = "series") -> None:
        """Raise :class:`DataError` on an inconsistent spec."""
        if not self.path:
            raise DataError(f"{where}: path is empty; expected the CSV file")
        if not self.columns:
            raise DataError(f"{where}: columns is empty; expected the value column names")
        if len(set(self.columns)) != len(self.columns):
            raise DataError(f"{where}: columns {list(self.columns)} repeat a name")
        if len(self.units) != len(self.columns):
            raise DataError(f"{where}: {len(self.units)} units for {len(self.columns)} columns; give one unit per column")
        for u in self.units:
            normalise_unit_name(u)
        if self.target not in self.columns:
            raise DataError(f"{where}: target={self.target!r} is not one of columns {list(self.columns)}")
        if bool(self.time_column) == bool(self.time_parts):
            raise DataError(f"{where}: give exactly one of time_column (a date or Unix-seconds column) and "
                            "time_parts (e.g. ['year', 'month', 'day', 'hour'])")
        if self.time_parts and not 3 <= len(self.time_parts) <= 5:
            raise DataError(f"{where}: time_parts={list(self.time_parts)}; expected [year, month, day[, hour[, minute]]]")
        if self.spacing not in SPACINGS:
            raise DataError(f"{where}: spacing={self.spacing!r}; expected one of {SPACINGS}")
        if self.fill not in FILL_RULES:
            raise DataError(f"{where}: fill={self.fill!r}; expected one of {FILL_RULES}")
        self.step_s  # noqa: B018 - validates the step


@dataclass(frozen=True)
class SeriesReport:
    """What the loader did: every dropped row and filled value is counted here."""

    rows_read: int = 0
    rows_dropped_zero: int = 0
    steps_missing: int = 0
    steps_filled: int = 0
    values_missing: int = 0
    values_filled: int = 0
    fill: str = "refuse"
    largest_gap_s: float = 0.0
    first_filled_times: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Series:
    """A loaded series: ``times_s`` ``(n,)`` Unix seconds, ``values`` ``(n, c)`` float64 in ``columns`` order."""

    times_s: NDArray[np.float64]
    values: NDArray[np.float64]
    columns: tuple[str, ...]
    units: tuple[str, ...]
    step_s: float
    spacing: str
    report: SeriesReport = field(default_factory=SeriesReport)

    def __len__(self) -> int:
        return int(self.times_s.shape[0])

    def column(self, name: str) -> NDArray[np.float64]:
        if name not in self.columns:
            raise DataError(f"column {name!r} not in the series {list(self.columns)}")
        return self.values[:, self.columns.index(name)]

    def index_at_or_before(self, when: str | float) -> int:
        """Index of the last row whose time is ≤ ``when`` (ISO string or Unix seconds)."""
        t = float(parse_times([when])[0]) if isinstance(when, str) else float(when)
        i = int(np.searchsorted(self.times_s, t, side="right")) - 1
        if i < 0:
            raise DataError(f"{when!r} is before the first row of the series ({iso(self.times_s[0])})")
        return i


def iso(t: float) -> str:
    """Unix seconds → ``YYYY-MM-DDTHH:MM:SS`` (UTC)."""
    return str(np.datetime64(int(round(t)), "s"))


def parse_times(texts: Any, *, where: str = "time column") -> NDArray[np.float64]:
    """ISO dates/datetimes (``2010-01-01``, ``2010-01-01 23:00``) or Unix seconds → Unix seconds ``(n,)``."""
    arr = [str(t).strip().strip('"') for t in texts]
    if not arr:
        return np.zeros(0)
    try:
        return np.asarray([float(t) for t in arr], dtype=np.float64)
    except ValueError:
        pass
    try:
        stamps = np.asarray(arr, dtype="datetime64[s]")
    except ValueError as exc:
        bad = next((t for t in arr if not _parses(t)), arr[0])
        raise DataError(f"{where}: {bad!r} is neither a date/datetime (YYYY-MM-DD[ HH:MM[:SS]]) nor Unix seconds") from exc
    return stamps.astype(np.int64).astype(np.float64)


def _parses(text: str) -> bool:
    try:
        np.datetime64(text, "s")
        return True
    except ValueError:
        return False


def _read_columns(path: Path, wanted: list[str]) -> tuple[dict[str, list[str]], int]:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file; expected a header line") from None
        missing = [w for w in wanted if w not in header]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; the header is {','.join(header)}")
        idx = [header.index(w) for w in wanted]
        out: dict[str, list[str]] = {w: [] for w in wanted}
        n = 0
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DataError(f"{path}: line {lineno} has {len(row)} fields; expected {len(header)}")
            for w, i in zip(wanted, idx):
                out[w].append(row[i])
            n += 1
    if n == 0:
        raise DataError(f"{path}: no data rows")
    return out, n


def _numbers(texts: list[str], name: str, path: Path) -> NDArray[np.float64]:
    vals = np.empty(len(texts))
    for i, t in enumerate(texts):
        s = t.strip()
        if s.lower() in _MISSING:
            vals[i] = np.nan
            continue
        try:
            vals[i] = float(s)
        except ValueError:
            raise DataError(f"{path}: line {i + 2}, column {name!r}: {s[:40]!r} is not a number (or NA)") from None
    return vals


def _times(cols: dict[str, list[str]], spec: SeriesSpec, path: Path) -> NDArray[np.float64]:
    if spec.time_column:
        return parse_times(cols[spec.time_column], where=f"{path}: column {spec.time_column!r}")
    parts = [_numbers(cols[c], c, path) for c in spec.time_parts]
    if any(np.isnan(p).any() for p in parts):
        raise DataError(f"{path}: a time column of {list(spec.time_parts)} has missing values")
    y, mo, d = (p.astype(np.int64) for p in parts[:3])
    days = np.asarray([f"{a:04d}-{b:02d}-{c:02d}" for a, b, c in zip(y, mo, d)], dtype="datetime64[D]")
    t = days.astype("datetime64[s]").astype(np.int64).astype(np.float64)
    if len(parts) > 3:
        t += parts[3] * 3600.0
    if len(parts) > 4:
        t += parts[4] * 60.0
    return t


def _fill(values: NDArray[np.float64], times: NDArray[np.float64], rule: str) -> NDArray[np.float64]:
    """Fill NaNs of each column by ``rule`` (``interpolate``: linear in time; ``ffill``: last value)."""
    out = values.copy()
    for j in range(out.shape[1]):
        col = out[:, j]
        bad = np.isnan(col)
        if not bad.any():
            continue
        good = np.flatnonzero(~bad)
        if good.size == 0:
            raise DataError(f"column {j}: every value is missing; nothing to fill from")
        if rule == "interpolate":
            col[bad] = np.interp(times[bad], times[good], col[good])
        else:  # ffill; values before the first good one take the first good value
            idx = np.where(~bad, np.arange(len(col)), 0)
            np.maximum.accumulate(idx, out=idx)
            idx[: good[0]] = good[0]
            col[:] = col[idx]
    return out


def load_series(spec: SeriesSpec, *, base_dir: str | Path | None = None) -> Series:
    """Read ``spec.path`` (relative to ``base_dir`` when relative) into a checked :class:`Series`.

    Raises:
        DataError: the file, a column or a value is wrong, times repeat or go backwards, or a
            missing step / value meets ``fill = "refuse"`` (the message gives the count and the first one).
    """
    spec.check()
    path = Path(spec.path)
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    wanted = list(dict.fromkeys([*((spec.time_column,) if spec.time_column else spec.time_parts),
                                 *spec.columns, *spec.drop_zero]))
    cols, n_read = _read_columns(path, wanted)
    times = _times(cols, spec, path)
    values = np.stack([_numbers(cols[c], c, path) for c in spec.columns], axis=1)
    keep = np.ones(len(times), bool)
    for c in spec.drop_zero:
        keep &= _numbers(cols[c], c, path) != 0
    n_zero = int((~keep).sum())
    times, values = times[keep], values[keep]
    steps = np.diff(times)
    if (steps <= 0).any():
        i = int(np.flatnonzero(steps <= 0)[0])
        raise DataError(f"{path}: time {iso(times[i + 1])} does not come after {iso(times[i])} (duplicate or "
                        "unsorted rows); sort the file and remove duplicates")
    step_s = spec.step_s
    n_missing_steps, largest_gap = 0, float(steps.max(initial=0.0))
    first_filled: list[str] = []
    if spec.spacing == "regular":
        offsets = (times - times[0]) / step_s
        if not np.allclose(offsets, np.round(offsets), atol=1e-6):
            i = int(np.flatnonzero(~np.isclose(offsets, np.round(offsets), atol=1e-6))[0])
            raise DataError(f"{path}: time {iso(times[i])} is not on the {spec.step} grid starting {iso(times[0])}")
        k = np.round(offsets).astype(np.int64)
        n_missing_steps = int(k[-1] + 1 - len(k))
        if n_missing_steps:
            full_times = times[0] + np.arange(k[-1] + 1) * step_s
            absent = np.setdiff1d(np.arange(k[-1] + 1), k)
            first_filled = [iso(full_times[i]) for i in absent[:5]]
            if spec.fill == "refuse":
                raise DataError(f"{path}: {n_missing_steps} missing step(s) of {spec.step} (first at {first_filled[0]}); "
                                "set fill = \"interpolate\" or \"ffill\" in [series] to fill them (they are counted)")
            full = np.full((k[-1] + 1, values.shape[1]), np.nan)
            full[k] = values
            times, values = full_times, full
    n_missing_values = int(np.isnan(values).sum()) - n_missing_steps * values.shape[1]
    if n_missing_values:
        rows = np.flatnonzero(np.isnan(values).any(axis=1))
        if spec.fill == "refuse":
            raise DataError(f"{path}: {n_missing_values} missing value(s) in {list(spec.columns)} (first at "
                            f"{iso(times[rows[0]])}); set fill = \"interpolate\" or \"ffill\" in [series] to fill them")
        first_filled = first_filled or [iso(times[i]) for i in rows[:5]]
    if np.isnan(values).any():
        values = _fill(values, times, spec.fill)
    report = SeriesReport(rows_read=n_read, rows_dropped_zero=n_zero, steps_missing=n_missing_steps,
                          steps_filled=n_missing_steps, values_missing=n_missing_values, values_filled=n_missing_values,
                          fill=spec.fill, largest_gap_s=largest_gap, first_filled_times=tuple(first_filled))
    if n_zero or n_missing_steps or n_missing_values:
        log.info("%s: %s", path, report.to_dict())
    return Series(times_s=times, values=values, columns=tuple(spec.columns),
                  units=tuple(normalise_unit_name(u) for u in spec.units), step_s=step_s, spacing=spec.spacing, report=report)
