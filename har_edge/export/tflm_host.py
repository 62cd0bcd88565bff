"""TFLite Micro on the host: tensor arena measurement and int8 verification, in subprocesses.

``measure_arena`` finds the smallest tensor arena with which the TFLite Micro Python interpreter
allocates and invokes a model, by parallel bisection; every probe runs in its own subprocess (a
too-small arena can segfault). ``run_tflm`` runs quantised test windows through TFLM (host) and
``_verify`` compares its outputs with the labels and with LiteRT for ``write_mcu_export``
(``har_edge.export.mcu``). The host is 64-bit: a 32-bit MCU build needs somewhat different sizes.
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

__all__ = [
    "measure_arena",
    "probe_arena",
    "run_tflm",
]

logger = logging.getLogger("har_edge.export.mcu")  # split out of mcu.py: same logger as before

_ARENA_ALIGN = 16
_MAX_ARENA_BYTES = 256 * 1024 * 1024
_PROBE_TIMEOUT_S = 120.0


# --------------------------------------------------------------------------- TFLM subprocesses

_WORKER = r"""
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
mode, model_path, arena = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(model_path, "rb") as f:
    model = f.read()
interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
if mode in ("probe", "hint"):
    d = interp.get_input_details(0)
    interp.reset()
    interp.set_input(np.zeros(d["shape"], d["dtype"]), 0)
    interp.invoke()
    interp.get_output(0)
    if mode == "hint":
        interp.print_allocations()
else:
    x = np.load(sys.argv[4])
    out = []
    for window in x:
        interp.reset()  # the fused LSTM keeps its state between invokes
        interp.set_input(np.ascontiguousarray(window[None]), 0)
        interp.invoke()
        out.append(np.array(interp.get_output(0)).reshape(-1))
    np.save(sys.argv[5], np.stack(out))
sys.stdout.write("ok\n")
"""


def _require_tflm() -> None:
    if importlib.util.find_spec("tflite_micro") is None:
        raise BackendNotAvailable('tflite-micro is needed for the MCU export: pip install "har-edge[train]"')


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
    _require_tflm()
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
    _require_tflm()
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


def run_tflm(tflite_bytes: bytes, x_int8: NDArray[np.int8], *, arena_bytes: int) -> NDArray[np.int8]:
    """Run every window of ``x_int8`` ``(n, T, C)`` through TFLM (host), resetting state before each.

    One subprocess for all windows. Returns the raw int8 outputs ``(n, n_classes)``.
    """
    _require_tflm()
    with tempfile.TemporaryDirectory(prefix="har_mcu_") as tmp:
        model_path, x_path, y_path = Path(tmp) / "model.tflite", Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        model_path.write_bytes(tflite_bytes)
        np.save(x_path, np.ascontiguousarray(x_int8, dtype=np.int8))
        proc = _run_worker(["run", str(model_path), str(int(arena_bytes)), str(x_path), str(y_path)],
                           _PROBE_TIMEOUT_S + 0.05 * len(x_int8))
        if proc.returncode != 0 or not y_path.exists():
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            raise ExportError(f"TFLite Micro run failed (exit code {proc.returncode}): {' | '.join(tail)}")
        return np.load(y_path).astype(np.int8)

# --------------------------------------------------------------------------- verification


def _verify(tflite_bytes: bytes, x: NDArray[np.int8], y: NDArray[Any] | None, ref: NDArray[Any] | None,
            arena_bytes: int, manifest: dict[str, Any]) -> dict[str, Any]:
    out = run_tflm(tflite_bytes, x, arena_bytes=arena_bytes).astype(np.int32)
    pred = out.argmax(axis=1)
    report: dict[str, Any] = {"n": int(len(x)), "accuracy": None, "max_abs_diff_steps": None,
                              "p99_abs_diff_steps": None, "frac_within_1_step": None, "argmax_agreement": None,
                              "passed": None}
    if y is not None:
        labels = np.asarray(y)
        labels = labels.argmax(axis=1) if labels.ndim == 2 else labels.reshape(-1)
        report["accuracy"] = float(np.mean(pred == labels))
    if ref is not None:
        ref32 = np.asarray(ref).reshape(len(x), -1).astype(np.int32)
        diff = np.abs(out - ref32)
        report["max_abs_diff_steps"] = int(diff.max())
        report["p99_abs_diff_steps"] = float(np.percentile(diff, 99))
        report["frac_within_1_step"] = float(np.mean(diff <= 1))
        report["argmax_agreement"] = float(np.mean(pred == ref32.argmax(axis=1)))
        report["passed"] = report["max_abs_diff_steps"] <= 1
        if not report["passed"]:
            # TFLM's int8 LSTM kernel rounds differently from LiteRT's; larger models drift a few steps
            logger.warning("TFLM vs LiteRT int8 outputs: max %d steps (limit 1), %.2f%% within 1 step, argmax "
                           "agreement %.4f on %d windows", report["max_abs_diff_steps"],
                           100 * report["frac_within_1_step"], report["argmax_agreement"], len(x))
    logger.info("TFLM host verification: %s", json.dumps(report))
    return report
