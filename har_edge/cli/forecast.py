"""``har-edge forecast {train,backtest,predict}``: forecasters from a TOML config to a scored run.

``train`` and ``backtest`` need the ``train`` extra (TensorFlow; ``--peers`` also ``har-edge[forecast]``);
``predict`` on a bundle needs only an interpreter (or ``--backend numpy``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_forecast_parser", "cmd_forecast"]


def add_forecast_parser(sub: argparse._SubParsersAction, add_data_root: Any) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("forecast", help="train, backtest and run LSTM forecasters (weather, prices) against baselines and peers")
    fsub = p.add_subparsers(dest="forecast_command", required=True)
    t = fsub.add_parser("train", help="train a forecaster from a TOML config and write a run directory (with its backtest)")
    t.add_argument("--config", required=True, help="forecast config, e.g. training/configs/beijing_temp_24h.toml (required)")
    t.add_argument("--out", required=True, help="run directory to write (required)")
    t.add_argument("--quiet", action="store_true", help="no per-epoch progress (default: one line per epoch)")
    t.add_argument("--seed", type=int, help="override [train] seed (default: the config's)")
    add_data_root(t)
    b = fsub.add_parser("backtest", help="re-run the pinned rolling-origin backtest of a run (baselines, Keras, bundles, peers)")
    b.add_argument("run_dir", help="a forecast run directory written by `har-edge forecast train`")
    b.add_argument("--peers", action="store_true", help="also the statsforecast peers (AutoETS, AutoARIMA, AutoTheta, MSTL, ...) "
                   "(default: baselines and Keras only)")
    b.add_argument("--bundle", action="append", default=[], help="also score this exported bundle (repeatable) (default: none)")
    b.add_argument("--backend", help="interpreter for --bundle: auto | litert | tflite-runtime | tensorflow | numpy (default: auto)")
    b.add_argument("--out", help="where to write backtest.json, forecasts.npz, backtest.png (default RUN_DIR)")
    add_data_root(b)
    r = fsub.add_parser("predict", help="forecast the steps after the last row of a CSV with a run or a bundle")
    r.add_argument("model", help="a forecast run directory or bundle (directory or model.tflite)")
    r.add_argument("--input", required=True, help="CSV with the run's time and value columns (required)")
    r.add_argument("--backend", help="bundle interpreter: auto | litert | tflite-runtime | tensorflow | numpy (default: auto)")


def cmd_forecast(args: argparse.Namespace) -> int:
    return {"train": _train, "backtest": _backtest, "predict": _predict}[args.forecast_command](args)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr)


def _train(args: argparse.Namespace) -> int:
    from har_edge.data.paths import resolve_data_root
    from har_edge.forecasting.config import load_forecast_config
    from har_edge.forecasting.training import train_forecaster

    cfg = load_forecast_config(args.config)
    if args.seed is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=int(args.seed)))
    root = _data_root(cfg, args, resolve_data_root)
    info = train_forecaster(cfg, root, Path(args.out), verbose=0 if args.quiet else 2, on_progress=_say)
    m = info.metrics
    print(json.dumps({"run_dir": str(info.run_dir), "mae_mean": round(m["backtest"]["mae_mean"], 4),
                      "skill_mean": round(m["backtest"]["skill_mean"], 4), "train_seconds": m["train_seconds"]}))
    return 0


def _data_root(cfg: Any, args: argparse.Namespace, resolve: Any) -> Path | None:
    """The data root, unless the series path is absolute (a user's own file)."""
    if Path(cfg.series.path).is_absolute() and not args.data_root:
        return None
    return Path(resolve(args.data_root))


def _backtest(args: argparse.Namespace) -> int:
    from har_edge.data.paths import resolve_data_root
    from har_edge.forecasting.report import format_table, write_backtest
    from har_edge.forecasting.run import load_forecast_run
    from har_edge.forecasting.training import backtest_run
    from har_edge.inference.forecaster import Forecaster

    info = load_forecast_run(args.run_dir)
    root = _data_root(info.config, args, resolve_data_root)
    backend = None if args.backend in (None, "auto") else args.backend
    extra: dict[str, Any] = {}
    for path in args.bundle:
        def method(b: Any, path: str = path) -> Any:
            with Forecaster.from_bundle(path, backend=backend) as fc:
                return fc.forecast_at(b.times_s, series_values, b.origins)
        extra[f"bundle {Path(path).name}"] = method
    series_values: Any = None
    if extra:
        from har_edge.data.series import load_series

        series_values = load_series(info.config.series, base_dir=root).values
    from har_edge.cli.progress import StepProgress

    with StepProgress("backtest peers") as progress:
        result, prep = backtest_run(info, root, peers=args.peers, extra_methods=extra, on_progress=_say, on_step=progress)
    out = Path(args.out) if args.out else info.run_dir
    write_backtest(out, result, extra={"spans": prep.spans.describe(prep.series), "run_dir": str(info.run_dir)}, title=info.config.name)
    print(format_table(result, title=f"{info.config.name}: backtest"))
    print(f"wrote {out / 'backtest.json'}, {out / 'forecasts.npz'}, {out / 'backtest.png'}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from har_edge.data.series import iso, load_series
    from har_edge.inference.forecaster import skill_warning

    path = Path(args.model)
    if (path / "run.json").is_file():  # a run directory (TensorFlow); else a bundle (device path)
        from har_edge.forecasting.run import load_forecast_run

        from har_edge.forecasting.training import KERAS_METHOD
        from har_edge.models.training import load_keras_model

        info = load_forecast_run(path)
        series = load_series(dataclasses.replace(info.config.series, path=str(Path(args.input).resolve())))
        model = load_keras_model(info.run_dir)
        from har_edge.data.forecast_features import input_features, input_windows, invert_targets

        feats = input_features(series.times_s, series.values, info.spec)
        X = info.normalisation.transform(input_windows(feats, np.array([len(series) - 1]), info.spec.input_steps))
        z = info.target_normalisation.inverse(np.asarray(model.predict(X, verbose=0), np.float32)).astype(np.float64)
        values = invert_targets(z, series.column(info.spec.target)[-1:], info.spec.target_transform)[0]
        step_s, unit, skill = series.step_s, info.run["target_unit"], float(info.metrics["backtest"]["skill_mean"])
        target, method, spacing = info.spec.target, KERAS_METHOD, series.spacing
    else:
        from har_edge.inference.forecaster import Forecaster
        from har_edge.runtime.forecast_stream import series_spec_for

        backend = None if args.backend in (None, "auto") else args.backend
        with Forecaster.from_bundle(path, backend=backend) as fc:
            series = load_series(series_spec_for(fc, args.input))
            f = fc.forecast(series.times_s, series.values)
            values, step_s, unit, skill, target, spacing = f.values, fc.step_s, fc.unit, fc.skill_vs_naive, fc.target, fc.spacing
            method = f"bundle ({fc.bundle.manifest['quantization']}, {fc.backend})"
    origin = float(series.times_s[-1])
    out = {"target": target, "unit": unit, "origin": iso(origin), "step_s": step_s, "method": method,
           "times": [iso(origin + (h + 1) * step_s) for h in range(len(values))] if spacing == "regular" else None,
           "values": [round(float(v), 6) for v in values], "skill_vs_naive": round(skill, 6)}
    warning = skill_warning(skill)
    if warning:
        out["warning"] = warning
        _say(f"WARNING: {warning}")
    print(json.dumps(out))
    return 0
