"""Forecast inputs and targets: calendar encodings, transforms and their inverse, windows via segment_windows."""

from __future__ import annotations

import numpy as np
import pytest

import har_edge.data.forecast_features as ff
from har_edge.data.forecast_features import FeatureSpec, calendar_features, input_features, input_windows, invert_targets, target_matrix
from har_edge.errors import DataError


@pytest.mark.parametrize("transform", ["level", "change", "log_return"])
def test_targets_round_trip(transform: str) -> None:
    rng = np.random.default_rng(0)
    y = 100 + np.cumsum(rng.normal(size=200))
    origins = np.arange(10, 190, 7)
    z = target_matrix(y, origins, 5, transform)
    back = invert_targets(z, y[origins], transform)
    expected = y[origins[:, None] + np.arange(1, 6)[None, :]]
    np.testing.assert_allclose(back, expected, rtol=1e-12)


def test_target_values_by_hand() -> None:
    y = np.array([1.0, 2.0, 4.0, 8.0])
    assert target_matrix(y, np.array([1]), 2, "level").tolist() == [[4.0, 8.0]]
    assert target_matrix(y, np.array([1]), 2, "change").tolist() == [[2.0, 6.0]]
    np.testing.assert_allclose(target_matrix(y, np.array([1]), 2, "log_return"), [[np.log(2), np.log(4)]])
    with pytest.raises(DataError, match="past the last row"):
        target_matrix(y, np.array([2]), 2, "level")


def test_calendar_features_known_times() -> None:
    six_am = 6 * 3600.0  # 1970-01-01 06:00 UTC, a Thursday, day 0 of the year
    f = calendar_features(np.array([six_am, 0.0]), ("hour_sin", "hour_cos", "dow_sin", "doy_sin"))
    np.testing.assert_allclose(f[0, :2], [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(f[1, 2], np.sin(2 * np.pi * 3 / 7))  # Monday = 0, so Thursday = 3
    assert abs(f[1, 3]) < 1e-12


def test_input_features_and_windows_use_segment_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = ff.segment_windows

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(args[1:3])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ff, "segment_windows", spy)
    spec = FeatureSpec(columns=("a", "b"), target="a", input_steps=3, horizon=2, input_transform="change", calendar=("hour_sin",))
    times = np.arange(6) * 3600.0
    values = np.arange(12, dtype=float).reshape(6, 2) ** 2
    feats = input_features(times, values, spec)
    assert feats.shape == (6, 3) and np.isnan(feats[0, :2]).all()
    np.testing.assert_allclose(feats[1:, 0], np.diff(values[:, 0]))
    X = input_windows(feats, np.array([3, 4]), 3)
    np.testing.assert_array_equal(X[0], feats[1:4])
    np.testing.assert_array_equal(X[1], feats[2:5])
    assert calls == [(3, 1)]
    assert spec.history_rows == 4 and spec.channel_names == ("a_change", "b_change", "hour_sin")


def test_feature_spec_round_trip_and_checks() -> None:
    spec = FeatureSpec(columns=("p",), target="p", input_steps=20, horizon=5, target_transform="log_return",
                       input_transform="log_return")
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(DataError, match="target_transform"):
        FeatureSpec(columns=("p",), target="p", input_steps=5, horizon=1, target_transform="pct")
    with pytest.raises(DataError, match="not one of the columns"):
        FeatureSpec(columns=("p",), target="q", input_steps=5, horizon=1)
    with pytest.raises(DataError, match="positive"):
        input_features(np.arange(3.0), np.array([[1.0], [0.0], [2.0]]), spec)
