"""A forecast run: its prepared data (series, split, features, normalisation) and its run directory.

Layout of ``RUN_DIR`` (written by :func:`har_edge.forecasting.training.train_forecaster`)::

    model.keras          the trained tf_keras model (dynamic batch)
    config.json          the resolved forecast config (``"task": "forecast"``)
    run.json             task, feature spec, input channels, units, step, target normalisation, split, loader report
    normalisation.json   input-channel mean/std fitted on the training span only
    metrics.json         training time/epochs and the backtest summary (Keras and baselines)
    history.json         per-epoch losses
    backtest.json, forecasts.npz, backtest.png   see :mod:`har_edge.forecasting.report`

Everything here is TensorFlow-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.data.forecast_features import FeatureSpec, input_features, invert_targets
from har_edge.data.normalisation import Standardiser, fit_standardiser
from har_edge.data.series import Series, load_series
from har_edge.errors import ConfigError, DataError, ModelError
from har_edge.forecasting.backtest import BacktestSet, make_backtest_set
from har_edge.forecasting.config import ForecastConfig, forecast_config_from_dict
from har_edge.forecasting.windows import Spans, WindowPairs, split_spans, training_origins, window_pairs
from har_edge.models.run_dir import read_json

__all__ = ["FORECAST_TASK", "Prepared", "prepare", "ForecastRunInfo", "load_forecast_run", "is_forecast_run"]

FORECAST_TASK = "forecast"


@dataclass(frozen=True)
class Prepared:
    """A config's data, ready for training or scoring: normalised pairs and the pinned backtest."""

    cfg: ForecastConfig
    series: Series
    spans: Spans
    spec: FeatureSpec
    features: NDArray[np.float64]
    normalisation: Standardiser
    target_normalisation: Standardiser
    train: WindowPairs
    validation: WindowPairs
    bset: BacktestSet

    def normalised(self, pairs: WindowPairs) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        return self.normalisation.transform(pairs.X), self.target_normalisation.transform(pairs.Y)

    def test_inputs(self) -> NDArray[np.float32]:
        """Normalised input windows ``(k, W, F)`` at the backtest origins."""
        from har_edge.data.forecast_features import input_windows

        return self.normalisation.transform(input_windows(self.features, self.bset.origins, self.spec.input_steps))

    def to_levels(self, z_norm: NDArray[np.floating], origins: NDArray[np.int64]) -> NDArray[np.float64]:
        """Model outputs ``(k, H)`` (normalised targets) at ``origins`` → level forecasts ``(k, H)``."""
        z = self.target_normalisation.inverse(np.asarray(z_norm, np.float32)).astype(np.float64)
        return invert_targets(z, self.series.column(self.spec.target)[origins], self.spec.target_transform)


def prepare(cfg: ForecastConfig, data_root: Path | None, *, normalisation: Standardiser | None = None,
            target_normalisation: Standardiser | None = None) -> Prepared:
    """Load, split, featurise and window ``cfg``'s series; fit normalisation on the training span unless given."""
    series = load_series(cfg.series, base_dir=data_root)
    spans = split_spans(series, cfg)
    spec = cfg.feature_spec()
    feats = input_features(series.times_s, series.values, spec)
    tr_origins, va_origins = training_origins(spans, spec)
    train = window_pairs(series, spec, tr_origins, features=feats)
    val = window_pairs(series, spec, va_origins, features=feats)
    if normalisation is None:
        rows = feats[spec.history_rows - spec.input_steps: spans.train_end + 1]  # the training span (no NaN row)
        normalisation = fit_standardiser(rows, channel_names=spec.channel_names)
    if target_normalisation is None:
        target_normalisation = fit_standardiser(train.Y, channel_names=tuple(f"step{h + 1}" for h in range(spec.horizon)))
    if not np.isfinite(feats[spec.history_rows - spec.input_steps:]).all():
        raise DataError("input features contain NaN or inf after loading (check the series' fill rule)")
    bset = make_backtest_set(series, cfg, spans)
    return Prepared(cfg, series, spans, spec, feats, normalisation, target_normalisation, train, val, bset)


@dataclass(frozen=True)
class ForecastRunInfo:
    """Everything about a trained forecast run except the Keras model."""

    run_dir: Path
    config: ForecastConfig
    spec: FeatureSpec
    normalisation: Standardiser
    target_normalisation: Standardiser
    run: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def model_path(self) -> Path:
        return self.run_dir / "model.keras"

    def prepare(self, data_root: Path | None) -> Prepared:
        return prepare(self.config, data_root, normalisation=self.normalisation, target_normalisation=self.target_normalisation)


def is_forecast_run(run_dir: str | Path) -> bool:
    """Whether ``run_dir/run.json`` says ``"task": "forecast"``."""
    p = Path(run_dir) / "run.json"
    try:
        return p.is_file() and read_json(p).get("task") == FORECAST_TASK
    except ModelError:
        return False


def load_forecast_run(run_dir: str | Path) -> ForecastRunInfo:
    """Read a forecast run directory; a missing or malformed piece raises :class:`ModelError` naming it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelError(f"{run_dir}: run directory not found")
    missing = [f for f in ("model.keras", "config.json", "run.json", "normalisation.json") if not (run_dir / f).exists()]
    if missing:
        raise ModelError(f"{run_dir}: run directory is missing {missing} (was `har-edge forecast train` completed?)")
    run = read_json(run_dir / "run.json")
    if run.get("task") != FORECAST_TASK:
        raise ModelError(f"{run_dir}: a {run.get('task', 'classification')!r} run, not a forecast run")
    try:
        cfg = forecast_config_from_dict(read_json(run_dir / "config.json"), where=str(run_dir / "config.json"))
        metrics_path = run_dir / "metrics.json"
        return ForecastRunInfo(run_dir=run_dir, config=cfg, spec=FeatureSpec.from_dict(run["feature_spec"]),
                               normalisation=Standardiser.from_dict(read_json(run_dir / "normalisation.json")),
                               target_normalisation=Standardiser.from_dict(run["target_normalisation"]), run=run,
                               metrics=read_json(metrics_path) if metrics_path.exists() else {})
    except (KeyError, TypeError, ValueError, ConfigError, DataError) as exc:
        raise ModelError(f"{run_dir}: run metadata is malformed ({exc})") from exc
