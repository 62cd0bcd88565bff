"""TFLite Micro on the host: tensor arena measurement and int8 verification, in subprocesses.

``measure_arena`` finds the smallest tensor arena with which the TFLite Micro Python interpreter
allocates and invokes a model, by parallel bisection; every probe runs in its own subprocess (a
too-small arena can segfault). ``run_tflm`` runs quantised test windows through TFLM (host) and
``verify_tflm`` (``_verify`` for ``write_mcu_export`` in ``har_edge.export.mcu``) compares its
outputs with the labels, with LiteRT's default and reference kernels, and diagnoses per operator and
per LSTM time step where TFLM and LiteRT part (``har_edge.export.tflm_parity``; ``run_tflm_tensors``
collects TFLM's intermediate tensors). The host is 64-bit: a 32-bit MCU build needs somewhat
different sizes.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BackendNotAvailable, ExportError
from har_edge.export.tflm_parity import (DIAGNOSE_WINDOWS, compare_outputs, diagnose, explain_difference,
                                         litert_int8_outputs, litert_op_tensors)

__all__ = [
    "TFLM_INSTALL_HINT",
    "measure_arena",
    "probe_arena",
    "require_tflm",
    "run_tflm",
    "run_tflm_tensors",
    "verify_tflm",
]

logger = logging.getLogger("har_edge.export.mcu")  # split out of mcu.py: same logger as before

TFLM_INSTALL_HINT = ('tflite-micro is needed for the MCU export (arena measurement, parity check): install the '
                     'mcu extra, e.g. pip install ".[mcu]" in a clone (tflite-micro has wheels for Linux x86-64 only)')
_ARENA_ALIGN = 16
_MAX_ARENA_BYTES = 256 * 1024 * 1024
_PROBE_TIMEOUT_S = 120.0


# --------------------------------------------------------------------------- TFLM subprocesses

_WORKER = r"""
import sys
import numpy as np
from har_edge.inference.interpreter import TfliteRunner
mode, model_path, arena = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(model_path, "rb") as f:
    model = f.read()
runner = TfliteRunner(model, backend="tflm", arena_bytes=arena, preserve_all_tensors=mode == "tensors")
if mode in ("probe", "hint"):
    runner.run(np.zeros(runner.input_shape, runner.input_dtype))
    if mode == "hint":
        runner.interpreter.print_allocations()
elif mode == "tensors":
    x, tensors = np.load(sys.argv[4]), [int(t) for t in sys.argv[6].split(",")]
    out = []
    for window in x:
        runner.run(window[None])
        out.append([runner.tensor(t) for t in tensors])
    np.savez(sys.argv[5], **{f"t{t}": np.stack([w[k] for w in out]) for k, t in enumerate(tensors)})
else:
    x = np.load(sys.argv[4])
    reset = np.load(sys.argv[6]) if len(sys.argv) > 6 else None
    np.save(sys.argv[5], runner.run_batch(x, reset=reset).reshape(len(x), -1))
sys.stdout.write("ok\n")
"""


def require_tflm() -> None:
    if importlib.util.find_spec("tflite_micro") is None:
        raise BackendNotAvailable(TFLM_INSTALL_HINT)


def _run_worker(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", _WORKER, *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ExportError(f"TFLite Micro worker {args[0]} timed out after {timeout_s:.0f} s") from exc


def _probe_file(model_path: Path, arena_bytes: int, *, hint: bool = False) -> tuple[bool, int | None]:
    proc = _run_worker(["hint" if hint else "probe", str(model_path), str(int(arena_bytes))], _PROBE_TIMEOUT_S)
    ok = proc.returncode == 0 and proc.stdout.strip().endswith("ok")
    m = re.search(r"Arena allocation total (\d+) bytes", proc.stderr)
    return ok, int(m.group(1)) if (ok and m) else None


def probe_arena(tflite_bytes: bytes, arena_bytes: int) -> bool:
    """True when TFLM (host) allocates and invokes the model with ``arena_bytes``; segfault-safe."""
    require_tflm()
    with tempfile.TemporaryDirectory(prefix="har_mcu_") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(tflite_bytes)
        return _probe_file(path, arena_bytes)[0]


def _align(n: float, step: int = _ARENA_ALIGN) -> int:
    return int(math.ceil(n / step) * step)


def measure_arena(tflite_bytes: bytes, *, granularity: int = _ARENA_ALIGN, max_bytes: int = _MAX_ARENA_BYTES) -> int:
    """Smallest tensor arena (multiple of ``granularity``) with which TFLM allocates and invokes.

    Parallel k-ary bisection; each probe is a subprocess. Measured on the 64-bit host.

    Raises:
        ExportError: the model does not run under TFLM even with ``max_bytes``.
    """
    require_tflm()
    k = max(1, min(3, os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="har_mcu_") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(tflite_bytes)
        hi = _align(max(64 * 1024, 16 * len(tflite_bytes)), granularity)
        ok, hint = _probe_file(path, hi, hint=True)
        while not ok:
            if hi >= max_bytes:
                raise ExportError(
                    f"TFLite Micro cannot allocate and invoke the model even with a {max_bytes} byte arena; "
                    "TFLM runs float32 and full-int8 models only (see notes/stack.md)"
                )
            hi = min(hi * 4, max_bytes)
            ok, hint = _probe_file(path, hi, hint=True)
        lo = 0  # an empty arena always fails
        guesses = [hint, 1.25 * hint, 2 * hint] if hint else []
        n_probes = 1
        with ThreadPoolExecutor(max_workers=k) as pool:
            while hi - lo > granularity:
                pts = sorted({_align(p, granularity) for p in guesses} - {lo, hi})
                pts = [p for p in pts if lo < p < hi]
                guesses = []
                if not pts:
                    step = (hi - lo) / (k + 1)
                    pts = sorted({_align(lo + step * i, granularity) for i in range(1, k + 1)} - {hi})
                    pts = [p for p in pts if lo < p < hi] or [lo + granularity]
                results = list(pool.map(lambda a: _probe_file(path, a)[0], pts))
                n_probes += len(pts)
                oks = [p for p, r in zip(pts, results) if r]
                if oks:
                    hi = min(oks)
                fails = [p for p, r in zip(pts, results) if not r and p < hi]
                if any(not r and p > hi for p, r in zip(pts, results)):
                    logger.warning("TFLM arena probes are not monotonic around %d bytes", hi)
                if fails:
                    lo = max(lo, max(fails))
    logger.info("TFLM arena measured: %d bytes (%d probes, allocator hint %s)", hi, n_probes, hint)
    return hi


def run_tflm(tflite_bytes: bytes, x_int8: NDArray[np.int8], *, arena_bytes: int,
             reset: NDArray[np.bool_] | None = None) -> NDArray[np.int8]:
    """Run every window of ``x_int8`` ``(n, T, C)`` through TFLM (host), resetting state before each
    (``reset`` ``(n,)``: only where it is ``True``, for a streaming model's consecutive windows).

    One subprocess for all windows. Returns the raw int8 outputs ``(n, n_classes)``.
    """
    require_tflm()
    with tempfile.TemporaryDirectory(prefix="har_mcu_") as tmp:
        model_path, x_path, y_path = Path(tmp) / "model.tflite", Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        model_path.write_bytes(tflite_bytes)
        np.save(x_path, np.ascontiguousarray(x_int8, dtype=np.int8))
        args = ["run", str(model_path), str(int(arena_bytes)), str(x_path), str(y_path)]
        if reset is not None:
            np.save(Path(tmp) / "reset.npy", np.asarray(reset, dtype=bool))
            args.append(str(Path(tmp) / "reset.npy"))
        proc = _run_worker(args, _PROBE_TIMEOUT_S + 0.05 * len(x_int8))
        if proc.returncode != 0 or not y_path.exists():
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            raise ExportError(f"TFLite Micro run failed (exit code {proc.returncode}): {' | '.join(tail)}")
        return np.load(y_path).astype(np.int8)


def run_tflm_tensors(tflite_bytes: bytes, x_int8: NDArray[np.int8], tensors: list[int], *,
                     arena_bytes: int) -> dict[int, NDArray[Any]]:
    """Run windows ``(n, T, C)`` int8 through TFLM (host) with all tensors preserved; state reset per window.

    Returns ``{index: (n, *tensor_shape)}`` for the model tensor indices ``tensors``. Preserving every
    tensor needs more than ``arena_bytes`` (the plain arena); the caller adds the tensors' sizes.
    One subprocess for all windows.
    """
    require_tflm()
    if not tensors:
        return {}
    with tempfile.TemporaryDirectory(prefix="har_mcu_") as tmp:
        model_path, x_path, y_path = Path(tmp) / "model.tflite", Path(tmp) / "x.npy", Path(tmp) / "t.npz"
        model_path.write_bytes(tflite_bytes)
        np.save(x_path, np.ascontiguousarray(x_int8, dtype=np.int8))
        proc = _run_worker(["tensors", str(model_path), str(int(arena_bytes)), str(x_path), str(y_path),
                            ",".join(str(int(t)) for t in tensors)], _PROBE_TIMEOUT_S + 0.1 * len(x_int8))
        if proc.returncode != 0 or not y_path.exists():
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            raise ExportError(f"TFLite Micro tensor dump failed (exit code {proc.returncode}): {' | '.join(tail)}")
        with np.load(y_path) as z:
            return {int(k[1:]): z[k] for k in z.files}


# --------------------------------------------------------------------------- verification


def _empty_report(n: int = 0) -> dict[str, Any]:
    return {"n": n, "accuracy": None, "max_abs_diff_steps": None, "p99_abs_diff_steps": None,
            "frac_within_1_step": None, "argmax_agreement": None, "passed": None,
            "vs_litert_default": None, "vs_litert_reference": None, "litert_reference_vs_default": None,
            "reference_unavailable": None, "kernel_diagnosis": None, "diagnosis_unavailable": None}


def _kernel_diagnosis(tflite_bytes: bytes, x: NDArray[np.int8], arena_bytes: int) -> dict[str, Any]:
    ops, litert = litert_op_tensors(tflite_bytes, x)
    tensors = sorted(litert)
    extra = sum(_align(a[0].nbytes) for a in litert.values())  # preserved tensors are not overlaid
    arena = _align(arena_bytes + 2 * extra + 16 * 1024)
    try:
        tflm = run_tflm_tensors(tflite_bytes, x, tensors, arena_bytes=arena)
    except ExportError:
        tflm = run_tflm_tensors(tflite_bytes, x, tensors, arena_bytes=4 * arena)
    return diagnose(ops, litert, tflm)


def verify_tflm(tflite_bytes: bytes, x: NDArray[np.int8] | None, *, y: NDArray[Any] | None = None,
                litert_default: NDArray[Any] | None = None, arena_bytes: int,
                diagnose_windows: int = DIAGNOSE_WINDOWS, reset: NDArray[np.bool_] | None = None) -> dict[str, Any]:
    """Run windows ``x`` ``(n, T, C)`` int8 under TFLM (host) and compare with labels and LiteRT.

    Args:
        y: labels ``(n,)`` (or one-hot ``(n, K)``) for ``accuracy``.
        litert_default: LiteRT's default int8 outputs ``(n, K)``; the top-level difference keys,
            ``vs_litert_default`` and ``passed`` (max diff <= 1 step) refer to them.
        arena_bytes: tensor arena for TFLM.
        diagnose_windows: the first this many windows get the per-op / per-LSTM-step diagnosis (0: none).
        reset: ``(n,)`` where the recurrent state starts from zero (a streaming model's windows, in stream
            order; unlabelled windows have ``y < 0`` and are not scored); default: before every window.
            The per-op diagnosis (window by window from zero state) is skipped then.

    Returns:
        ``n``, ``accuracy``, ``max_abs_diff_steps``, ``p99_abs_diff_steps``, ``frac_within_1_step``,
        ``argmax_agreement``, ``passed``; ``vs_litert_default``, ``vs_litert_reference`` (LiteRT
        ``BUILTIN_REF`` kernels, no delegate) and ``litert_reference_vs_default``, each a dict of those
        four difference keys; ``kernel_diagnosis`` (see ``tflm_parity.diagnose``). ``None`` where not
        computed, with the reason in ``reference_unavailable`` / ``diagnosis_unavailable``.
    """
    if x is None:
        return _empty_report()
    out = run_tflm(tflite_bytes, x, arena_bytes=arena_bytes, reset=reset).astype(np.int32)
    report = _empty_report(int(len(x)))
    carried = reset is not None and not np.all(reset)
    if y is not None:
        labels = np.asarray(y)
        labels = labels.argmax(axis=1) if labels.ndim == 2 else labels.reshape(-1)
        scored = labels >= 0
        report["accuracy"] = float(np.mean(out.argmax(axis=1)[scored] == labels[scored]))
    if litert_default is not None:
        report["vs_litert_default"] = compare_outputs(out, litert_default)
        report.update(report["vs_litert_default"])
        report["passed"] = report["max_abs_diff_steps"] <= 1
    try:
        reference = litert_int8_outputs(tflite_bytes, x, reference=True, reset=reset)
    except (BackendNotAvailable, ExportError) as exc:
        report["reference_unavailable"] = report["diagnosis_unavailable"] = str(exc)
    else:
        report["vs_litert_reference"] = compare_outputs(out, reference)
        if litert_default is not None:
            report["litert_reference_vs_default"] = compare_outputs(reference, litert_default)
        if carried:
            report["diagnosis_unavailable"] = "a streaming model (state carried between windows): no per-window diagnosis"
        elif diagnose_windows > 0:
            try:
                report["kernel_diagnosis"] = _kernel_diagnosis(tflite_bytes, x[:diagnose_windows], arena_bytes)
            except (BackendNotAvailable, ExportError) as exc:
                report["diagnosis_unavailable"] = str(exc)
                logger.warning("TFLM kernel diagnosis failed: %s", exc)
        else:
            report["diagnosis_unavailable"] = "diagnose_windows=0"
    if report["passed"] is False:
        # expected for LSTMs (the integer kernels round differently): information, shown in the export report
        logger.info("TFLM vs LiteRT default int8 outputs: max %d steps (limit 1), %.2f%% within 1 step, argmax "
                       "agreement %.4f on %d windows; %s", report["max_abs_diff_steps"],
                       100 * report["frac_within_1_step"], report["argmax_agreement"], len(x),
                       explain_difference(report))
    summary = {k: v for k, v in report.items() if k != "kernel_diagnosis"}
    logger.info("TFLM host verification: %s", json.dumps(summary))
    return report


def _verify(tflite_bytes: bytes, x: NDArray[np.int8] | None, y: NDArray[Any] | None, ref: NDArray[Any] | None,
            arena_bytes: int, manifest: dict[str, Any], *, diagnose_windows: int = DIAGNOSE_WINDOWS,
            reset: NDArray[np.bool_] | None = None) -> dict[str, Any]:
    """``verify_tflm`` for ``write_mcu_export`` (``manifest`` is unused); an all-``None`` report without ``x``."""
    return verify_tflm(tflite_bytes, x, y=y, litert_default=ref, arena_bytes=arena_bytes,
                       diagnose_windows=diagnose_windows, reset=reset)
