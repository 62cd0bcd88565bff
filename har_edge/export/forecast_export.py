"""Export a forecast run: the classifier's conversion steps, a forecast manifest, and a backtest per mode.

Each mode's bundle is judged by the metric that matters — its backtest MAE on the pinned origins,
computed through the device's own :class:`~har_edge.inference.forecaster.Forecaster` — beside
the Keras model's MAE (``../shared/notes/stack.md``: single outputs of an int8 LSTM regressor move
by degrees while the backtest MAE moves by < 0.4 %). The bundle's manifest carries its own
backtest figures (``forecast.backtest``), so the device knows its skill against the random walk.
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from har_edge import __version__
from har_edge.errors import ExportError
from har_edge.export.converter import build_export_twin
from har_edge.export.pipeline import convert_mode, finish_bundle
from har_edge.forecasting import metrics as M
from har_edge.forecasting.run import ForecastRunInfo, Prepared
from har_edge.forecasting.training import KERAS_METHOD, keras_forecasts
from har_edge.inference.bundle import MODEL_NAME, Bundle, sha256_bytes
from har_edge.inference.forecaster import FORECAST, Forecaster
from har_edge.inference.interpreter import TfliteRunner

__all__ = ["export_forecast_into", "build_forecast_manifest", "bundle_backtest"]

log = logging.getLogger(__name__)

_CHANNEL_UNIT = {"level": None, "change": None, "log_return": "1"}


def _channels(info: ForecastRunInfo) -> list[dict[str, str]]:
    units = dict(zip(info.spec.columns, info.run["units"]))
    out = []
    for name, col in zip(info.spec.channel_names, info.spec.columns + info.spec.calendar):
        unit = units.get(col, "1")
        out.append({"name": name, "unit": _CHANNEL_UNIT[info.spec.input_transform] or unit if col in units else "1"})
    return out


def bundle_backtest(fc: Forecaster, prep: Prepared) -> tuple[np.ndarray, dict[str, Any]]:
    """A bundle's level forecasts ``(k, H)`` at the pinned origins and their summary (MAE, skill vs naive)."""
    b = prep.bset
    f = fc.forecast_at(prep.series.times_s, prep.series.values, b.origins)
    naive = np.repeat(b.last[:, None], b.horizon, axis=1)
    per_step = np.array([M.mae(b.actual[:, h], f[:, h]) for h in range(b.horizon)])
    naive_step = np.array([M.mae(b.actual[:, h], naive[:, h]) for h in range(b.horizon)])
    mae = M.mae(b.actual, f)
    return f, {"mae_mean": mae, "mae_step1": float(per_step[0]), f"mae_step{b.horizon}": float(per_step[-1]),
               "skill_mean": M.skill(mae, float(naive_step.mean())),
               "skill_per_step": [round(M.skill(float(m), float(n)), 6) for m, n in zip(per_step, naive_step)],
               "direction_accuracy": M.direction_accuracy(b.actual, f, np.repeat(b.last[:, None], b.horizon, axis=1)),
               "naive_mae_mean": float(naive_step.mean()), "origins": int(len(b.origins)), "horizon": b.horizon}


def build_forecast_manifest(info: ForecastRunInfo, mode: str, runner: TfliteRunner, backtest: dict[str, Any]) -> dict[str, Any]:
    """Everything the device needs to forecast, from the run and the converted model's tensor details."""
    scale_in, zero_in = runner.input_quant
    scale_out, zero_out = runner.output_quant
    spec = info.spec
    step_s = float(info.run["step_s"])
    return {
        "task": FORECAST,
        "name": info.config.name,
        "quantization": mode,
        "sample_rate_hz": 1.0 / step_s,
        "window_samples": spec.input_steps,
        "hop_samples": 1,
        "channels": _channels(info),
        "raw_inputs": [{"name": c, "unit": u} for c, u in zip(spec.columns, info.run["units"])],
        "preprocessing": None,
        "normalisation": info.normalisation.to_dict(),
        "input": {"shape": list(runner.input_shape), "dtype": runner.input_dtype.name, "scale": float(scale_in), "zero_point": int(zero_in)},
        "output": {"shape": list(runner.output_shape), "dtype": runner.output_dtype.name, "scale": float(scale_out), "zero_point": int(zero_out)},
        "model": {"cell": info.config.model.cell, "units": list(info.config.model.units), "conv_filters": list(info.config.model.conv_filters)},
        "forecast": {"target": spec.target, "unit": info.run["target_unit"], "step_s": step_s, "horizon": spec.horizon,
                     "transform": spec.target_transform, "spacing": info.run.get("spacing", "regular"),
                     # rows spacing: the longest calendar gap between rows in the data (a holiday); the device accepts up to it
                     "max_gap_s": float(info.run.get("series_report", {}).get("largest_gap_s", 0.0)) or None,
                     "feature_spec": spec.to_dict(), "target_normalisation": info.target_normalisation.to_dict(),
                     "backtest": backtest},
        "metrics": {},
        "har_edge_version": __version__,
        "created_unix_s": round(time.time(), 3),
    }


def _latency_ms(fc: Forecaster, X: np.ndarray, repeats: int = 200) -> float:
    xs = X[: min(len(X), 50)]
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        fc.predict_normalised(xs[i % len(xs)][None])
        times.append(time.perf_counter() - t0)
    return float(np.median(times[10:]) * 1e3)


def export_forecast_into(info: ForecastRunInfo, model: Any, modes: list[str], stage: Path, *, data_root: Path,
                         representative_count: int, check_interpreters: bool, single: bool) -> dict[str, Any]:
    """Convert, write and backtest every mode of a forecast run into ``stage``; returns the report."""
    prep = info.prepare(data_root)
    keras_f = keras_forecasts(model, prep)
    keras_mae = M.mae(prep.bset.actual, keras_f)
    H, n_ch = info.spec.horizon, len(info.spec.channel_names)
    twin = build_export_twin(model, info.config, window_samples=info.spec.input_steps, n_channels=n_ch, n_classes=H, head="linear")
    Xtr, _ = prep.normalised(prep.train)
    rng = np.random.default_rng(info.config.train.seed)
    rep = Xtr[np.sort(rng.choice(len(Xtr), size=min(representative_count, len(Xtr)), replace=False))].astype(np.float32)
    X_test = prep.test_inputs()
    report: dict[str, Any] = {
        "task": FORECAST, "run_dir": str(info.run_dir), "target": info.spec.target, "unit": prep.bset.unit,
        "origins": int(len(prep.bset.origins)), "horizon": H,
        "keras": {"mae_mean": keras_mae, "skill_mean": info.metrics.get("backtest", {}).get("skill_mean")},
        "modes": {}, "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    for mode in modes:
        t0 = time.monotonic()
        data, ops, cell_clip = convert_mode(twin, mode, rep, cell=info.config.model.cell)
        mode_dir = stage if single else stage / mode
        with TfliteRunner(data, where=f"{mode} model") as probe:
            manifest = build_forecast_manifest(info, mode, probe, dict(info.metrics.get("backtest", {}), method=KERAS_METHOD))
        in_memory = Bundle(directory=mode_dir, model_path=mode_dir / MODEL_NAME, model_bytes=data,
                           manifest=dict(manifest, model_sha256=sha256_bytes(data)))
        with Forecaster(in_memory) as fc:
            forecasts, bt = bundle_backtest(fc, prep)
            latency = _latency_ms(fc, X_test)
            backend = fc.backend
        if not np.isfinite(forecasts).all():
            raise ExportError(f"{mode} model produced NaN/inf forecasts on the backtest")
        manifest["forecast"]["backtest"] = dict(bt, method=f"tflite {mode}")
        entry = {
            "mae_mean": bt["mae_mean"], "mae_step1": bt["mae_step1"], f"mae_step{H}": bt[f"mae_step{H}"],
            "skill_mean": bt["skill_mean"], "mae_rel_diff_vs_keras": (bt["mae_mean"] - keras_mae) / keras_mae,
            "max_abs_diff_vs_keras": float(np.abs(forecasts - keras_f).max()),
            "size_bytes": len(data), "ops": ops, "lstm_cell_clip": cell_clip,
            "latency_ms_per_forecast": round(latency, 4), "latency_backend": backend,
            "input": manifest["input"], "output": manifest["output"],
            "bundle": str(mode_dir.name if not single else "."), "seconds": round(time.monotonic() - t0, 1),
        }
        manifest["metrics"] = {"keras": report["keras"], "tflite": {k: entry[k] for k in ("mae_mean", "skill_mean", "mae_rel_diff_vs_keras")}}
        finish_bundle(mode_dir, data, manifest, entry, mode=mode, check_interpreters=check_interpreters)
        report["modes"][mode] = entry
        log.info("%s: backtest MAE %.4f (keras %.4f, %+.3f %%), %d bytes", mode, bt["mae_mean"], keras_mae,
                 100 * entry["mae_rel_diff_vs_keras"], entry["size_bytes"])
    if single:
        report["tflite"] = report["modes"][modes[0]]
        report["quantization"] = modes[0]
    return report
