"""``train``, ``evaluate`` and ``export`` (these need the ``train`` extra: TensorFlow), and ``data prepare``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from har_edge.data.paths import resolve_data_root

__all__ = ["cmd_train", "cmd_evaluate", "cmd_export", "cmd_data", "run_data_root"]


def run_data_root(explicit: str | None, run_dir: str | Path) -> Path:
    """``--data-root`` if given, else the data root recorded in the run (when it still exists), else the default."""
    if explicit:
        return resolve_data_root(explicit)
    from har_edge.models.run_dir import load_run_info

    recorded = load_run_info(run_dir).data_root
    if recorded is not None and Path(recorded).is_dir():
        print(f"data root: {recorded} (recorded in {Path(run_dir) / 'run.json'})", file=sys.stderr)
        return Path(recorded)
    return resolve_data_root(None)


def cmd_train(args: argparse.Namespace) -> int:
    from har_edge.config import load_run_config
    from har_edge.models.training import train_run

    cfg = load_run_config(args.config)
    if getattr(args, "seed", None) is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=int(args.seed)))
    root = resolve_data_root(args.data_root)
    info = train_run(cfg, root, Path(args.out), verbose=0 if args.quiet else 2, on_progress=lambda m: print(m, file=sys.stderr))
    m = info.metrics
    print(json.dumps({"run_dir": str(info.run_dir), "test_accuracy": round(m["test_accuracy"], 4),
                      "test_macro_f1": round(m["test_macro_f1"], 4), "train_seconds": m["train_seconds"]}))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from har_edge.data.datasets import prepare_windows
    from har_edge.evaluation.metrics import classification_metrics
    from har_edge.models.run_dir import load_run_info, write_json
    from har_edge.models.training import load_keras_model, predict_probabilities

    from har_edge.forecasting.run import is_forecast_run

    if is_forecast_run(args.run_dir):
        from har_edge.errors import ConfigError

        raise ConfigError(f"{args.run_dir} is a forecast run: score it with `har-edge forecast backtest {args.run_dir}`")
    info = load_run_info(args.run_dir)
    root = run_data_root(args.data_root, args.run_dir)
    splits = prepare_windows(info.config, root)
    X = info.normalisation.transform(splits.test.X)
    model = load_keras_model(info.run_dir)
    keras_probs = predict_probabilities(model, X)
    result: dict[str, object]
    if args.backend == "numpy":
        from har_edge.inference.reference import ReferenceModel

        ref = ReferenceModel.from_keras(model)
        t0 = time.perf_counter()
        probs = ref.predict_proba(X)
        seconds = time.perf_counter() - t0
        m = classification_metrics(splits.test.y, probs.argmax(1), info.label_names)
        result = {
            "backend": "numpy", "test_accuracy": m["accuracy"], "test_macro_f1": m["macro_f1"],
            "max_abs_diff_vs_keras": float(np.abs(probs - keras_probs).max()),
            "argmax_agreement": float((probs.argmax(1) == keras_probs.argmax(1)).mean()),
            "keras_test_accuracy": float((keras_probs.argmax(1) == splits.test.y).mean()),
            "windows_per_second": round(len(X) / seconds, 1), "n_test": int(len(X)), "test": m,
        }
        out = Path(args.out) if args.out else None
    else:
        m = classification_metrics(splits.test.y, keras_probs.argmax(1), info.label_names)
        result = dict(info.metrics, test_accuracy=m["accuracy"], test_macro_f1=m["macro_f1"], test=m, backend="keras")
        out = Path(args.out) if args.out else info.run_dir / "metrics.json"
    if out is not None:
        write_json(out, result)
    # printed rounded (as train does); the JSON file keeps full precision
    summary = {k: (round(v, 4) if k.startswith("test_") and isinstance(v, float) else v)
               for k, v in result.items() if k in ("backend", "test_accuracy", "test_macro_f1", "max_abs_diff_vs_keras")}
    print(json.dumps(summary))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from har_edge.export.pipeline import export_run
    from har_edge.export.report import format_report

    from har_edge.cli.progress import StepProgress

    root = run_data_root(args.data_root, args.run_dir)
    with StepProgress("export") as progress:
        report = export_run(args.run_dir, args.quant, args.out, data_root=root, target=args.target,
                            check_interpreters=not args.no_interpreter_check, arena_margin=args.arena_margin,
                            on_step=progress)
    print(format_report(report))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from har_edge.data.official import prepare

    t0 = time.monotonic()
    print(f"data prepare {args.dataset}: reading {args.source} ...", file=sys.stderr)
    done = prepare(args.dataset, args.source, args.out)
    for line in done.summary:
        print(line)
    print(f"done in {time.monotonic() - t0:.0f} s; use it with --data-root {done.out_dir} (or HAR_EDGE_DATA={done.out_dir})")
    return 0
