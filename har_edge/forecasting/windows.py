"""Chronological splits, rolling origins and (input window, horizon) pairs of a series.

Windows are cut by :func:`har_edge.data.windowing.segment_windows` (through
:func:`~har_edge.data.forecast_features.input_windows` and
:func:`~har_edge.data.forecast_features.target_matrix`), the function the activity path uses.
An origin ``t`` is the last input row; its targets are rows ``t+1..t+H``.

Spans (row indices, inclusive ends): train ``[0, train_end]``, validation ``(train_end, validation_end]``,
test ``(validation_end, n-1]``. Training origins have all their targets in the training span,
validation origins in the validation span; the backtest origins start at ``validation_end``
(the last row before the test span) and step by ``origin_every`` while ``H`` further rows exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from har_edge.data.forecast_features import FeatureSpec, input_features, input_windows, target_matrix
from har_edge.data.series import Series, iso
from har_edge.errors import DataError
from har_edge.forecasting.config import ForecastConfig

__all__ = ["Spans", "split_spans", "rolling_origins", "WindowPairs", "window_pairs"]


@dataclass(frozen=True)
class Spans:
    """Last row of the training and validation spans (inclusive) and the number of rows."""

    train_end: int
    validation_end: int
    n_rows: int

    def describe(self, series: Series) -> dict[str, object]:
        t = series.times_s
        return {"train": [iso(t[0]), iso(t[self.train_end])], "validation": [iso(t[self.train_end + 1]), iso(t[self.validation_end])],
                "test": [iso(t[self.validation_end + 1]), iso(t[-1])],
                "rows": {"train": self.train_end + 1, "validation": self.validation_end - self.train_end,
                         "test": self.n_rows - 1 - self.validation_end}}


def split_spans(series: Series, cfg: ForecastConfig) -> Spans:
    """The pinned chronological split of ``series`` by ``cfg.split`` (dates or row fractions)."""
    s, n = cfg.split, len(series)
    if s.train_end:
        train_end = series.index_at_or_before(s.train_end)
        val_end = series.index_at_or_before(s.validation_end)
    else:
        test_start = int(round(n * (1 - s.test_fraction)))
        val_end = test_start - 1
        train_end = int(round(n * (1 - s.test_fraction - s.validation_fraction))) - 1
    H = cfg.features.horizon
    if not 0 < train_end < val_end < n - 1 - H:
        raise DataError(f"split leaves train rows 0..{train_end}, validation ..{val_end}, test ..{n - 1}: each span needs rows "
                        f"(and the test span more than the horizon {H})")
    return Spans(train_end, val_end, n)


def rolling_origins(first: int, n_rows: int, horizon: int, every: int) -> NDArray[np.int64]:
    """Origins ``first, first+every, ...`` while ``horizon`` further rows exist (``t + H <= n_rows - 1``)."""
    if every < 1:
        raise DataError(f"origin_every={every}; expected >= 1")
    return np.arange(first, n_rows - horizon, every, dtype=np.int64)


@dataclass(frozen=True)
class WindowPairs:
    """Model inputs ``X`` ``(k, W, F)`` and targets ``Y`` ``(k, H)`` (transformed, not normalised) at ``origins``."""

    X: NDArray[np.float64]
    Y: NDArray[np.float64]
    origins: NDArray[np.int64]


def window_pairs(series: Series, spec: FeatureSpec, origins: NDArray[np.int64], *,
                 features: NDArray[np.float64] | None = None) -> WindowPairs:
    """(input, horizon) pairs at ``origins`` (features computed by the device's own function)."""
    feats = input_features(series.times_s, series.values, spec) if features is None else features
    origins = np.asarray(origins, dtype=np.int64)
    origins = origins[origins >= spec.history_rows - 1]
    X = input_windows(feats, origins, spec.input_steps)
    Y = target_matrix(series.column(spec.target), origins, spec.horizon, spec.target_transform)
    return WindowPairs(X=X, Y=Y, origins=origins)


def training_origins(spans: Spans, spec: FeatureSpec) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Origins whose targets lie wholly in the training span, and in the validation span."""
    H, first = spec.horizon, spec.history_rows - 1
    train = np.arange(first, spans.train_end - H + 1, dtype=np.int64)
    val = np.arange(max(first, spans.train_end), spans.validation_end - H + 1, dtype=np.int64)
    if len(train) == 0 or len(val) == 0:
        raise DataError(f"no training ({len(train)}) or validation ({len(val)}) windows of {spec.input_steps} + {H} rows")
    return train, val
