"""Forecast configs are read strictly; the shipped ones load."""

from __future__ import annotations

from pathlib import Path

import pytest

from har_edge.errors import ConfigError
from har_edge.forecasting.config import forecast_config_from_dict, load_forecast_config

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
SERIES = {"path": "x.csv", "time_column": "t", "columns": ["v"], "units": ["degC"], "target": "v"}


@pytest.mark.parametrize("name", ["beijing_temp_24h", "melbourne_min_7d", "usd_idr_5d", "bbca_close_5d"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_forecast_config(CONFIGS / f"{name}.toml")
    assert cfg.name == name and cfg.to_dict()["task"] == "forecast"
    assert forecast_config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("change, match", [
    ({"features": {"horizon": 3, "windowz": 2}}, r"unknown key\(s\) \['windowz'\]"),
    ({"features": {"target_transform": "pct"}}, "target_transform"),
    ({"split": {"train_end": "2000-01-01", "validation_end": "2001-01-01", "test_fraction": 0.2, "validation_fraction": 0.1}},
     "either"),
    ({"backtest": {"peers": ["prophet"]}}, "unknown"),
    ({"series": dict(SERIES, units=["parsec"])}, "unknown unit"),
    ({"train": {"augment_noise": 0.1}}, "augment"),
    ({"extra": {}}, "unknown table"),
])
def test_bad_configs_are_refused(change: dict[str, object], match: str) -> None:
    d: dict[str, object] = {"series": SERIES, "split": {"train_end": "2000-01-01", "validation_end": "2001-01-01"}}
    d.update(change)
    with pytest.raises(ConfigError, match=match):
        forecast_config_from_dict(d)
