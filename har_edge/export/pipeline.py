"""``har-edge export``: a trained run → quantised bundles with a measured parity report.

For each mode: convert (fixed batch 1, fused LSTM), check the ops, write the bundle (model +
manifest, atomically), evaluate on the held-out test subjects in LiteRT through the same
:class:`~har_edge.inference.classifier.Classifier` the device uses, and compare with Keras.
Forecast runs (``run.json`` says ``"task": "forecast"``) take the same steps (:func:`convert_mode`,
:func:`finish_bundle`) with their own manifest and evaluation (:mod:`har_edge.export.forecast_export`).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from har_edge import __version__
from har_edge.data.datasets import prepare_windows
from har_edge.data.units import normalise_unit_name
from har_edge.errors import ExportError
from har_edge.evaluation.metrics import classification_metrics
from har_edge.export.stream_export import build_stream_twin, stream_manifest_fields, stream_representative, stream_test_set
from har_edge.export.converter import QUANT_MODES, build_export_twin, check_deployable_ops, convert_to_tflite, representative_windows
from har_edge.export.tflite_rewrite import embed_metadata, set_lstm_cell_clip
from har_edge.inference.bundle import (CLASSIFICATION, EMBEDDED_MANIFEST_KEY, MODEL_NAME, Bundle, embedded_manifest_bytes,
                                       prepare_manifest, seal_model, sha256_bytes, write_bundle)
from har_edge.inference.classifier import Classifier
from har_edge.inference.flatbuffer import model_ops
from har_edge.inference.interpreter import TfliteRunner
from har_edge.forecasting.run import load_forecast_run
from har_edge.models.run_dir import RunInfo, load_run_info, write_json
from har_edge.models.training import load_keras_model, predict_probabilities

__all__ = ["export_run", "build_manifest", "convert_mode", "finish_bundle"]

log = logging.getLogger(__name__)


def build_manifest(info: RunInfo, mode: str, runner: TfliteRunner, metrics: dict[str, Any]) -> dict[str, Any]:
    """Everything the device needs, from the run and the converted model's tensor details."""
    pre = info.preprocessing
    raw = [{"name": n, "unit": u} for n, u in zip(pre.used_inputs, pre.input_units)] if pre is not None else \
        [{"name": n, "unit": normalise_unit_name(u)} for n, u in zip(info.channel_names, info.units)]
    scale_in, zero_in = runner.input_quant
    scale_out, zero_out = runner.output_quant
    return {
        "task": CLASSIFICATION,
        "name": info.config.name,
        "quantization": mode,
        "labels": list(info.label_names),
        "sample_rate_hz": info.sample_rate_hz,
        "window_samples": info.window_samples,
        "hop_samples": info.hop_samples,
        "channels": [{"name": n, "unit": u} for n, u in zip(info.channel_names, info.units)],
        "raw_inputs": raw,
        "preprocessing": None if pre is None else pre.to_dict(),
        "normalisation": info.normalisation.to_dict(),
        "input": {"shape": list(runner.input_shape), "dtype": runner.input_dtype.name, "scale": float(scale_in), "zero_point": int(zero_in)},
        "output": {"shape": list(runner.output_shape), "dtype": runner.output_dtype.name, "scale": float(scale_out), "zero_point": int(zero_out)},
        "model": {"cell": info.config.model.cell, "units": list(info.config.model.units), "conv_filters": list(info.config.model.conv_filters)},
        "metrics": metrics,
        "har_edge_version": __version__,
        "created_unix_s": round(time.time(), 3),
        **stream_manifest_fields(info),
        **({"smoothing": dict(info.config.smoothing)} if info.config.smoothing else {}),
    }


_PROBE = r"""
import sys
import numpy as np
from har_edge.inference.interpreter import TfliteRunner
kind, path = sys.argv[1], sys.argv[2]
with open(path, "rb") as f:
    runner = TfliteRunner(f.read(), backend=kind)
out = runner.run(np.zeros(runner.input_shape, runner.input_dtype))
print("nan" if not np.isfinite(out.astype(np.float64)).all() else "ok")
"""


def _probe_python(kind: str) -> str:
    """The Python that probes ``kind``: tflite-runtime needs numpy < 2, so it may live in its own venv
    (``$HAR_EDGE_TFLITE_RUNTIME_PYTHON``, or ``.venv-tflite`` of a source checkout, as ``make test`` builds)."""
    if kind == "tflite-runtime":
        env = os.environ.get("HAR_EDGE_TFLITE_RUNTIME_PYTHON")
        local = Path(__file__).resolve().parents[2] / ".venv-tflite" / "bin" / "python"
        if env:
            return env
        if local.exists():
            return str(local)
    return sys.executable


def _interpreter_support(model_path: Path) -> dict[str, str]:
    """Which interpreters load and run the model: ``ok``, ``fails: …`` or ``not installed`` (each in a subprocess)."""
    result = {}
    # the probing Python may be another venv's (tflite-runtime): har_edge is importable there from this source tree
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                   os.environ.get("PYTHONPATH")])))
    for kind in ("litert", "tflite-runtime", "tensorflow", "tflm"):
        try:
            p = subprocess.run([_probe_python(kind), "-c", _PROBE, kind, str(model_path)], capture_output=True, text=True,
                               timeout=120, env=env)
        except subprocess.TimeoutExpired:
            result[kind] = "fails: timeout"
            continue
        out = p.stdout.strip().splitlines()
        if p.returncode == 0 and out and out[-1] == "ok":
            result[kind] = "ok"
        elif p.returncode == 0 and out and out[-1] == "nan":
            result[kind] = "fails: returns NaN"
        elif "ModuleNotFoundError" in p.stderr or "BackendNotAvailable" in p.stderr:
            result[kind] = "not installed"
        else:
            last = (p.stderr.strip().splitlines() or [f"exit code {p.returncode}"])[-1]
            result[kind] = f"fails: {last[:160]}"
    return result


def _evaluate(bundle: Bundle, X_norm: np.ndarray, y: np.ndarray, labels: tuple[str, ...], *,
              reset: np.ndarray | None = None) -> dict[str, Any]:
    """Run the in-memory ``bundle`` through the device's Classifier on normalised test windows ``(n, T, C)``
    (``reset``: where a streaming model's state starts from zero; default every window).

    Returns ``probabilities`` ``(n, k)``, ``metrics``, ``latency_ms``, ``backend``, and the model's own
    ``inputs`` ``(n, T, C)`` and ``raw`` outputs ``(n, k)`` (int8 for full-int8 models).
    """
    with Classifier(bundle) as clf:
        inputs = clf.quantise_input(X_norm)
        raw = clf.runner.run_batch(inputs, reset=reset)
        probs = clf.runner.dequantise_output(raw)
        return {"probabilities": probs, "metrics": _metrics(y, probs, labels),
                "latency_ms": _latency_ms(clf, X_norm), "backend": clf.backend, "inputs": inputs, "raw": raw}


def _latency_ms(clf: Classifier, X: np.ndarray, repeats: int = 300) -> float:
    xs = X[: min(len(X), 50)]
    for x in xs[:10]:
        clf.probabilities_normalised(x)
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        clf.probabilities_normalised(xs[i % len(xs)])
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def convert_mode(twin: Any, mode: str, representative: np.ndarray | None, *, cell: str) -> tuple[bytes, list[str], float | None]:
    """Convert the export twin in one mode and check its ops; returns ``(model bytes, ops, lstm cell clip)``.

    The converter writes cell_clip=10 into the fused LSTM; Keras never clips. Float modes clear it so
    they compute what the trained model computes; int8 keeps it (its int16 cell state is calibrated
    with the clip in place).
    """
    data = convert_to_tflite(twin, mode, representative=representative if mode == "int8" else None)
    ops = model_ops(data, where=f"{mode} model")
    check_deployable_ops(ops, cell=cell)
    cell_clip = 10.0 if "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops else None
    if cell_clip is not None and mode != "int8":
        data, _ = set_lstm_cell_clip(data, 0.0, where=f"{mode} model")
        cell_clip = 0.0
    return data, ops, cell_clip


def finish_bundle(mode_dir: Path, data: bytes, manifest: dict[str, Any], entry: dict[str, Any], *, mode: str,
                  check_interpreters: bool) -> Bundle:
    """Embed the manifest in the model, write the bundle atomically and (optionally) probe every interpreter.

    ``entry`` (the mode's report row) gets ``size_bytes``, ``size_bytes_without_manifest`` and ``interpreters``.
    """
    # the manifest travels inside the model (metadata entry) and beside it (manifest.json)
    plain_size = len(data)
    manifest = prepare_manifest(manifest, data)  # weights_sha256: a placeholder of the right length...
    data = embed_metadata(data, {EMBEDDED_MANIFEST_KEY: embedded_manifest_bytes(manifest)}, where=f"{mode} model")
    data = seal_model(data, where=f"{mode} model")  # ...filled in place with the whole file's hash
    entry["size_bytes"] = len(data)
    entry["size_bytes_without_manifest"] = plain_size
    bundle = write_bundle(mode_dir, data, manifest)
    if check_interpreters:
        entry["interpreters"] = _interpreter_support(bundle.model_path)
    return bundle


def export_run(
    run_dir: str | Path,
    quant: str,
    out_dir: str | Path,
    *,
    data_root: Path,
    target: str | None = None,
    representative_count: int = 300,
    check_interpreters: bool = True,
    arena_margin: float = 0.25,
    on_step: Callable[[int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Export ``run_dir`` in one mode (or ``all``) to ``out_dir``; returns the report (also ``report.json``).

    Layout: one mode → ``OUT_DIR/model.tflite`` + ``manifest.json``; ``all`` → ``OUT_DIR/<mode>/...``.
    ``target="mcu"`` adds ``OUT_DIR/mcu/`` (C array, settings, op resolver, measured arena) for int8;
    its tensor arena is the measured one × (1 + ``arena_margin``).
    ``on_step(done, total, what)`` is called before each step (and once at the end with ``done == total``).

    Accuracy differences in the report are signed: ``accuracy_delta_pp`` = TFLite − Keras in
    percentage points (a drop is negative).
    """
    modes = list(QUANT_MODES) if quant == "all" else [quant]
    if quant != "all" and quant not in QUANT_MODES:
        raise ExportError(f"unknown --quant {quant!r}; expected one of {', '.join(QUANT_MODES)} or all")
    if target not in (None, "mcu"):
        raise ExportError(f"unknown --target {target!r}; expected 'mcu'")
    if target == "mcu" and "int8" not in modes:
        raise ExportError("--target mcu needs the int8 model: use --quant int8 (or all)")
    if not 0 <= arena_margin <= 10:
        raise ExportError(f"arena margin {arena_margin}; expected a fraction between 0 and 10 (0.25 = 25 %)")
    from har_edge.forecasting.run import is_forecast_run

    forecast = is_forecast_run(run_dir)
    if forecast and target is not None:
        raise ExportError(f"--target {target} is for classifiers; a forecast run exports bundles only")
    if target == "mcu":
        from har_edge.export.tflm_host import require_tflm

        require_tflm()  # before minutes of conversion, not after
    info: Any = load_forecast_run(run_dir) if forecast else load_run_info(run_dir)
    model = load_keras_model(info.run_dir)
    out = Path(out_dir)
    stage = out.with_name(out.name + ".staging")
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        if forecast:
            from har_edge.export.forecast_export import export_forecast_into

            report = export_forecast_into(info, model, modes, stage, data_root=data_root, representative_count=representative_count,
                                          check_interpreters=check_interpreters, single=quant != "all")
        else:
            report = _export_into(info, model, modes, stage, data_root=data_root, target=target,
                                  representative_count=representative_count, check_interpreters=check_interpreters,
                                  single=quant != "all", arena_margin=arena_margin, on_step=on_step)
        write_json(stage / "report.json", report)
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return report


@dataclass(frozen=True)
class _TestInputs:
    """What export evaluates: normalised test windows ``X``, labels ``y`` (-1: unlabelled, not scored), the Keras
    probabilities, ``reset`` (``None``: every window from zero state; else where each stream starts), the twin
    and the calibration windows."""

    X: np.ndarray
    y: np.ndarray
    keras_probs: np.ndarray
    reset: np.ndarray | None
    twin: Any
    representative: np.ndarray
    subjects: list[int]


def _test_inputs(info: RunInfo, model: Any, data_root: Path, representative_count: int) -> _TestInputs:
    if info.config.streaming is not None:  # a streaming model: every window of the test recordings, in order
        ts = stream_test_set(model, info, data_root)
        # as many new samples as representative_count windows of a 128-sample window classifier
        count = representative_count * -(-128 // info.hop_samples)
        rep = stream_representative(info, data_root, count=count, seed=info.config.train.seed)
        return _TestInputs(ts.X, ts.y, ts.keras_probs, ts.reset, build_stream_twin(model, info), rep, ts.subjects)
    splits = prepare_windows(info.config, data_root)
    norm = info.normalisation
    Xte = norm.transform(splits.test.X)
    twin = build_export_twin(model, info.config, window_samples=info.window_samples, n_channels=len(info.channel_names),
                             n_classes=len(info.label_names))
    rep = representative_windows(norm.transform(splits.train.X), splits.train.y, count=representative_count, seed=info.config.train.seed)
    return _TestInputs(Xte, splits.test.y, predict_probabilities(model, Xte), None, twin, rep,
                       sorted(set(int(s) for s in splits.test.subject)))


def _metrics(y: np.ndarray, probs: np.ndarray, labels: tuple[str, ...]) -> dict[str, Any]:
    """Classification metrics on the labelled windows (``y >= 0``)."""
    keep = y >= 0
    return classification_metrics(y[keep], probs[keep].argmax(1), labels)


def _export_into(info: RunInfo, model: Any, modes: list[str], stage: Path, *, data_root: Path, target: str | None,
                 representative_count: int, check_interpreters: bool, single: bool, arena_margin: float,
                 on_step: Callable[[int, int, str], None] | None) -> dict[str, Any]:
    per_mode = 2 + int(check_interpreters)
    total = 1 + per_mode * len(modes) + int(target == "mcu")
    done = 0

    def step(what: str) -> None:
        nonlocal done
        if on_step is not None:
            on_step(done, total, what)
        done += 1

    step("test windows and Keras predictions")
    t = _test_inputs(info, model, data_root, representative_count)
    Xte, yte, keras_probs, twin, rep = t.X, t.y, t.keras_probs, t.twin, t.representative
    labels = info.label_names
    keras_m = _metrics(yte, keras_probs, labels)
    report: dict[str, Any] = {
        "run_dir": str(info.run_dir),
        "n_test_windows": int(len(yte)),
        "test_subjects": t.subjects,
        "keras": {"test_accuracy": keras_m["accuracy"], "test_macro_f1": keras_m["macro_f1"]},
        "modes": {},
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    for mode in modes:
        t0 = time.monotonic()
        step(f"{mode}: converting")
        data, ops, cell_clip = convert_mode(twin, mode, rep, cell=info.config.model.cell)
        mode_dir = stage if single else stage / mode
        with TfliteRunner(data, where=f"{mode} model") as probe:
            manifest = build_manifest(info, mode, probe, {"keras": report["keras"]})
        # evaluate through the device's own Classifier on the in-memory bundle, then write it once
        in_memory = Bundle(directory=mode_dir, model_path=mode_dir / MODEL_NAME, model_bytes=data,
                           manifest=dict(manifest, model_sha256=sha256_bytes(data)))
        step(f"{mode}: evaluating on {len(yte)} test windows")
        ev = _evaluate(in_memory, Xte, yte, labels, reset=t.reset)
        probs, m, latency = ev["probabilities"], ev["metrics"], ev["latency_ms"]
        entry = {
            "test_accuracy": m["accuracy"],
            "test_macro_f1": m["macro_f1"],
            "accuracy_delta_pp": round((m["accuracy"] - keras_m["accuracy"]) * 100, 3),
            "size_bytes": len(data),
            "ops": ops,
            "lstm_cell_clip": cell_clip,
            "max_abs_diff_vs_keras": float(np.abs(probs - keras_probs).max()),
            "p99_abs_diff_vs_keras": float(np.percentile(np.abs(probs - keras_probs).max(axis=1), 99)),
            "argmax_agreement": float((probs.argmax(1) == keras_probs.argmax(1)).mean()),
            "latency_ms_per_window": round(latency, 4),
            "latency_backend": ev["backend"],
            "input": manifest["input"],
            "output": manifest["output"],
            "bundle": str(mode_dir.name if not single else "."),
            "seconds": round(time.monotonic() - t0, 1),
        }
        manifest["metrics"] = {"keras": report["keras"], "tflite": {k: entry[k] for k in ("test_accuracy", "test_macro_f1", "max_abs_diff_vs_keras", "argmax_agreement")}}
        if check_interpreters:
            step(f"{mode}: writing the bundle and loading it in every interpreter")
        bundle = finish_bundle(mode_dir, data, manifest, entry, mode=mode, check_interpreters=check_interpreters)
        report["modes"][mode] = entry
        if mode == "int8" and target == "mcu":
            from har_edge.export.mcu import write_mcu_export

            step("mcu: measuring the TFLite Micro arena and checking parity")
            report["mcu"] = write_mcu_export(bundle.model_bytes, bundle.manifest, stage / "mcu", arena_margin=arena_margin,
                                             X_test_int8=ev["inputs"], y_test=yte, litert_outputs_int8=ev["raw"], reset=t.reset)
        log.info("%s: accuracy %.4f (keras %.4f), %d bytes, %.3f ms/window", mode, m["accuracy"], keras_m["accuracy"], len(data), latency)
    if single:
        report["tflite"] = report["modes"][modes[0]]
        report["quantization"] = modes[0]
    if on_step is not None:
        on_step(total, total, "done")
    return report
