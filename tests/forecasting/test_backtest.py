"""The pinned protocol: origins, spans, scores of every method on the same origins, re-scorable outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from har_edge.data.series import Series, SeriesSpec, load_series
from har_edge.forecasting.backtest import make_backtest_set, run_backtest, score_all
from har_edge.forecasting.config import load_forecast_config
from har_edge.forecasting.report import format_table, load_forecasts, write_backtest
from har_edge.forecasting.windows import rolling_origins, split_spans, training_origins

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "training" / "configs"
SAMPLE = REPO / "training" / "sample_data"


def _shared_data() -> Path:
    root = Path(os.environ.get("HAR_EDGE_DATA", REPO.parent / "shared" / "data"))
    if not (root / "weather_beijing_hourly").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{root}: the shared data sets are missing in CI")
        pytest.skip(f"{root}/weather_beijing_hourly not present")
    return root


def _hourly(start: str, end: str) -> Series:
    t0, t1 = (np.datetime64(x, "s").astype(np.int64) for x in (start, end))
    times = np.arange(t0, t1 + 1, 3600).astype(np.float64)
    y = 10 + 5 * np.sin(2 * np.pi * times / 86400)
    return Series(times_s=times, values=y[:, None], columns=("TEMP",), units=("degC",), step_s=3600.0, spacing="regular")


def test_beijing_protocol_has_350_origins_from_the_last_hour_of_2013() -> None:
    cfg = load_forecast_config(CONFIGS / "beijing_temp_24h.toml")
    series = _hourly("2010-01-01T00:00", "2014-12-31T23:00")
    cfg = cfg.replace(series=SeriesSpec(path="x", columns=("TEMP",), units=("degC",), target="TEMP", time_column="t", step="1h"))
    bset = make_backtest_set(series, cfg)
    d = bset.describe()
    assert len(bset.origins) == 350 and d["first_origin"] == "2013-12-31T23:00:00" and d["origin_every"] == 25
    assert np.all(np.diff(bset.origins) == 25) and bset.origins[-1] + 24 <= len(series) - 1 < bset.origins[-1] + 25 + 24
    hours = (series.times_s[bset.origins] // 3600) % 24
    assert len(set(hours.astype(int))) == 24  # the hour of day rotates
    spans = split_spans(series, cfg)
    assert spans.describe(series)["test"] == ["2014-01-01T00:00:00", "2014-12-31T23:00:00"]
    tr, va = training_origins(spans, cfg.feature_spec())
    assert tr.max() + 24 <= spans.train_end and va.min() >= spans.train_end and va.max() + 24 <= spans.validation_end


def test_melbourne_protocol_every_day_from_the_sample() -> None:
    cfg = load_forecast_config(CONFIGS / "melbourne_min_7d.toml")
    series = load_series(cfg.series, base_dir=SAMPLE)
    bset = make_backtest_set(series, cfg)
    d = bset.describe()
    assert (len(bset.origins), d["first_origin"], d["last_origin"]) == (724, "1988-12-31T00:00:00", "1990-12-24T00:00:00")
    assert series.report.steps_filled == 2


def test_price_protocol_last_20_percent_of_rows() -> None:
    cfg = load_forecast_config(CONFIGS / "usd_idr_5d.toml")
    n = 1000
    times = (np.arange(n) * 86400.0 * 7 / 5).round()
    series = Series(times_s=times, values=(100 + np.arange(n, dtype=float))[:, None], columns=("usd_idr",), units=("IDR/USD",),
                    step_s=86400.0, spacing="rows")
    bset = make_backtest_set(series, cfg)
    assert bset.origins[0] == 799 and bset.origins[-1] == 994 and len(bset.origins) == 196
    assert split_spans(series, cfg).train_end == 699


def test_every_method_scored_on_the_same_origins_and_rescorable(tmp_path: Path) -> None:
    cfg = load_forecast_config(CONFIGS / "melbourne_min_7d.toml")
    bset = make_backtest_set(load_series(cfg.series, base_dir=SAMPLE), cfg)
    perfect = lambda b: b.actual.copy()  # noqa: E731
    result = run_backtest(bset, {"oracle": perfect})
    assert set(result.forecasts) == {"naive", "seasonal_naive_365", "drift", "moving_average_7", "oracle"}
    assert all(f.shape == (724, 7) for f in result.forecasts.values())
    assert result.scores["naive"]["skill_mean"] == 0.0 and result.scores["oracle"]["skill_mean"] == 1.0
    assert result.scores["oracle"]["mae_mean"] == 0.0 and result.scores["moving_average_7"]["mae_step7"] > 2.0
    summary = write_backtest(tmp_path, result, title="t")
    assert (tmp_path / "backtest.png").stat().st_size > 1000
    assert json.loads((tmp_path / "backtest.json").read_text())["protocol"]["origins"] == 724 == summary["protocol"]["origins"]
    arrays, forecasts = load_forecasts(tmp_path / "forecasts.npz")
    rescored = score_all(bset, forecasts)
    assert rescored["moving_average_7"]["mae_mean"] == pytest.approx(result.scores["moving_average_7"]["mae_mean"])
    np.testing.assert_array_equal(arrays["origins"], bset.origins)
    assert "moving_average_7" in format_table(result)


def test_beijing_baselines_on_the_real_file() -> None:
    root = _shared_data()
    cfg = load_forecast_config(CONFIGS / "beijing_temp_24h.toml")
    bset = make_backtest_set(load_series(cfg.series, base_dir=root), cfg)
    s = run_backtest(bset, {}).scores
    assert len(bset.origins) == 350
    assert s["naive"]["mae_mean"] == pytest.approx(4.476, abs=1e-3) and s["naive"]["mae_step24"] == pytest.approx(2.594, abs=1e-3)
    assert bset.mase_scale == pytest.approx(2.5602, abs=1e-4)


def test_rolling_origins() -> None:
    assert rolling_origins(5, 20, 3, 4).tolist() == [5, 9, 13]


def test_peers_on_a_short_series() -> None:
    pytest.importorskip("statsforecast")
    from har_edge.forecasting.config import BacktestConfig
    from har_edge.forecasting.peers import peer_forecasts

    y = 10 + np.sin(2 * np.pi * np.arange(300) / 24)
    b = BacktestConfig(peer_season_length=24, peer_fit_steps=120, peer_refit_every=2)
    steps: list[tuple[int, int, str]] = []
    f, costs = peer_forecasts(y, np.array([200, 210, 220]), 6, b, peers=("ets_ana", "auto_theta"),
                              on_step=lambda done, total, what: steps.append((done, total, what)))
    assert set(f) == {"ETS(ANA)", "AutoTheta"} and f["ETS(ANA)"].shape == (3, 6)
    # progress for the bar of `har-edge forecast backtest --peers`: every origin of every peer, then done
    assert [d for d, _, _ in steps] == list(range(7)) and {t for _, t, _ in steps} == {6}
    assert steps[0][2] == "ETS(ANA): origin 1/3" and steps[-1][2] == "done"
    assert costs["ETS(ANA)"]["fits"] == 2 and costs["ETS(ANA)"]["forwards"] == 1
    truth = y[np.array([200, 210, 220])[:, None] + np.arange(1, 7)]
    assert np.abs(f["ETS(ANA)"] - truth).mean() < 0.1  # a clean sine: the seasonal model nails it
