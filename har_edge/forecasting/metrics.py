"""Forecast accuracy metrics: pure ``(y_true, y_pred) -> float`` functions (NumPy, no state).

Arrays may be any shape; per-step figures are the same functions applied to one column of
``(k, H)`` forecasts. ``skill = 1 - MAE / MAE_naive``: above 0 the method beats the random walk.

>>> mae(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
0.5
>>> round(smape(np.array([100.0]), np.array([110.0])), 4)
9.5238
>>> skill(1.5, 2.0)
0.25
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError

__all__ = ["mae", "rmse", "mase", "smape", "skill", "seasonal_naive_scale", "direction_accuracy", "up_move_share"]

_A = NDArray[np.floating]


def _pair(y_true: _A, y_pred: _A) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    a, b = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape or a.size == 0:
        raise DataError(f"y_true {a.shape} and y_pred {b.shape} must have the same non-empty shape")
    return a, b


def mae(y_true: _A, y_pred: _A) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def rmse(y_true: _A, y_pred: _A) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mase(y_true: _A, y_pred: _A, scale: float) -> float:
    """MAE divided by ``scale``, the in-sample seasonal-naive MAE (:func:`seasonal_naive_scale`)."""
    if not scale > 0:
        raise DataError(f"MASE scale {scale}; expected > 0")
    return mae(y_true, y_pred) / scale


def smape(y_true: _A, y_pred: _A) -> float:
    """Symmetric MAPE in percent: ``100 · mean(|y - ŷ| / ((|y| + |ŷ|) / 2))`` (0/0 counts as 0)."""
    a, b = _pair(y_true, y_pred)
    denom = (np.abs(a) + np.abs(b)) / 2
    ratio = np.divide(np.abs(a - b), denom, out=np.zeros_like(a), where=denom > 0)
    return float(100 * np.mean(ratio))


def skill(mae_method: float, mae_naive: float) -> float:
    """``1 - mae_method / mae_naive``: 0 = as good as naive, 1 = perfect, < 0 worse than naive."""
    if not mae_naive > 0:
        raise DataError(f"naive MAE {mae_naive}; expected > 0")
    return 1.0 - mae_method / mae_naive


def seasonal_naive_scale(y_in_sample: _A, m: int) -> float:
    """In-sample MAE of the m-step seasonal naive forecast ``y[t] ≈ y[t-m]`` (MASE's denominator)."""
    y = np.asarray(y_in_sample, dtype=np.float64)
    if y.shape[0] <= m:
        raise DataError(f"{y.shape[0]} in-sample values; need more than the season {m}")
    return float(np.mean(np.abs(y[m:] - y[:-m])))


def direction_accuracy(y_true: _A, y_pred: _A, last: _A) -> float:
    """Share of forecasts that move the same way as the truth from the origin value ``last``.

    Cases where either truth or forecast does not move are left out (NaN if nothing is left).
    """
    a, b = _pair(y_true, y_pred)
    base = np.broadcast_to(np.asarray(last, dtype=np.float64), a.shape)
    st, sp = np.sign(a - base), np.sign(b - base)
    moved = (st != 0) & (sp != 0)
    return float(np.mean(st[moved] == sp[moved])) if moved.any() else float("nan")


def up_move_share(y_true: _A, last: _A) -> float:
    """Share of true moves (``y ≠ last``) that go up: the direction accuracy of "always up"."""
    a = np.asarray(y_true, dtype=np.float64)
    d = a - np.broadcast_to(np.asarray(last, dtype=np.float64), a.shape)
    moved = d != 0
    return float(np.mean(d[moved] > 0)) if moved.any() else float("nan")
