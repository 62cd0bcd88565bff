"""Benchmark the NumPy reference engine against LiteRT float32 on a run's test windows.

Loads ``RUN_DIR/model.keras``, reads it into a :class:`~har_edge.inference.reference.ReferenceModel`,
converts a ``batch_size=1`` twin of the same architecture to a float32 ``.tflite`` (the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` op for LSTMs) and runs both on the held-out test windows:

* throughput (windows/s): NumPy batched (``predict_proba``), NumPy one window at a time
  (``infer_window``, the streaming case) and LiteRT one window per ``invoke()`` (its model has batch 1);
* agreement: max |Δp| and argmax agreement between NumPy, LiteRT and Keras, and each one's accuracy.
  LiteRT runs the model as ``har-edge export`` ships it (the converter's LSTM ``cell_clip=10`` cleared,
  :func:`~har_edge.export.tflite_rewrite.set_lstm_cell_clip`); the converter's own output, which clips
  the cell state at ±10 where Keras does not, is compared too, with NumPy at ``lstm_cell_clip=10``;
* with ``--tflite BUNDLE`` (repeatable): the reference read back from that exported ``.tflite``
  (:func:`~har_edge.inference.reference_tflite.reference_from_tflite`, float32 / float16 / dynamic)
  against LiteRT running the same file.

Run::

    OPENBLAS_NUM_THREADS=1 HAR_EDGE_DATA=../shared/data \\
        .venv/bin/python benchmarks/bench_reference.py runs/final/uci_har_9ch --threads 1 \
        --tflite runs/final/export_uci_har_9ch

``OPENBLAS_NUM_THREADS`` must be set in the environment (NumPy reads it at import); ``--threads``
is LiteRT's ``num_threads``. Writes JSON to ``--out`` (default ``benchmarks/results/reference.json``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from har_edge.data.datasets import prepare_windows
from har_edge.data.paths import resolve_data_root
from har_edge.errors import HarEdgeError
from har_edge.export.converter import build_export_twin, convert_to_tflite
from har_edge.export.tflite_rewrite import set_lstm_cell_clip
from har_edge.inference.flatbuffer import model_ops
from har_edge.inference.interpreter import TfliteRunner
from har_edge.inference.reference import ReferenceModel
from har_edge.inference.reference_tflite import reference_from_tflite
from har_edge.models.run_dir import load_run_info
from har_edge.models.training import load_keras_model, predict_probabilities

log = logging.getLogger("bench_reference")

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "reference.json"


def _best_seconds(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _to_tflite_float(model: Any, info: Any, n_channels: int) -> bytes:
    """The export's batch-1 twin of the model, converted to float32 (the converter's output, cell clip included)."""
    twin = build_export_twin(model, info.config, window_samples=info.window_samples, n_channels=n_channels,
                             n_classes=len(info.label_names))
    return convert_to_tflite(twin, "float32")


def _litert(tflite: bytes, threads: int) -> TfliteRunner:
    return TfliteRunner(tflite, backend="litert", num_threads=threads)


def _agreement(a: NDArray[np.floating], b: NDArray[np.floating]) -> dict[str, float]:
    return {"max_abs_diff": float(np.abs(a.astype(np.float64) - b).max()),
            "argmax_agreement": float((a.argmax(1) == b.argmax(1)).mean())}


def _tflite_rows(bundles: list[Path], X: NDArray[np.float32], y: NDArray[Any], threads: int) -> dict[str, Any]:
    """For each exported bundle: the reference read from its ``.tflite`` vs LiteRT running that file."""
    from har_edge.inference.bundle import load_bundle

    rows: dict[str, Any] = {}
    for path in bundles:
        bundle = load_bundle(path)
        log.info("reference from %s vs litert", bundle.model_path)
        p_ref = reference_from_tflite(bundle.model_bytes, where=str(bundle.model_path)).predict_proba(X)
        p_lite = _litert(bundle.model_bytes, threads).predict(X)
        rows[str(path)] = {**_agreement(p_ref, p_lite), "reference_accuracy": float((p_ref.argmax(1) == y).mean()),
                           "litert_accuracy": float((p_lite.argmax(1) == y).mean())}
    return rows


def run(run_dir: Path, data_root: Path, *, threads: int, repeats: int, batch_size: int, single_windows: int,
        tflite_bundles: list[Path] | None = None) -> dict[str, Any]:
    """Measure everything; returns the JSON-able result."""
    info = load_run_info(run_dir)
    splits = prepare_windows(info.config, data_root)
    X = info.normalisation.transform(splits.test.X)
    y = splits.test.y
    n = len(X)
    model = load_keras_model(run_dir)
    ref = ReferenceModel.from_keras(model)
    ref_clip = ReferenceModel.from_keras(model, lstm_cell_clip=10.0)  # what the fused TFLite LSTM computes
    converted = _to_tflite_float(model, info, X.shape[2])  # the converter's output: cell_clip=10
    tflite = set_lstm_cell_clip(converted, 0.0)[0] if info.config.model.cell == "lstm" else converted  # as exported

    runner = _litert(tflite, threads)
    ops = sorted(model_ops(tflite))

    log.info("keras predict on %d windows", n)
    t_keras, p_keras = _best_seconds(lambda: predict_probabilities(model, X), 1)
    log.info("numpy float32, batch %d", batch_size)
    ref.predict_proba(X[:batch_size], batch_size=batch_size)  # warm-up
    t_np, p_np = _best_seconds(lambda: ref.predict_proba(X, batch_size=batch_size), repeats)
    log.info("numpy float64")
    t_np64, p_np64 = _best_seconds(lambda: ref.predict_proba(X, dtype="float64", batch_size=batch_size), 1)
    p_clip = ref_clip.predict_proba(X, batch_size=batch_size)
    m = min(single_windows, n)
    log.info("numpy one window at a time (%d windows)", m)
    t_np1, _ = _best_seconds(lambda: [ref.infer_window(x) for x in X[:m]], repeats)
    log.info("litert float32, one window per invoke (%d windows)", n)
    runner.predict(X[:10])  # warm-up
    t_lite, p_lite = _best_seconds(lambda: runner.predict(X), repeats)
    p_lite_converter = _litert(converted, threads).predict(X)

    def backend(seconds: float, windows: int, probs: NDArray[np.floating] | None) -> dict[str, Any]:
        d: dict[str, Any] = {"seconds": round(seconds, 4), "windows": windows, "windows_per_s": round(windows / seconds, 1),
                             "ms_per_window": round(1e3 * seconds / windows, 4)}
        if probs is not None:
            d["test_accuracy"] = float((probs.argmax(1) == y).mean())
        return d

    return {
        "run_dir": str(run_dir),
        "model": {"name": info.config.name, "cell": info.config.model.cell, "units": list(info.config.model.units),
                  "conv_filters": list(info.config.model.conv_filters), "parameters": ref.count_params(),
                  "tflite_bytes": len(tflite), "tflite_ops": ops, "reference_npz_layers": [l.kind for l in ref.layers]},
        "test_windows": n,
        "setup": {"litert_num_threads": threads, "numpy_batch_size": batch_size, "repeats": repeats,
                  "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"), "cpu_count": os.cpu_count(),
                  "machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
                  "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
        "throughput": {
            "numpy_float32_batched": backend(t_np, n, p_np),
            "numpy_float64_batched": backend(t_np64, n, p_np64),
            "numpy_float32_one_window": backend(t_np1, m, None),
            "litert_float32_one_window": backend(t_lite, n, p_lite),
            "keras_predict_batched": backend(t_keras, n, p_keras),
        },
        "ratio_numpy_batched_over_litert": round(t_lite / t_np, 3),
        "ratio_numpy_one_window_over_litert": round((t_lite / n) / (t_np1 / m), 3),
        "agreement": {
            "numpy_vs_keras": _agreement(p_np, p_keras),
            "numpy_vs_litert": _agreement(p_np, p_lite),
            "litert_vs_keras": _agreement(p_lite, p_keras),
            "numpy64_vs_keras": _agreement(p_np64, p_keras),
            "litert_converter_clip10_vs_keras": _agreement(p_lite_converter, p_keras),
            "numpy_cell_clip10_vs_litert_converter": _agreement(p_clip, p_lite_converter),
        },
        "tflite_reader_vs_litert": _tflite_rows(tflite_bundles or [], X, y, threads),
    }


def format_table(result: dict[str, Any]) -> str:
    lines = [f"{result['run_dir']}: {result['model']['cell']} {result['model']['units']} conv {result['model']['conv_filters']}, "
             f"{result['model']['parameters']} parameters, {result['test_windows']} test windows",
             f"{'backend':<28}{'windows/s':>12}{'ms/window':>12}{'accuracy':>10}"]
    for name, d in result["throughput"].items():
        acc = f"{d['test_accuracy']:.4f}" if "test_accuracy" in d else "-"
        lines.append(f"{name:<28}{d['windows_per_s']:>12.1f}{d['ms_per_window']:>12.3f}{acc:>10}")
    lines.append(f"numpy batched / litert speed: {result['ratio_numpy_batched_over_litert']:.2f}x; "
                 f"numpy one-window / litert: {result['ratio_numpy_one_window_over_litert']:.2f}x")
    for name, d in result["agreement"].items():
        lines.append(f"{name:<28} max |dp| {d['max_abs_diff']:.2e}   argmax agreement {d['argmax_agreement']:.4f}")
    for name, d in result.get("tflite_reader_vs_litert", {}).items():
        lines.append(f"from {name}: max |dp| {d['max_abs_diff']:.2e}   argmax agreement {d['argmax_agreement']:.4f}   "
                     f"accuracy {d['reference_accuracy']:.4f} (litert {d['litert_accuracy']:.4f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run directory written by `har-edge train`")
    parser.add_argument("--data-root", default=None, help="data root (default: $HAR_EDGE_DATA)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON output (default {DEFAULT_OUT})")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT num_threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats; the best is reported (default 3)")
    parser.add_argument("--batch-size", type=int, default=512, help="NumPy windows per chunk (default 512)")
    parser.add_argument("--single-windows", type=int, default=300, help="windows timed one at a time in NumPy (default 300)")
    parser.add_argument("--tflite", type=Path, action="append", default=[], metavar="BUNDLE",
                        help="an exported bundle (directory or .tflite) of this run to read back into the reference "
                             "and compare with LiteRT; repeatable")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        result = run(args.run_dir, resolve_data_root(args.data_root), threads=args.threads, repeats=args.repeats,
                     batch_size=args.batch_size, single_windows=args.single_windows,
                     tflite_bundles=args.tflite)
    except HarEdgeError as exc:
        log.error("error: %s", exc)
        return 1
    print(format_table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
