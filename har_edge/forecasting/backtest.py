"""The rolling-origin backtest, kept outside any model: every method is scored on the same origins.

A method is anything that returns level forecasts ``(k, H)`` for the pinned origins: the
baselines, the statistical peers, the Keras model, an exported bundle through the device's
:class:`~har_edge.inference.forecaster.Forecaster`. :func:`score` turns forecasts into the
metrics of :mod:`har_edge.forecasting.metrics` (per step and overall), skill against ``naive``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from har_edge.data.forecast_features import FeatureSpec
from har_edge.data.series import Series, iso
from har_edge.errors import DataError
from har_edge.forecasting import metrics as M
from har_edge.forecasting.baselines import baseline_forecasts
from har_edge.forecasting.config import ForecastConfig
from har_edge.forecasting.windows import Spans, rolling_origins, split_spans

__all__ = ["BacktestSet", "BacktestResult", "make_backtest_set", "score", "score_all", "run_backtest"]

log = logging.getLogger(__name__)
REFERENCE = "naive"


@dataclass(frozen=True)
class BacktestSet:
    """The pinned test problem: ``origins`` ``(k,)`` rows, ``actual`` ``(k, H)`` levels, ``last`` ``(k,)`` origin levels."""

    origins: NDArray[np.int64]
    actual: NDArray[np.float64]
    last: NDArray[np.float64]
    y: NDArray[np.float64]
    times_s: NDArray[np.float64]
    horizon: int
    mase_scale: float
    seasonal_period: int
    moving_average_steps: int
    target: str
    unit: str
    step_s: float
    spans: Spans

    @property
    def origin_times_s(self) -> NDArray[np.float64]:
        return self.times_s[self.origins]

    def describe(self) -> dict[str, Any]:
        return {"origins": int(len(self.origins)), "first_origin": iso(self.times_s[self.origins[0]]),
                "last_origin": iso(self.times_s[self.origins[-1]]), "origin_every": int(np.diff(self.origins[:2])[0]) if len(self.origins) > 1 else 1,
                "horizon": self.horizon, "mase_scale": self.mase_scale, "seasonal_period": self.seasonal_period,
                "target": self.target, "unit": self.unit, "step_s": self.step_s}


def make_backtest_set(series: Series, cfg: ForecastConfig, spans: Spans | None = None) -> BacktestSet:
    """Origins, truths and the MASE scale of the pinned protocol in ``cfg``."""
    spans = spans or split_spans(series, cfg)
    spec: FeatureSpec = cfg.feature_spec()
    H, b = spec.horizon, cfg.backtest
    y = series.column(spec.target)
    origins = rolling_origins(spans.validation_end, len(series), H, b.origin_every)
    if origins.size == 0:
        raise DataError("no backtest origin: the test span is shorter than the horizon")
    idx = origins[:, None] + np.arange(1, H + 1)[None, :]
    scale = M.seasonal_naive_scale(y[: spans.validation_end + 1], b.seasonal_period)
    return BacktestSet(origins=origins, actual=y[idx], last=y[origins], y=y, times_s=series.times_s, horizon=H,
                       mase_scale=scale, seasonal_period=b.seasonal_period, moving_average_steps=b.moving_average_steps,
                       target=spec.target, unit=series.units[series.columns.index(spec.target)], step_s=series.step_s,
                       spans=spans)


def score(bset: BacktestSet, forecast: NDArray[np.floating], naive_mae_per_step: NDArray[np.float64],
          naive_mae: float | None = None) -> dict[str, Any]:
    """Metrics of one method's forecasts ``(k, H)`` (levels)."""
    f = np.asarray(forecast, dtype=np.float64)
    if f.shape != bset.actual.shape:
        raise DataError(f"forecast shape {f.shape}; the backtest has {bset.actual.shape}")
    a, H = bset.actual, bset.horizon
    per_step = np.array([M.mae(a[:, h], f[:, h]) for h in range(H)])
    last = np.repeat(bset.last[:, None], H, axis=1)
    overall = M.mae(a, f)
    naive_overall = float(np.mean(naive_mae_per_step)) if naive_mae is None else naive_mae
    return {
        "mae_per_step": [round(float(v), 6) for v in per_step],
        "mae_mean": overall, "mae_step1": float(per_step[0]), f"mae_step{H}": float(per_step[-1]),
        "rmse": M.rmse(a, f), "mase": M.mase(a, f, bset.mase_scale), "smape": M.smape(a, f),
        "skill_per_step": [round(M.skill(float(m), float(n)), 6) for m, n in zip(per_step, naive_mae_per_step)],
        "skill_mean": M.skill(overall, naive_overall),
        "direction_accuracy": M.direction_accuracy(a, f, last),
        "direction_accuracy_step1": M.direction_accuracy(a[:, 0], f[:, 0], bset.last),
    }


def score_all(bset: BacktestSet, forecasts: dict[str, NDArray[np.float64]]) -> dict[str, dict[str, Any]]:
    """Scores of every method; ``naive`` must be among them (the reference of skill)."""
    if REFERENCE not in forecasts:
        raise DataError(f"the backtest needs the {REFERENCE!r} forecasts as the reference of skill")
    ref = np.array([M.mae(bset.actual[:, h], forecasts[REFERENCE][:, h]) for h in range(bset.horizon)])
    ref_all = M.mae(bset.actual, forecasts[REFERENCE])
    return {name: score(bset, f, ref, ref_all) for name, f in forecasts.items()}


@dataclass
class BacktestResult:
    """Forecasts ``{method: (k, H)}``, their scores and the seconds each method took."""

    bset: BacktestSet
    forecasts: dict[str, NDArray[np.float64]] = field(default_factory=dict)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def up_move_share(self) -> dict[str, float]:
        a, H = self.bset.actual, self.bset.horizon
        return {"all_steps": M.up_move_share(a, np.repeat(self.bset.last[:, None], H, axis=1)),
                "step1": M.up_move_share(a[:, 0], self.bset.last)}

    def best(self, names: list[str]) -> str | None:
        present = [n for n in names if n in self.scores]
        return min(present, key=lambda n: self.scores[n]["mae_mean"]) if present else None


def run_backtest(bset: BacktestSet, methods: dict[str, Callable[[BacktestSet], NDArray[np.float64]]],
                 *, include_baselines: bool = True) -> BacktestResult:
    """Run the baselines and ``methods`` on ``bset``'s origins and score them all."""
    result = BacktestResult(bset)
    if include_baselines:
        t0 = time.perf_counter()
        result.forecasts.update(baseline_forecasts(bset.y, bset.origins, bset.horizon, seasonal_period=bset.seasonal_period,
                                                   moving_average_steps=bset.moving_average_steps))
        result.seconds["baselines"] = round(time.perf_counter() - t0, 3)
    for name, method in methods.items():
        t0 = time.perf_counter()
        result.forecasts[name] = np.asarray(method(bset), dtype=np.float64)
        result.seconds[name] = round(time.perf_counter() - t0, 3)
        log.info("backtest: %s done in %.1f s", name, result.seconds[name])
    result.scores = score_all(bset, result.forecasts)
    return result
