"""``train``, ``evaluate`` and ``export`` (these need the ``train`` extra: TensorFlow)."""

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

__all__ = ["cmd_train", "cmd_evaluate", "cmd_export", "recordings_for_run"]


def _data_root(explicit: str | None, cfg: RunConfig) -> Path:
    """The public data sets' root; a ``recordings`` run reads its own folder and needs none."""
    if cfg.data.dataset == "recordings":
        return Path(explicit) if explicit else Path.cwd()
    return resolve_data_root(explicit)


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
        test = prepare_windows(info.config, _data_root(args.data_root, info.config)).test
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
    summary = {k: result[k] for k in ("backend", "test_accuracy", "test_macro_f1", "max_abs_diff_vs_keras", "n_test",
                                      "recordings") if k in result}
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
    from har_edge.export.report import format_report
    from har_edge.models.run_dir import load_run_info

    root = _data_root(args.data_root, load_run_info(args.run_dir).config)
    report = export_run(args.run_dir, args.quant, args.out, data_root=root, target=args.target,
                        check_interpreters=not args.no_interpreter_check)
    print(format_report(report))
    return 0
