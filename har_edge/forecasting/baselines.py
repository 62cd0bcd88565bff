"""What a user gets for free: naive, seasonal naive, drift and moving-average forecasts.

Each is a function ``(y (n,), origins (k,), horizon H) -> (k, H)`` that reads only ``y[:t+1]``
for origin ``t`` (vectorised over origins).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError

__all__ = ["naive", "seasonal_naive", "drift", "moving_average", "baseline_forecasts"]

_F = NDArray[np.float64]
_I = NDArray[np.int64]


def naive(y: _F, origins: _I, horizon: int) -> _F:
    """The random walk: ``ŷ[t+h] = y[t]``."""
    return np.repeat(np.asarray(y, np.float64)[origins][:, None], horizon, axis=1)


def seasonal_naive(y: _F, origins: _I, horizon: int, m: int) -> _F:
    """``ŷ[t+h] = y[t + h - m·ceil(h/m)]``: the value one season (``m`` rows) earlier."""
    h = np.arange(1, horizon + 1)
    back = m * np.ceil(h / m).astype(np.int64)
    idx = origins[:, None] + h[None, :] - back[None, :]
    if idx.min() < 0:
        raise DataError(f"seasonal naive with m={m} needs {m} rows before the first origin")
    return np.asarray(y, np.float64)[idx]


def drift(y: _F, origins: _I, horizon: int) -> _F:
    """``ŷ[t+h] = y[t] + h · (y[t] - y[0]) / t``: the line through the first and last observation."""
    y = np.asarray(y, np.float64)
    t = np.maximum(origins, 1)
    slope = (y[origins] - y[0]) / t
    return y[origins][:, None] + slope[:, None] * np.arange(1, horizon + 1)[None, :]


def moving_average(y: _F, origins: _I, horizon: int, k: int) -> _F:
    """``ŷ[t+h] = mean(y[t-k+1..t])`` for every h."""
    y = np.asarray(y, np.float64)
    if origins.min() < k - 1:
        raise DataError(f"moving average of {k} needs {k} rows up to the first origin")
    c = np.concatenate([[0.0], np.cumsum(y)])
    means = (c[origins + 1] - c[origins + 1 - k]) / k
    return np.repeat(means[:, None], horizon, axis=1)


def baseline_forecasts(y: _F, origins: _I, horizon: int, *, seasonal_period: int, moving_average_steps: int) -> dict[str, _F]:
    """All baselines by name (``naive`` first: the reference of skill)."""
    return {
        "naive": naive(y, origins, horizon),
        f"seasonal_naive_{seasonal_period}": seasonal_naive(y, origins, horizon, seasonal_period),
        "drift": drift(y, origins, horizon),
        f"moving_average_{moving_average_steps}": moving_average(y, origins, horizon, moving_average_steps),
    }
