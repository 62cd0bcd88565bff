"""Metrics against hand-computed values; baselines read only the past."""

from __future__ import annotations

import math

import numpy as np
import pytest

from har_edge.forecasting import baselines as B
from har_edge.forecasting import metrics as M


def test_metrics_by_hand() -> None:
    y, f = np.array([1.0, 2.0, 3.0, 4.0]), np.array([2.0, 2.0, 1.0, 4.0])
    assert M.mae(y, f) == pytest.approx(0.75)                 # (1 + 0 + 2 + 0) / 4
    assert M.rmse(y, f) == pytest.approx(math.sqrt(5 / 4))    # (1 + 0 + 4 + 0) / 4
    assert M.mase(y, f, 0.5) == pytest.approx(1.5)
    assert M.smape(np.array([100.0, 0.0]), np.array([110.0, 0.0])) == pytest.approx(100 * (10 / 105) / 2)
    assert M.skill(1.5, 2.0) == pytest.approx(0.25) and M.skill(2.0, 2.0) == 0.0
    assert M.seasonal_naive_scale(np.array([1.0, 2.0, 4.0, 7.0]), 1) == pytest.approx(2.0)  # |1| + |2| + |3| / 3
    assert M.seasonal_naive_scale(np.array([1.0, 2.0, 4.0, 7.0]), 2) == pytest.approx(4.0)  # |3| + |5| / 2


def test_direction_accuracy_and_up_share() -> None:
    last = np.array([10.0, 10.0, 10.0, 10.0])
    truth = np.array([11.0, 9.0, 12.0, 10.0])   # up, down, up, flat
    pred = np.array([10.5, 10.5, 11.0, 9.0])    # up, up (wrong), up, (truth flat: left out)
    assert M.direction_accuracy(truth, pred, last) == pytest.approx(2 / 3)
    assert M.up_move_share(truth, last) == pytest.approx(2 / 3)
    assert math.isnan(M.direction_accuracy(truth, last, last))  # the naive forecast never moves


def test_baselines_by_hand() -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    o = np.array([4, 5])
    assert B.naive(y, o, 2).tolist() == [[4, 4], [5, 5]]
    assert B.seasonal_naive(y, o, 3, 2).tolist() == [[3, 4, 3], [4, 5, 4]]
    assert B.drift(y, o, 2).tolist() == [[5, 6], [6, 7]]
    assert B.moving_average(y, o, 2, 3).tolist() == [[3, 3], [4, 4]]


def test_baselines_never_read_the_future() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=100)
    o = np.arange(30, 90, 5)
    before = B.baseline_forecasts(y, o, 6, seasonal_period=24, moving_average_steps=7)
    y2 = y.copy()
    y2[o.max() + 1:] = 1e9
    after = B.baseline_forecasts(y2, o, 6, seasonal_period=24, moving_average_steps=7)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])
