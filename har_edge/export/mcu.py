"""Microcontroller export: C arrays, settings and op-resolver headers, TFLM arena and parity check.

``write_mcu_export`` turns a full-int8 ``.tflite`` plus its bundle manifest into the files a
TensorFlow Lite Micro build needs (see ``firmware_export/README.md``)::

    har_model_data.h / .cc   alignas(16) g_har_model_data[] + g_har_model_data_len
    har_model_settings.h     labels, window/hop/rate, channels, normalisation, quantisation,
                             tensor arena size, model hash, causal-preprocessing SOS filters
    har_op_resolver.h        HarOpResolver = MicroMutableOpResolver<N> + HarRegisterOps()
    har_preprocess.h         portable causal preprocessing / quantisation helpers (copied)

The tensor arena is measured with the TFLite Micro Python interpreter by bisection, every probe in
its own subprocess (a too-small arena can segfault). The host is 64-bit: a 32-bit MCU build needs
somewhat different sizes, hence the margin. The TFLM host part (arena probing, ``run_tflm`` and the
parity check) lives in ``har_edge.export.tflm_host``; its public names are re-exported here.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BundleError, DataError, ExportError, ModelError
from har_edge.export.tflm_host import _align, _verify, measure_arena, probe_arena, run_tflm
from har_edge.inference.flatbuffer import TfliteModel, model_ops, read_tflite

__all__ = [
    "OP_RESOLVER_METHODS",
    "CUSTOM_OP_RESOLVER_METHODS",
    "write_mcu_export",
    "resolver_methods",
    "measure_arena",
    "probe_arena",
    "run_tflm",
    "format_c_bytes",
    "firmware_export_dir",
]

logger = logging.getLogger(__name__)

# BuiltinOperator name -> tflite::MicroMutableOpResolver method. Names checked against TFLM's
# tensorflow/lite/micro/micro_mutable_op_resolver.h; the last four (BATCH_MATMUL ...) exist in newer
# TFLM releases only.
OP_RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs", "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce", "CAST": "AddCast", "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D", "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "ELU": "AddElu", "EQUAL": "AddEqual",
    "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather", "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot", "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic", "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MIRROR_PAD": "AddMirrorPad",
    "MEAN": "AddMean", "MINIMUM": "AddMinimum", "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_MAX": "AddReduceMax", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "ROUND": "AddRound", "RSQRT": "AddRsqrt",
    "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth", "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SVDF": "AddSvdf", "TANH": "AddTanh",
    "TRANSPOSE_CONV": "AddTransposeConv", "TRANSPOSE": "AddTranspose", "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
    "BATCH_MATMUL": "AddBatchMatMul", "SUM": "AddSum", "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "LOG_SOFTMAX": "AddLogSoftmax",
}
# custom_code -> method, for the custom ops TFLM ships.
CUSTOM_OP_RESOLVER_METHODS: dict[str, str] = {
    "CIRCULAR_BUFFER": "AddCircularBuffer",
    "TFLite_Detection_PostProcess": "AddDetectionPostprocess",
}

# Feature kinds, in the order of har::FeatureKind in har_preprocess.h.
_FEATURE_KINDS = ("body_acc", "body_gyro", "total_acc", "gravity")
_AXES = ("x", "y", "z")
_IMU_NATIVE_UNIT = {"acc": "g", "gyro": "rad/s"}  # what the sketch hands over (after deg/s -> rad/s)
_MANIFEST_KEYS = ("labels", "sample_rate_hz", "window_samples", "hop_samples", "channels",
                  "normalisation", "input", "output")


# --------------------------------------------------------------------------- templates


def firmware_export_dir() -> Path:
    """The ``firmware_export`` folder: source checkout, else the copy force-included in the wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "firmware_export", here.parents[1] / "_firmware_export"):
        if (candidate / "templates").is_dir():
            return candidate
    raise ExportError(
        f"firmware templates not found in {here.parents[2] / 'firmware_export'} or "
        f"{here.parents[1] / '_firmware_export'}; reinstall har-edge"
    )


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def _render(template_name: str, values: dict[str, str]) -> str:
    path = firmware_export_dir() / "templates" / template_name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExportError(f"cannot read firmware template {path}: {exc}") from exc
    wanted = set(_PLACEHOLDER.findall(text))
    missing = sorted(wanted - set(values))
    if missing:
        raise ExportError(f"template {path} needs placeholder(s) {missing} that the exporter does not fill")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


# --------------------------------------------------------------------------- C formatting


def format_c_bytes(data: bytes, *, per_line: int = 12, indent: str = "    ") -> str:
    """``data`` as the body of a C initializer: ``0x1c, 0x00, ...`` lines."""
    hexes = [f"0x{b:02x}" for b in data]
    lines = (", ".join(hexes[i:i + per_line]) for i in range(0, len(hexes), per_line))
    return ",\n".join(indent + line for line in lines)


def _c_string(s: str) -> str:
    """A C string literal for ``s`` (UTF-8; non-ASCII as hex escapes)."""
    out, after_hex = [], False
    for ch in s:
        if ch in '"\\':
            piece = "\\" + ch
        elif 32 <= ord(ch) < 127:
            # a hex escape is greedy: close and reopen the literal before a following hex digit
            piece = ('" "' if after_hex and ch in "0123456789abcdefABCDEF" else "") + ch
        else:
            piece = "".join(f"\\x{b:02x}" for b in ch.encode("utf-8"))
        after_hex = piece.startswith("\\x")
        out.append(piece)
    return '"' + "".join(out) + '"'


def _c_float(v: float, where: str) -> str:
    v = float(v)
    if not math.isfinite(v):
        raise BundleError(f"{where}={v} is not finite; cannot write it into har_model_settings.h")
    text = f"{v:.9g}"
    if not any(c in text for c in ".en"):
        text += ".0"
    return text + "f"


def _c_double(v: float) -> str:
    text = repr(float(v))
    return text if any(c in text for c in ".en") else text + ".0"


def _c_rows(rows: NDArray[np.float64], indent: str = "    ") -> str:
    return ",\n".join(indent + "{" + ", ".join(_c_double(v) for v in row) + "}" for row in rows)


# --------------------------------------------------------------------------- flatbuffer


def _parse_model(tflite_bytes: bytes) -> TfliteModel:
    try:
        return read_tflite(tflite_bytes, where="int8 model")
    except ModelError as exc:
        raise ExportError(str(exc)) from exc


def resolver_methods(ops: list[str]) -> list[str]:
    """``MicroMutableOpResolver`` ``Add*`` method for each op; ``ExportError`` names unmapped ops."""
    methods: list[str] = []
    unknown: list[str] = []
    for op in ops:
        method = (CUSTOM_OP_RESOLVER_METHODS.get(op[7:]) if op.startswith("CUSTOM:") else OP_RESOLVER_METHODS.get(op))
        (methods if method else unknown).append(method or op)
    if unknown:
        raise ExportError(
            f"the model uses op(s) {unknown} with no known TFLite Micro resolver method; "
            f"supported ops are {sorted(OP_RESOLVER_METHODS)}"
        )
    return methods


def _io_tensor(model: TfliteModel, which: str) -> dict[str, Any]:
    indices = model.inputs if which == "input" else model.outputs
    if len(indices) != 1:
        raise ExportError(f"model has {len(indices)} {which} tensors; the MCU export expects exactly 1")
    t = model.tensors[indices[0]]
    return {"shape": list(t.shape), "dtype": t.dtype, "scale": list(t.scale), "zero_point": list(t.zero_point)}


# --------------------------------------------------------------------------- manifest → headers


def _check_manifest(manifest: dict[str, Any], model: TfliteModel, sha256: str) -> None:
    missing = [k for k in _MANIFEST_KEYS if k not in manifest]
    if missing:
        raise BundleError(f"manifest lacks key(s) {missing}; the MCU export needs {list(_MANIFEST_KEYS)}")
    n_ch = len(manifest["channels"])
    norm = manifest["normalisation"]
    for key in ("mean", "std"):
        if len(norm.get(key, [])) != n_ch:
            raise BundleError(f"manifest normalisation.{key} has {len(norm.get(key, []))} values, expected {n_ch} (one per channel)")
    if any(not float(s) > 0 for s in norm["std"]):
        raise BundleError(f"manifest normalisation.std={norm['std']} must be > 0 for every channel")
    if manifest.get("model_sha256") not in (None, sha256):
        raise BundleError(f"manifest model_sha256={manifest['model_sha256']} but the model bytes hash to {sha256}")
    for which in ("input", "output"):
        m, t = manifest[which], _io_tensor(model, which)
        if t["dtype"] != "int8" or m.get("dtype") != "int8":
            raise ExportError(
                f"{which} tensor is {t['dtype']} (manifest says {m.get('dtype')!r}); the MCU export needs a full-int8 "
                "model (--quant int8)"
            )
        if [int(d) for d in m.get("shape", [])] != t["shape"]:
            raise BundleError(f"manifest {which}.shape={m.get('shape')} but the model's {which} tensor is {t['shape']}")
        if len(t["scale"]) != 1 or not math.isclose(float(m["scale"]), t["scale"][0], rel_tol=1e-6) \
                or int(m["zero_point"]) != t["zero_point"][0]:
            raise BundleError(
                f"manifest {which} quantisation (scale={m.get('scale')}, zero_point={m.get('zero_point')}) does not match "
                f"the model (scale={t['scale']}, zero_point={t['zero_point']})"
            )
    shape = [int(d) for d in manifest["input"]["shape"]]
    if shape[1:] != [int(manifest["window_samples"]), n_ch]:
        raise BundleError(f"input shape {shape} does not match window_samples={manifest['window_samples']} × {n_ch} channels")
    if not 1 <= int(manifest["hop_samples"]) <= int(manifest["window_samples"]):
        raise BundleError(f"hop_samples={manifest['hop_samples']}; expected 1..window_samples={manifest['window_samples']}")
    if int(manifest["output"]["shape"][-1]) != len(manifest["labels"]):
        raise BundleError(f"output shape {manifest['output']['shape']} does not match {len(manifest['labels'])} labels")


def _preprocessing_block(manifest: dict[str, Any]) -> str:
    """C++ for the causal preprocessing constants (or for the raw channel map without it)."""
    from har_edge.data.preprocessing import PreprocessingSpec
    from har_edge.data.units import unit_scale
    from scipy import signal as sps  # type: ignore[import-untyped]

    names = [c["name"] for c in manifest["channels"]]
    pre = manifest.get("preprocessing")
    if pre is None:
        index, scale = [], []
        for ch in manifest["channels"]:
            sensor, _, axis = str(ch["name"]).partition("_")
            try:
                factor = unit_scale(_IMU_NATIVE_UNIT[sensor], str(ch.get("unit", "")))
                axis_index = _AXES.index(axis)
            except (KeyError, ValueError, DataError):
                logger.info("channel %r (%s) is not a raw IMU channel: no raw channel map", ch["name"], ch.get("unit"))
                return "#define HAR_HAS_PREPROCESSING 0\n#define HAR_HAS_RAW_CHANNEL_MAP 0\n"
            index.append((0 if sensor == "acc" else 3) + axis_index)
            scale.append(factor)
        return (
            "#define HAR_HAS_PREPROCESSING 0\n#define HAR_HAS_RAW_CHANNEL_MAP 1\n"
            "// Model channel c = raw IMU value kHarChannelRawIndex[c] (0-2 acc g xyz, 3-5 gyro rad/s xyz)\n"
            "// multiplied by kHarChannelRawScale[c] (unit conversion).\n"
            f"constexpr int kHarChannelRawIndex[kHarNumChannels] = {{{', '.join(map(str, index))}}};\n"
            f"constexpr float kHarChannelRawScale[kHarNumChannels] = {{{', '.join(_c_float(s, 'scale') for s in scale)}}};\n"
        )
    try:
        spec = PreprocessingSpec.from_dict(pre)
    except DataError as exc:
        raise BundleError(f"manifest preprocessing is invalid: {exc}") from exc
    if list(spec.output_channels) != names:
        raise BundleError(f"preprocessing output_channels={list(spec.output_channels)} but manifest channels are {names}")
    if not math.isclose(spec.sample_rate_hz, float(manifest["sample_rate_hz"])):
        raise BundleError(f"preprocessing sample_rate_hz={spec.sample_rate_hz} but manifest sample_rate_hz={manifest['sample_rate_hz']}")
    fs = spec.sample_rate_hz

    def sos_arrays(prefix: str, order: int | None, cutoff: float | None) -> str:
        if cutoff is None or order is None:
            return (f"constexpr int kHar{prefix}Sections = 0;  // no filter\n"
                    f"constexpr double kHar{prefix}Sos[1][6] = {{{{0, 0, 0, 1, 0, 0}}}};\n"
                    f"constexpr double kHar{prefix}Zi[1][2] = {{{{0, 0}}}};\n")
        sos = np.asarray(sps.butter(order, cutoff, fs=fs, output="sos"), dtype=np.float64)
        zi = np.asarray(sps.sosfilt_zi(sos), dtype=np.float64)
        sos = sos / sos[:, 3:4]  # a0 = 1, as the C++ cascade assumes
        return (f"// Butterworth low-pass, order {order}, {cutoff} Hz at {fs} Hz: scipy.signal.butter(..., output='sos')\n"
                f"constexpr int kHar{prefix}Sections = {len(sos)};\n"
                f"constexpr double kHar{prefix}Sos[{len(sos)}][6] = {{\n{_c_rows(sos)}}};  // b0 b1 b2 a0 a1 a2\n"
                f"// sosfilt_zi: state per unit input; the cascade starts at zi × first sample (steady state)\n"
                f"constexpr double kHar{prefix}Zi[{len(zi)}][2] = {{\n{_c_rows(zi)}}};\n")

    raw = spec.used_inputs
    raw_scale = [unit_scale(_IMU_NATIVE_UNIT[r.split("_")[0]], spec.input_units[spec.input_channels.index(r)]) for r in raw]
    source = []
    for name in spec.output_channels:
        kind, axis = name.rsplit("_", 1)
        source.append(f"{{{_FEATURE_KINDS.index(kind)}, {_AXES.index(axis)}}}")
    return (
        "#define HAR_HAS_PREPROCESSING 1\n#define HAR_HAS_RAW_CHANNEL_MAP 0\n"
        f"// Raw inputs, in this order: {', '.join(raw)} (IMU g / rad/s × kHarRawInputScale).\n"
        f"constexpr int kHarNumRawInputs = {len(raw)};\n"
        f"constexpr const char* kHarRawInputNames[kHarNumRawInputs] = {{{', '.join(_c_string(r) for r in raw)}}};\n"
        f"constexpr float kHarRawInputScale[kHarNumRawInputs] = {{{', '.join(_c_float(s, 'scale') for s in raw_scale)}}};\n"
        f"{sos_arrays('Noise', spec.noise_order, spec.noise_cutoff_hz)}"
        f"{sos_arrays('Gravity', spec.gravity_order, spec.gravity_cutoff_hz)}"
        "// Per model channel: {har::FeatureKind (0 body_acc, 1 body_gyro, 2 total_acc, 3 gravity), axis 0-2}.\n"
        f"constexpr int kHarChannelSource[kHarNumChannels][2] = {{{', '.join(source)}}};\n"
    )


def _smoothing_values(manifest: dict[str, Any]) -> dict[str, str]:
    """The runtime's smoothing for this bundle (its ``smoothing`` over the defaults) as C constants.

    Uses the runtime's own :class:`~har_edge.runtime.smoothing.SmoothingConfig` and transition matrix
    (numpy-only modules), so the firmware cannot drift from what the Python device does.
    """
    from har_edge.errors import ConfigError
    from har_edge.inference.bundle import output_step
    from har_edge.runtime.decoding import evidence_floor, hmm_model
    from har_edge.runtime.smoothing import SmoothingConfig

    labels = tuple(str(x) for x in manifest["labels"])
    try:
        cfg = SmoothingConfig(**(manifest.get("smoothing") or {}))
        hmm = hmm_model(labels, cfg, tuple(manifest.get("uncertain_labels") or ()))
    except (TypeError, ConfigError) as exc:
        raise BundleError(f"manifest smoothing={manifest.get('smoothing')!r} is invalid: {exc}") from exc
    described = ", ".join(f"{k}={v}" for k, v in vars(cfg).items())
    return {
        "smoothing_comment": described,
        "smoothing_method": str(("none", "mean", "vote", "hmm").index(cfg.method)),
        "smoothing_window": str(cfg.window),
        "smoothing_votes": str(cfg.votes),
        "confidence_floor": _c_float(cfg.confidence_floor, "smoothing.confidence_floor"),
        "evidence_weight": _c_float(cfg.evidence_weight, "smoothing.evidence_weight"),
        "evidence_floor": _c_double(evidence_floor(output_step(manifest))),
        "state_names": ", ".join(hmm.state_names),
        "num_states": str(len(hmm.state_class)),
        "state_class": ", ".join(str(int(c)) for c in hmm.state_class),
        "initial_belief": ", ".join(_c_double(v) for v in hmm.initial),
        "transitions": _c_rows(hmm.transitions),
    }


def _settings_values(manifest: dict[str, Any], *, sha256: str, arena_bytes: int, arena_measured: int,
                     arena_margin: float, model_bytes: int, preprocessing: str) -> dict[str, str]:
    labels = [str(x) for x in manifest["labels"]]
    chans = manifest["channels"]
    inp, out = manifest["input"], manifest["output"]
    norm = manifest["normalisation"]
    comments = "\n".join(f"//   {i}: {c['name']} [{c.get('unit', '?')}]" for i, c in enumerate(chans))
    return {
        "name": _c_string(str(manifest.get("name", "har_model"))),
        "name_comment": str(manifest.get("name", "har_model")).replace("\n", " "),
        "sha256": sha256,
        "model_bytes": str(model_bytes),
        "num_classes": str(len(labels)),
        "labels": ", ".join(_c_string(x) for x in labels),
        "show_as_uncertain": ", ".join("true" if x in (manifest.get("uncertain_labels") or []) else "false" for x in labels),
        "carry_state": "true" if manifest.get("recurrent_state") == "carried" else "false",
        "window_samples": str(int(manifest["window_samples"])),
        "hop_samples": str(int(manifest["hop_samples"])),
        "sample_rate_hz": _c_float(manifest["sample_rate_hz"], "sample_rate_hz"),
        "num_channels": str(len(chans)),
        "channel_comments": comments,
        "channel_names": ", ".join(_c_string(str(c["name"])) for c in chans),
        "channel_units": ", ".join(_c_string(str(c.get("unit", ""))) for c in chans),
        "channel_mean": ", ".join(_c_float(v, "normalisation.mean") for v in norm["mean"]),
        "channel_std": ", ".join(_c_float(v, "normalisation.std") for v in norm["std"]),
        "input_scale": _c_float(inp["scale"], "input.scale"),
        "input_zero_point": str(int(inp["zero_point"])),
        "output_scale": _c_float(out["scale"], "output.scale"),
        "output_zero_point": str(int(out["zero_point"])),
        "arena_bytes": str(arena_bytes),
        "arena_measured": str(arena_measured),
        "arena_margin": f"{arena_margin:g}",
        "preprocessing": preprocessing,
        **_smoothing_values(manifest),
    }


# --------------------------------------------------------------------------- entry point


def _check_arrays(x: NDArray[Any] | None, y: NDArray[Any] | None, ref: NDArray[Any] | None,
                  manifest: dict[str, Any]) -> None:
    if x is None:
        if y is not None or ref is not None:
            raise ExportError("y_test / litert_outputs_int8 given without X_test_int8")
        return
    shape = tuple(manifest["input"]["shape"][1:])
    if x.dtype != np.int8 or x.ndim != 3 or x.shape[1:] != shape or len(x) == 0:
        raise ExportError(f"X_test_int8 must be int8 (n, {shape[0]}, {shape[1]}) with n > 0; got {x.dtype} {x.shape}")
    if y is not None and len(y) != len(x):
        raise ExportError(f"y_test has {len(y)} labels for {len(x)} windows")
    n_classes = len(manifest["labels"])
    if ref is not None and (np.asarray(ref).reshape(len(ref), -1).shape != (len(x), n_classes)):
        raise ExportError(f"litert_outputs_int8 must be ({len(x)}, {n_classes}); got {np.asarray(ref).shape}")


def write_mcu_export(tflite_bytes: bytes, manifest: dict[str, Any], out_dir: Path, *,
                     X_test_int8: NDArray[np.int8] | None = None, y_test: NDArray[np.integer] | None = None,
                     litert_outputs_int8: NDArray[np.int8] | None = None, arena_margin: float = 0.25,
                     reset: NDArray[np.bool_] | None = None) -> dict[str, Any]:
    """Write the TFLM sources for a full-int8 model into ``out_dir`` and verify them on the host.

    Args:
        tflite_bytes: the full-int8 ``.tflite`` (int8 input ``(1, T, C)`` and output ``(1, K)``).
        manifest: the bundle manifest (labels, channels, normalisation, input/output quantisation, ...).
        out_dir: created if missing; receives the headers listed in the module docstring.
        X_test_int8: optional quantised test windows ``(n, T, C)`` int8 to run under TFLM.
        y_test: optional labels ``(n,)`` (class indices; one-hot ``(n, K)`` is accepted) for accuracy.
        litert_outputs_int8: optional LiteRT int8 outputs ``(n, K)`` for the parity check.
        arena_margin: fraction added to the measured arena (host is 64-bit; MCUs are 32-bit).
        reset: ``(n,)`` for a streaming model (``recurrent_state = "carried"``): its test windows in stream
            order, ``True`` where a recording starts (labels ``< 0``: unlabelled, not scored).

    Returns:
        Report dict: ``arena_bytes``, ``arena_bytes_measured``, ``arena_margin``, ``ops``, ``files``,
        ``model_bytes``, ``tflm`` and ``note``. ``tflm`` (``tflm_host.verify_tflm``): ``n``, ``accuracy``,
        ``max_abs_diff_steps``, ``p99_abs_diff_steps``, ``frac_within_1_step``, ``argmax_agreement`` (TFLM
        vs ``litert_outputs_int8``, also as ``vs_litert_default``), ``passed`` = that max diff <= 1 step;
        ``vs_litert_reference`` (vs LiteRT's reference kernels), ``litert_reference_vs_default``,
        ``kernel_diagnosis`` (per-op max diff vs the reference kernels on the first 200 windows and the
        fused LSTM's per-time-step profile), ``reference_unavailable`` / ``diagnosis_unavailable``
        (reasons when ``None``); ``n`` = 0 and ``None`` values without ``X_test_int8``.

    Raises:
        BundleError: manifest missing keys or inconsistent with the model.
        ExportError: not full int8, unsupported op, TFLM cannot run the model, bad test arrays.
    """
    if not 0 <= arena_margin <= 10:
        raise ExportError(f"arena_margin={arena_margin}; expected a fraction between 0 and 10")
    sha256 = hashlib.sha256(tflite_bytes).hexdigest()
    model = _parse_model(tflite_bytes)
    _check_manifest(manifest, model, sha256)
    _check_arrays(X_test_int8, y_test, litert_outputs_int8, manifest)
    ops = sorted(model_ops(model))
    methods = resolver_methods(ops)
    preprocessing = _preprocessing_block(manifest)  # validates the spec before the slow arena search

    measured = measure_arena(tflite_bytes)
    arena_bytes = _align(measured * (1.0 + arena_margin))
    values = _settings_values(manifest, sha256=sha256, arena_bytes=arena_bytes, arena_measured=measured,
                              arena_margin=arena_margin, model_bytes=len(tflite_bytes), preprocessing=preprocessing)
    common = {"name_comment": values["name_comment"], "sha256": sha256}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "har_model_data.h": _render("har_model_data.h.tmpl", common),
        "har_model_data.cc": _render("har_model_data.cc.tmpl", {
            **common, "model_bytes": str(len(tflite_bytes)), "bytes": format_c_bytes(tflite_bytes)}),
        "har_model_settings.h": _render("har_model_settings.h.tmpl", values),
        "har_op_resolver.h": _render("har_op_resolver.h.tmpl", {
            **common, "num_ops": str(len(methods)), "ops_comment": ", ".join(ops),
            "register_calls": "\n".join(f"  if (r.{m}() != kTfLiteOk) return kTfLiteError;" for m in methods)}),
    }
    for fname, text in files.items():
        (out_dir / fname).write_text(text, encoding="utf-8")
    shutil.copyfile(firmware_export_dir() / "src" / "har_preprocess.h", out_dir / "har_preprocess.h")
    written = [*files, "har_preprocess.h"]
    logger.info("wrote MCU sources %s to %s (arena %d bytes)", written, out_dir, arena_bytes)

    tflm = _verify(tflite_bytes, X_test_int8, y_test, litert_outputs_int8, arena_bytes, manifest, reset=reset)
    return {
        "arena_bytes": arena_bytes,
        "arena_bytes_measured": measured,
        "arena_margin": arena_margin,
        "ops": ops,
        "resolver_methods": methods,
        "files": written,
        "model_bytes": len(tflite_bytes),
        "model_sha256": sha256,
        "tflm": tflm,
        "note": ("arena measured with the TFLite Micro Python interpreter on a 64-bit host (pointers and "
                 "struct sizes differ on a 32-bit MCU build, and the board's TFLM version may differ); to trim "
                 "the margin, find the smallest arena with which AllocateTensors() and Invoke() succeed on the "
                 "board: arena_used_bytes() can be below what works"),
    }
