"""Forecast run configs: frozen dataclasses and the strict TOML reader (``training/configs/*.toml``).

Tables: ``[series]`` (:class:`~har_edge.data.series.SeriesSpec`), ``[features]``, ``[split]``,
``[backtest]``, ``[model]`` (:class:`~har_edge.config.ModelConfig`, the classifier's) and ``[train]``
(:class:`~har_edge.config.TrainConfig`). Unknown keys are errors, as for classifier configs
(the same ``_build``).

The evaluation protocol is pinned by ``[split]`` and ``[backtest]``: the first origin is the last row
of the validation span, then one every ``origin_every`` rows while ``horizon`` further rows exist.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from har_edge.config import ModelConfig, TrainConfig, _build, _plain, read_toml
from har_edge.data.forecast_features import CALENDAR_FEATURES, TRANSFORMS, FeatureSpec
from har_edge.data.series import SeriesSpec
from har_edge.errors import ConfigError, DataError

__all__ = ["FeaturesConfig", "SplitConfig", "BacktestConfig", "ForecastConfig", "PEERS", "load_forecast_config",
           "forecast_config_from_dict"]

PEERS = ("auto_ets", "auto_arima", "auto_theta", "mstl", "ets_ana")


@dataclass(frozen=True)
class FeaturesConfig:
    input_steps: int = 48
    horizon: int = 24
    target_transform: str = "change"  # level | change | log_return (prices)
    input_transform: str = "level"     # the same choice, row to row, for every input column
    calendar: tuple[str, ...] = ()     # hour_sin, hour_cos, dow_sin, dow_cos, doy_sin, doy_cos


@dataclass(frozen=True)
class SplitConfig:
    """Chronological split: by dates (``train_end``, ``validation_end``, inclusive) or by row fractions."""

    train_end: str = ""
    validation_end: str = ""
    test_fraction: float = 0.0        # e.g. 0.2: the last 20 % of rows are the test span
    validation_fraction: float = 0.0  # of all rows, just before the test span


@dataclass(frozen=True)
class BacktestConfig:
    origin_every: int = 1             # rows between origins
    seasonal_period: int = 24         # seasonal naive m; MASE scale = in-sample m-step naive MAE (train + validation)
    moving_average_steps: int = 24    # the moving-average baseline's window
    peers: tuple[str, ...] = ("auto_ets", "auto_arima", "auto_theta")
    peer_season_length: int = 1       # statsforecast season_length (24 for hourly)
    peer_fit_steps: int = 672         # each peer fits on this many rows before the origin
    peer_refit_every: int = 25        # refit every this many origins; forward() with the new data in between
    peer_max_seconds: float = 900.0   # per peer: past this total fit time, no more refits (forward only)


@dataclass(frozen=True)
class ForecastConfig:
    name: str = "forecast"
    series: SeriesSpec = field(default_factory=SeriesSpec)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    backtest: BacktestConfig = field(default_factory=BacktestConfig)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(units=(32,), dropout=0.0))
    train: TrainConfig = field(default_factory=TrainConfig)

    def feature_spec(self) -> FeatureSpec:
        f = self.features
        return FeatureSpec(columns=self.series.columns, target=self.series.target, input_steps=f.input_steps,
                           horizon=f.horizon, target_transform=f.target_transform, input_transform=f.input_transform,
                           calendar=f.calendar)

    def to_dict(self) -> dict[str, Any]:
        return dict(_plain(dataclasses.asdict(self)), task="forecast")

    def replace(self, **sections: Any) -> ForecastConfig:
        return dataclasses.replace(self, **sections)


def forecast_config_from_dict(d: dict[str, Any], *, where: str = "config") -> ForecastConfig:
    """Build and validate a :class:`ForecastConfig` from a parsed TOML/JSON dict."""
    allowed = {"name", "task", "series", "features", "split", "backtest", "model", "train"}
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown table(s) {unknown}; allowed are {sorted(allowed)}")
    if d.get("task", "forecast") != "forecast":
        raise ConfigError(f"{where}: task={d['task']!r}; a forecast config has task = \"forecast\" (or none)")
    base = ForecastConfig()
    model = dataclasses.asdict(base.model) | d.get("model", {})
    cfg = ForecastConfig(
        name=str(d.get("name", "forecast")),
        series=_build(SeriesSpec, d.get("series", {}), f"{where} [series]"),
        features=_build(FeaturesConfig, d.get("features", {}), f"{where} [features]"),
        split=_build(SplitConfig, d.get("split", {}), f"{where} [split]"),
        backtest=_build(BacktestConfig, d.get("backtest", {}), f"{where} [backtest]"),
        model=_build(ModelConfig, {k: list(v) if isinstance(v, tuple) else v for k, v in model.items()}, f"{where} [model]"),
        train=_build(TrainConfig, d.get("train", {}), f"{where} [train]"),
    )
    _validate(cfg, where)
    return cfg


def _validate(cfg: ForecastConfig, where: str) -> None:
    try:
        cfg.series.check(f"{where} [series]")
        cfg.feature_spec()
    except DataError as exc:
        raise ConfigError(str(exc)) from None
    f, s, b = cfg.features, cfg.split, cfg.backtest
    if f.target_transform not in TRANSFORMS or f.input_transform not in TRANSFORMS:
        raise ConfigError(f"{where} [features]: transforms must be one of {TRANSFORMS}")
    if any(c not in CALENDAR_FEATURES for c in f.calendar):
        raise ConfigError(f"{where} [features]: calendar={list(f.calendar)}; expected names from {CALENDAR_FEATURES}")
    by_date = bool(s.train_end) and bool(s.validation_end)
    by_fraction = s.test_fraction > 0 and s.validation_fraction > 0
    if by_date == by_fraction:
        raise ConfigError(f"{where} [split]: give either train_end and validation_end (dates), or test_fraction and "
                          "validation_fraction (of the rows), not both")
    if by_fraction and not 0 < s.test_fraction + s.validation_fraction < 0.9:
        raise ConfigError(f"{where} [split]: test_fraction + validation_fraction = "
                          f"{s.test_fraction + s.validation_fraction}; expected < 0.9")
    if b.origin_every < 1 or b.seasonal_period < 1 or b.moving_average_steps < 1:
        raise ConfigError(f"{where} [backtest]: origin_every, seasonal_period and moving_average_steps must be >= 1")
    bad = [p for p in b.peers if p not in PEERS]
    if bad:
        raise ConfigError(f"{where} [backtest]: peers {bad} unknown; expected names from {PEERS}")
    if b.peer_refit_every < 1 or b.peer_fit_steps < 2 * max(1, b.peer_season_length):
        raise ConfigError(f"{where} [backtest]: peer_refit_every >= 1 and peer_fit_steps >= 2 seasons are needed")
    t = cfg.train
    if t.augment_rotation_deg or t.augment_scale or t.augment_noise:
        raise ConfigError(f"{where} [train]: augment_* are for accelerometer windows; a forecaster has none")
    if cfg.model.cell not in ("lstm", "simple_rnn") or not cfg.model.units:
        raise ConfigError(f"{where} [model]: cell must be 'lstm' or 'simple_rnn' with at least one units entry")


def load_forecast_config(path: str | Path) -> ForecastConfig:
    """Read a forecast config TOML file strictly."""
    return forecast_config_from_dict(read_toml(path), where=str(path))
