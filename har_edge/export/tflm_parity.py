"""TFLM vs LiteRT int8 parity: output comparisons and a per-op / per-time-step kernel diagnosis.

The LiteRT side lives here (in process); the TFLM side runs in subprocesses in
``har_edge.export.tflm_host``, which puts both together in ``verify_tflm``. LiteRT is run with its
default kernels (``OpResolverType.AUTO``: optimised kernels and the XNNPACK delegate) and with its
reference kernels (``BUILTIN_REF``, no delegate); TFLM's kernels are ports of the reference kernels.
The diagnosis compares every operator output of TFLM with LiteRT's reference kernels, both with all
intermediate tensors preserved. Tensor indices are the model's (flatbuffer) indices, which LiteRT
(without delegate) and TFLM share. All differences are in quantisation steps of the tensor.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BundleError, ExportError
from har_edge.inference.flatbuffer import read_tflite
from har_edge.inference.interpreter import TfliteRunner, load_backend

__all__ = [
    "DIAGNOSE_WINDOWS",
    "compare_outputs",
    "diagnose",
    "explain_difference",
    "litert_int8_outputs",
    "litert_op_tensors",
]

logger = logging.getLogger("har_edge.export.mcu")

DIAGNOSE_WINDOWS = 200
LSTM_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM",)


def compare_outputs(a: NDArray[Any], b: NDArray[Any]) -> dict[str, Any]:
    """Compare two int8 output arrays ``(n, K)`` (same quantisation): differences in steps, argmax agreement."""
    a32 = np.asarray(a).reshape(len(a), -1).astype(np.int32)
    b32 = np.asarray(b).reshape(len(b), -1).astype(np.int32)
    if a32.shape != b32.shape or a32.size == 0:
        raise ExportError(f"cannot compare outputs of shapes {a32.shape} and {b32.shape}")
    diff = np.abs(a32 - b32)
    return {"max_abs_diff_steps": int(diff.max()), "p99_abs_diff_steps": float(np.percentile(diff, 99)),
            "frac_within_1_step": float(np.mean(diff <= 1)),
            "argmax_agreement": float(np.mean(a32.argmax(axis=1) == b32.argmax(axis=1)))}


def _litert(tflite_bytes: bytes, *, reference: bool, preserve: bool = False) -> TfliteRunner:
    """LiteRT (else tf.lite) with its default or reference kernels; TFLite Micro's kernels port the reference ones."""
    try:
        backend = load_backend(order=("litert", "tensorflow")).name
        return TfliteRunner(tflite_bytes, backend=backend, reference_kernels=reference, preserve_all_tensors=preserve,
                            where="int8 model")
    except BundleError as exc:
        kind = "reference" if reference else "default"
        raise ExportError(f"LiteRT cannot load the model with its {kind} kernels: {exc}") from exc


def litert_int8_outputs(tflite_bytes: bytes, x_int8: NDArray[np.int8], *, reference: bool,
                        reset: NDArray[np.bool_] | None = None) -> NDArray[np.int8]:
    """Run windows ``(n, T, C)`` int8 through LiteRT, resetting state before each (``reset``: only where
    ``True``, a streaming model's windows in order); outputs ``(n, K)``.

    ``reference=True``: reference kernels (``BUILTIN_REF``, no delegate); else LiteRT's default (``AUTO``).
    """
    with _litert(tflite_bytes, reference=reference) as runner:
        return runner.run_batch(np.asarray(x_int8), reset=reset).reshape(len(x_int8), -1)


def litert_op_tensors(tflite_bytes: bytes, x_int8: NDArray[np.int8]) -> tuple[list[dict[str, Any]], dict[int, NDArray[Any]]]:
    """Every operator output under LiteRT's reference kernels, all tensors preserved.

    Returns ``(ops, tensors)``: ``ops`` one dict per operator of the main subgraph (``index``, ``op``,
    ``outputs``, and per output ``name``, ``shape``, ``dtype``, ``scale``), ``tensors[idx]`` shaped
    ``(n, *tensor_shape)``. Operators and tensor indices come from the flatbuffer (which LiteRT without a
    delegate and TFLM number alike).
    """
    model = read_tflite(tflite_bytes, where="int8 model")
    with _litert(tflite_bytes, reference=True, preserve=True) as runner:
        details = runner.tensor_details()
        ops: list[dict[str, Any]] = []
        for op in model.operators:
            outs = [int(t) for t in op.outputs if int(t) >= 0]
            ops.append({"index": op.index, "op": op.opcode, "outputs": outs, "tensors": {t: details[t] for t in outs}})
        wanted = sorted({t for op in ops for t in op["outputs"]})
        collected: dict[int, list[NDArray[Any]]] = {t: [] for t in wanted}
        try:
            for window in x_int8:
                runner.run(window[None])
                for t in wanted:
                    collected[t].append(runner.tensor(t))
        except (RuntimeError, ValueError) as exc:
            raise ExportError(f"LiteRT reference kernels: cannot read the operator outputs: {exc}") from exc
    return ops, {t: np.stack(v) for t, v in collected.items()}


def _steps(a: NDArray[Any], b: NDArray[Any], dtype: str, scale: float) -> tuple[NDArray[np.float64], str]:
    diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
    if np.issubdtype(np.dtype(dtype), np.integer):
        return diff, "steps"
    return (diff / scale, "steps") if scale > 0 else (diff, "value")


def _lstm_profile(op: dict[str, Any], t: int, diff: NDArray[np.float64]) -> dict[str, Any]:
    shape = op["tensors"][t]["shape"]  # (1, T, U) batch-major, (T, 1, U) time-major; batch is 1
    time_axis = 2 if shape[0] == 1 else 1  # axes of ``diff``: (window, *shape)
    per_step = diff.max(axis=tuple(a for a in range(diff.ndim) if a != time_axis))
    return {"op_index": op["index"], "op": op["op"], "tensor": t, "steps": int(len(per_step)),
            "max_diff_per_step": [int(round(v)) for v in per_step],
            "step0_max_diff_steps": int(round(per_step[0])), "max_diff_steps": int(round(per_step.max())),
            "first_step_of_max": int(np.argmax(per_step))}


def diagnose(ops: list[dict[str, Any]], litert: dict[int, NDArray[Any]], tflm: dict[int, NDArray[Any]]) -> dict[str, Any]:
    """Per-op max diff TFLM vs LiteRT reference kernels, and the fused LSTM's per-time-step profile.

    ``litert`` / ``tflm``: op output tensors by index, each ``(n, *tensor_shape)``.
    Returns ``n``, ``ops`` (per output: ``max_abs_diff_steps``, ``frac_exact``), ``first_divergent_op`` and
    ``lstm`` (one entry per fused LSTM: ``max_diff_per_step`` list, ``step0_max_diff_steps``, ``max_diff_steps``).
    """
    rows, lstm = [], []
    first: dict[str, Any] | None = None
    n = 0
    for op in ops:
        for t in op["outputs"]:
            info = op["tensors"][t]
            row: dict[str, Any] = {"op_index": op["index"], "op": op["op"], "tensor": t, "name": info["name"],
                                   "shape": info["shape"], "dtype": info["dtype"], "max_abs_diff_steps": None,
                                   "frac_exact": None, "unit": "steps"}
            a, b = litert.get(t), tflm.get(t)
            if a is None or b is None or a.size != b.size:
                row["note"] = "tensor missing or of different size under TFLM"
                rows.append(row)
                continue
            n = len(a)
            diff, row["unit"] = _steps(a, b.reshape(a.shape), info["dtype"], info["scale"])
            row["max_abs_diff_steps"] = float(diff.max()) if row["unit"] == "value" else int(round(diff.max()))
            row["frac_exact"] = float(np.mean(diff == 0))
            rows.append(row)
            if first is None and diff.max() > 0:
                first = row
            if op["op"] in LSTM_OPS:
                lstm.append(_lstm_profile(op, t, diff))
    return {"n": n, "against": "litert_reference", "ops": rows,
            "first_divergent_op": None if first is None else {k: first[k] for k in ("op_index", "op", "tensor")},
            "lstm": lstm}


def explain_difference(report: dict[str, Any]) -> str:
    """One sentence on where the TFLM vs LiteRT difference comes from, from a ``tflm`` report dict."""
    parts = []
    ref, rvd = report.get("vs_litert_reference"), report.get("litert_reference_vs_default")
    if ref is not None:
        parts.append(f"vs LiteRT reference kernels max {ref['max_abs_diff_steps']} steps "
                     f"({100 * ref['frac_within_1_step']:.2f}% within 1)")
    if rvd is not None:
        parts.append(f"LiteRT reference vs default kernels differ by up to {rvd['max_abs_diff_steps']} steps themselves")
    diag = report.get("kernel_diagnosis")
    if diag is None:
        reason = report.get("diagnosis_unavailable") or report.get("reference_unavailable")
        parts.append(f"no per-op diagnosis ({reason})")
        return "; ".join(parts)
    first = diag["first_divergent_op"]
    where = f"per-op diagnosis on {diag['n']} windows vs reference kernels: "
    if first is None:
        parts.append(where + "TFLM is bit-identical to LiteRT's reference kernels, so the difference is "
                     "between LiteRT's default (optimised) and reference kernels")
        return "; ".join(parts)
    exact = [r["op"] for r in diag["ops"] if r["op_index"] < first["op_index"] and r["max_abs_diff_steps"] == 0]
    before = f"{', '.join(dict.fromkeys(exact))} outputs identical, " if exact else ""
    prof = next((p for p in diag["lstm"] if p["tensor"] == first["tensor"]), None)
    if prof is not None and prof["max_diff_steps"] > prof["step0_max_diff_steps"]:
        parts.append(where + before + f"first difference in {first['op']}: {prof['step0_max_diff_steps']} step(s) at "
                     f"time step 0, growing to {prof['max_diff_steps']} by time step {prof['first_step_of_max']} of "
                     f"{prof['steps']} (the integer LSTM kernels round differently and the recurrence accumulates it)")
    else:
        row = next(r for r in diag["ops"] if r["tensor"] == first["tensor"])
        parts.append(where + before + f"first difference in {first['op']} (op {first['op_index']}), "
                     f"max {row['max_abs_diff_steps']} steps")
    return "; ".join(parts)
