"""``train``, ``evaluate`` and ``export`` (these need the ``train`` extra: TensorFlow), and ``data prepare``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from har_edge.config import RunConfig
from har_edge.data.paths import resolve_data_root
from har_edge.errors import ConfigError
from har_edge.data.recording import WindowSet

if TYPE_CHECKING:
    from har_edge.models.run_dir import RunInfo

__all__ = ["cmd_train", "cmd_evaluate", "cmd_export", "cmd_data", "recordings_for_run", "run_data_root"]


def _data_root(explicit: str | None, cfg: RunConfig) -> Path:
    """The public data sets' root; a ``recordings`` run reads its own folder and needs none."""
    if cfg.data.dataset == "recordings":
        return Path(explicit) if explicit else Path.cwd()
    return resolve_data_root(explicit)


def run_data_root(explicit: str | None, run_dir: str | Path) -> Path:
    """``--data-root`` if given, else the data root the run was trained on (recorded in its run.json) while
    that folder exists, else the default (:func:`~har_edge.data.paths.resolve_data_root`); a ``recordings``
    run reads its own folder."""
    from har_edge.errors import ModelError
    from har_edge.models.run_dir import load_run_info

    try:
        info = load_run_info(run_dir)
    except ModelError:  # not a classifier run (e.g. a forecast run): the default order
        return resolve_data_root(explicit)
    if explicit or info.config.data.dataset == "recordings":
        return _data_root(explicit, info.config)
    recorded = info.data_root
    if recorded is not None and Path(recorded).is_dir():
        print(f"data root: {recorded} (recorded in {Path(run_dir) / 'run.json'})", file=sys.stderr)
        return Path(recorded)
    return resolve_data_root(None)


def cmd_train(args: argparse.Namespace) -> int:
    from har_edge.config import load_run_config
    from har_edge.models.training import train_run

    overrides: dict[str, dict[str, object]] = {}
    if getattr(args, "recordings", None):
        overrides["data"] = {"dataset": "recordings", "path": str(Path(args.recordings).resolve())}
    if getattr(args, "init_from", None):
        overrides["train"] = {"init_from": str(Path(args.init_from).resolve())}
    cfg = load_run_config(args.config, overrides=overrides)
    if cfg.smoothing:  # fail now, not after training, on a [smoothing] table the device would refuse
        from har_edge.runtime.smoothing import SmoothingConfig

        try:
            SmoothingConfig(**cfg.smoothing)
        except TypeError as exc:
            raise ConfigError(f"{args.config} [smoothing]: {exc}") from exc
    if getattr(args, "seed", None) is not None:
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=int(args.seed)))
    root = _data_root(args.data_root, cfg)
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
    if args.recordings:
        test = recordings_for_run(info, args.recordings, only_split=args.split)
    else:
        test = prepare_windows(info.config, run_data_root(args.data_root, args.run_dir)).test
    X, y = info.normalisation.transform(test.X), test.y
    model = load_keras_model(info.run_dir)
    keras_probs = predict_probabilities(model, X)
    result: dict[str, object]
    if args.backend == "numpy":
        from har_edge.inference.reference import ReferenceModel

        ref = ReferenceModel.from_keras(model)
        t0 = time.perf_counter()
        probs = ref.predict_proba(X)
        seconds = time.perf_counter() - t0
        m = classification_metrics(y, probs.argmax(1), info.label_names)
        result = {
            "backend": "numpy", "test_accuracy": m["accuracy"], "test_macro_f1": m["macro_f1"],
            "max_abs_diff_vs_keras": float(np.abs(probs - keras_probs).max()),
            "argmax_agreement": float((probs.argmax(1) == keras_probs.argmax(1)).mean()),
            "keras_test_accuracy": float((keras_probs.argmax(1) == y).mean()),
            "windows_per_second": round(len(X) / seconds, 1), "n_test": int(len(X)), "test": m,
        }
        out = Path(args.out) if args.out else None
    else:
        m = classification_metrics(y, keras_probs.argmax(1), info.label_names)
        if args.recordings:  # the run's own metrics stay as they are
            result = {"backend": "keras", "test_accuracy": m["accuracy"], "test_macro_f1": m["macro_f1"], "test": m}
            out = Path(args.out) if args.out else None
        else:
            result = dict(info.metrics, test_accuracy=m["accuracy"], test_macro_f1=m["macro_f1"], test=m, backend="keras")
            out = Path(args.out) if args.out else info.run_dir / "metrics.json"
    if args.recordings:
        result.update(recordings=str(args.recordings), split=args.split or "all", n_test=int(len(y)))
    if out is not None:
        write_json(out, result)
    # printed rounded (as train does); the JSON file keeps full precision
    summary = {k: (round(v, 4) if k.startswith("test_") and isinstance(v, float) else v)
               for k, v in result.items() if k in ("backend", "test_accuracy", "test_macro_f1", "max_abs_diff_vs_keras",
                                                   "n_test", "recordings")}
    print(json.dumps(summary))
    return 0


def recordings_for_run(info: RunInfo, folder: str, *, only_split: str | None = None) -> WindowSet:
    """Every window of the recordings in ``folder`` through ``info``'s preprocessing, windowing and labels."""
    from har_edge.data.datasets import recording_windows
    from har_edge.models.fine_tuning import with_run_pipeline

    data = dataclasses.replace(info.config.data, dataset="recordings", path=str(folder), labels=(), test_groups=(),
                               validation_groups=(), max_train_windows=None, max_test_windows=None, train_hop_samples=None)
    cfg = with_run_pipeline(info.config.replace(data=data), info)
    return recording_windows(cfg, label_names=info.label_names, only_split=only_split, split_by="session")[0].windows


def cmd_export(args: argparse.Namespace) -> int:
    from har_edge.export.pipeline import export_run
    from har_edge.cli.progress import StepProgress
    from har_edge.export.report import format_report

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
