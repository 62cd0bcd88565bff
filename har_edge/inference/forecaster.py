"""Forecast with a forecast bundle: features → normalise → invoke from zero state → de-normalise → levels.

The device's forecaster (no TensorFlow): :class:`Forecaster` wraps :func:`~har_edge.inference.runner.open_runner`
(any interpreter, or the NumPy engine) and computes its inputs with the training code's own
functions (:mod:`har_edge.data.forecast_features`), from the spec in the manifest.

Forecast manifest (``task = "forecast"``) adds to the common keys a ``forecast`` table::

    "forecast": {"target": "TEMP", "unit": "degC", "step_s": 3600.0, "horizon": 24, "transform": "change",
                 "spacing": "regular", "max_gap_s": 3600.0, "feature_spec": {...}, "target_normalisation": {"mean": [...], "std": [...]},
                 "backtest": {"mae_mean": ..., "mae_step1": ..., "skill_mean": ..., "skill_per_step": [...], ...}}

Importing this module registers the forecast task's manifest check in
:data:`har_edge.inference.bundle.TASK_CHECKS`; a classifier refuses these bundles and this class
refuses classifier bundles (:meth:`~har_edge.inference.bundle.Bundle.require_task`).

>>> with Forecaster.from_bundle("bundle/") as fc:            # doctest: +SKIP
...     f = fc.forecast(times_s, values)                      # the last rows of the series
...     f.values, f.step_s, fc.skill_vs_naive
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.data.forecast_features import FeatureSpec, input_features, input_windows, invert_targets
from har_edge.data.normalisation import Standardiser
from har_edge.errors import BundleError, DataError
from har_edge.inference.bundle import TASK_CHECKS, Bundle
from har_edge.inference.runner import BundleModel

__all__ = ["FORECAST", "Forecast", "Forecaster", "skill_warning"]

FORECAST = "forecast"


def _check_forecast(manifest: dict[str, Any], where: Path) -> None:
    fc = manifest.get("forecast")
    if not isinstance(fc, dict):
        raise BundleError(f"{where}: a forecast bundle needs a 'forecast' table (target, unit, step_s, horizon, ...)")
    missing = [k for k in ("target", "unit", "step_s", "horizon", "transform", "feature_spec", "target_normalisation", "backtest")
               if k not in fc]
    if missing:
        raise BundleError(f"{where}: forecast table is missing {missing}")
    try:
        spec = FeatureSpec.from_dict(fc["feature_spec"])
        tnorm = Standardiser.from_dict(fc["target_normalisation"])
        step_s = float(fc["step_s"])
    except (DataError, TypeError, ValueError) as exc:
        raise BundleError(f"{where}: forecast table: {exc}") from exc
    H = int(fc["horizon"])
    if spec.horizon != H or tnorm.mean.shape[0] != H or list(manifest["output"].get("shape", [])) != [1, H]:
        raise BundleError(f"{where}: horizon {H} disagrees with the feature spec ({spec.horizon}), the target normalisation "
                          f"({tnorm.mean.shape[0]}) or the output shape {manifest['output'].get('shape')}")
    if [c["name"] for c in manifest["channels"]] != list(spec.channel_names) or spec.input_steps != manifest["window_samples"]:
        raise BundleError(f"{where}: channels/window disagree with the feature spec {list(spec.channel_names)} × {spec.input_steps}")
    if not (math.isfinite(step_s) and step_s > 0) or fc["target"] != spec.target or fc["transform"] != spec.target_transform:
        raise BundleError(f"{where}: forecast step_s={fc['step_s']!r}, target {fc['target']!r} or transform {fc['transform']!r} "
                          "disagree with the feature spec")


TASK_CHECKS[FORECAST] = _check_forecast


def skill_warning(skill_mean: float) -> str | None:
    """The warning every output carries when a model does not beat the random walk (skill ≤ 0), else None."""
    if skill_mean > 0:
        return None
    return (f"skill vs naive = {skill_mean:+.4f} <= 0: this forecast is no better than repeating the last value "
            "(the random walk); do not use it as a useful forecast")


@dataclass(frozen=True)
class Forecast:
    """One forecast: ``values`` ``(H,)`` levels for steps 1..H after ``origin_time_s`` (Unix s), every ``step_s``."""

    values: NDArray[np.float64]
    origin_time_s: float
    step_s: float
    latency_ms: float


class Forecaster(BundleModel):
    """A forecast bundle's model ready to forecast. A context manager; :meth:`close` frees it.

    Raises:
        BundleError: the bundle is not a forecast bundle, or its model disagrees with its manifest.
    """

    TASK = FORECAST

    def __init__(self, bundle: Bundle, *, backend: str | None = None, num_threads: int = 1) -> None:
        super().__init__(bundle, backend=backend, num_threads=num_threads)
        fc = bundle.manifest["forecast"]
        self.spec = FeatureSpec.from_dict(fc["feature_spec"])
        self.target_normalisation = Standardiser.from_dict(fc["target_normalisation"])
        self.target: str = fc["target"]
        self.unit: str = fc["unit"]
        self.step_s = float(fc["step_s"])
        self.spacing: str = fc.get("spacing", "regular")
        self.max_gap_s: float | None = None if fc.get("max_gap_s") is None else float(fc["max_gap_s"])
        self.horizon = int(fc["horizon"])
        self.backtest: dict[str, Any] = dict(fc["backtest"])

    @property
    def columns(self) -> tuple[str, ...]:
        return self.spec.columns

    @property
    def column_units(self) -> tuple[str, ...]:
        raw = self.bundle.raw_inputs
        return tuple(u for _, u in raw)

    @property
    def skill_vs_naive(self) -> float:
        """Mean skill (1 − MAE/MAE_naive) of this bundle on its backtest."""
        return float(self.backtest["skill_mean"])

    @property
    def history_rows(self) -> int:
        """Rows one forecast needs (the input window, plus one for a row-to-row input transform)."""
        return self.spec.history_rows

    def predict_normalised(self, X_norm: NDArray[np.floating]) -> NDArray[np.float32]:
        """Normalised targets ``(n, H)`` for normalised input windows ``(n, W, F)``, each from zero state."""
        return self.runner.predict(X_norm)

    def forecast_at(self, times_s: NDArray[np.floating], values: NDArray[np.floating],
                    origins: NDArray[np.integer]) -> NDArray[np.float64]:
        """Level forecasts ``(k, H)`` at row ``origins`` ``(k,)`` of a series ``values`` ``(n, c)`` at ``times_s`` ``(n,)``."""
        values = np.asarray(values, dtype=np.float64)
        origins = np.asarray(origins, dtype=np.int64)
        if origins.size and origins.min() < self.history_rows - 1:
            raise DataError(f"origin {origins.min()} has fewer than the {self.history_rows} rows a forecast needs")
        feats = input_features(times_s, values, self.spec)
        X = input_windows(feats, origins, self.spec.input_steps)
        if not np.isfinite(X).all():
            raise DataError("input window contains NaN or inf")
        z = self.target_normalisation.inverse(self.predict_normalised(self.normalisation.transform(X))).astype(np.float64)
        return invert_targets(z, values[origins, self.spec.target_index], self.spec.target_transform)

    def forecast(self, times_s: NDArray[np.floating], values: NDArray[np.floating]) -> Forecast:
        """Forecast the H steps after the last row from the last :attr:`history_rows` rows ``(n, c)`` in :attr:`columns` order.

        Raises:
            DataError: too few rows, wrong number of columns, or NaN / inf in the window.
        """
        values = np.asarray(values, dtype=np.float64)
        n = self.history_rows
        if values.ndim != 2 or values.shape[1] != len(self.columns) or values.shape[0] < n:
            raise DataError(f"values shape {values.shape}; a forecast needs at least ({n}, {len(self.columns)}) rows of "
                            f"{list(self.columns)}")
        t = np.asarray(times_s, dtype=np.float64)[-n:]
        t0 = time.perf_counter()
        out = self.forecast_at(t, values[-n:], np.array([n - 1]))[0]
        return Forecast(values=out, origin_time_s=float(t[-1]), step_s=self.step_s,
                        latency_ms=(time.perf_counter() - t0) * 1e3)
