"""A small read-only parser of the TFLite flatbuffer (``schema.fbs``), numpy only.

The device path must read a model's embedded manifest and the NumPy reference engine a float
model's weights without TensorFlow, ``flatbuffers`` or an interpreter, so this module walks the
binary format directly: tables (a signed offset to a vtable of field offsets), vectors and strings
(a ``uint32`` length, then the elements), unions (a type byte and a table). It reads what har-edge
uses — operator codes, the first subgraph's tensors, operators and their builtin options, buffers
and ``metadata`` entries — and checks every offset against the file's length, so a truncated or
corrupted file raises :class:`~har_edge.errors.ModelError` instead of reading garbage.

>>> m = read_tflite(open("model.tflite", "rb").read())          # doctest: +SKIP
>>> [op.opcode for op in m.operators]                           # doctest: +SKIP
['RESHAPE', 'CONV_2D', ..., 'UNIDIRECTIONAL_SEQUENCE_LSTM', ...]
>>> m.metadata["har_edge_manifest"][:20]                        # doctest: +SKIP
b'{"schema_version":1,'
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import ModelError

__all__ = ["TfliteTensor", "TfliteOperator", "TfliteModel", "read_tflite", "model_ops", "weights_sha256",
           "BUILTIN_OPERATORS", "TENSOR_TYPES"]

FILE_IDENTIFIER = b"TFL3"

# TensorType (schema.fbs) → numpy dtype name
TENSOR_TYPES: dict[int, str] = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource",
    14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}

# BuiltinOperator codes, as in TFLite's schema.fbs (a test checks them against TensorFlow's generated
# schema); a code newer than this table reads as "BUILTIN_<n>".
BUILTIN_OPERATORS: dict[int, str] = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    5: "DEPTH_TO_SPACE", 6: "DEQUANTIZE", 7: "EMBEDDING_LOOKUP", 8: "FLOOR", 9: "FULLY_CONNECTED",
    10: "HASHTABLE_LOOKUP", 11: "L2_NORMALIZATION", 12: "L2_POOL_2D", 13: "LOCAL_RESPONSE_NORMALIZATION",
    14: "LOGISTIC", 15: "LSH_PROJECTION", 16: "LSTM", 17: "MAX_POOL_2D", 18: "MUL", 19: "RELU",
    20: "RELU_N1_TO_1", 21: "RELU6", 22: "RESHAPE", 23: "RESIZE_BILINEAR", 24: "RNN", 25: "SOFTMAX",
    26: "SPACE_TO_DEPTH", 27: "SVDF", 28: "TANH", 29: "CONCAT_EMBEDDINGS", 30: "SKIP_GRAM", 31: "CALL",
    32: "CUSTOM", 33: "EMBEDDING_LOOKUP_SPARSE", 34: "PAD", 35: "UNIDIRECTIONAL_SEQUENCE_RNN", 36: "GATHER",
    37: "BATCH_TO_SPACE_ND", 38: "SPACE_TO_BATCH_ND", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 42: "DIV",
    43: "SQUEEZE", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM", 45: "STRIDED_SLICE", 46: "BIDIRECTIONAL_SEQUENCE_RNN",
    47: "EXP", 48: "TOPK_V2", 49: "SPLIT", 50: "LOG_SOFTMAX", 51: "DELEGATE",
    52: "BIDIRECTIONAL_SEQUENCE_LSTM", 53: "CAST", 54: "PRELU", 55: "MAXIMUM", 56: "ARG_MAX", 57: "MINIMUM",
    58: "LESS", 59: "NEG", 60: "PADV2", 61: "GREATER", 62: "GREATER_EQUAL", 63: "LESS_EQUAL", 64: "SELECT",
    65: "SLICE", 66: "SIN", 67: "TRANSPOSE_CONV", 68: "SPARSE_TO_DENSE", 69: "TILE", 70: "EXPAND_DIMS",
    71: "EQUAL", 72: "NOT_EQUAL", 73: "LOG", 74: "SUM", 75: "SQRT", 76: "RSQRT", 77: "SHAPE", 78: "POW",
    79: "ARG_MIN", 80: "FAKE_QUANT", 81: "REDUCE_PROD", 82: "REDUCE_MAX", 83: "PACK", 84: "LOGICAL_OR",
    85: "ONE_HOT", 86: "LOGICAL_AND", 87: "LOGICAL_NOT", 88: "UNPACK", 89: "REDUCE_MIN", 90: "FLOOR_DIV",
    91: "REDUCE_ANY", 92: "SQUARE", 93: "ZEROS_LIKE", 94: "FILL", 95: "FLOOR_MOD", 96: "RANGE",
    97: "RESIZE_NEAREST_NEIGHBOR", 98: "LEAKY_RELU", 99: "SQUARED_DIFFERENCE", 100: "MIRROR_PAD", 101: "ABS",
    102: "SPLIT_V", 103: "UNIQUE", 104: "CEIL", 105: "REVERSE_V2", 106: "ADD_N", 107: "GATHER_ND", 108: "COS",
    109: "WHERE", 110: "RANK", 111: "ELU", 112: "REVERSE_SEQUENCE", 113: "MATRIX_DIAG", 114: "QUANTIZE",
    115: "MATRIX_SET_DIAG", 116: "ROUND", 117: "HARD_SWISH", 118: "IF", 119: "WHILE",
    120: "NON_MAX_SUPPRESSION_V4", 121: "NON_MAX_SUPPRESSION_V5", 122: "SCATTER_ND", 123: "SELECT_V2",
    124: "DENSIFY", 125: "SEGMENT_SUM", 126: "BATCH_MATMUL", 127: "PLACEHOLDER_FOR_GREATER_OP_CODES",
    128: "CUMSUM", 129: "CALL_ONCE", 130: "BROADCAST_TO", 131: "RFFT2D", 132: "CONV_3D", 133: "IMAG",
    134: "REAL", 135: "COMPLEX_ABS", 136: "HASHTABLE", 137: "HASHTABLE_FIND", 138: "HASHTABLE_IMPORT",
    139: "HASHTABLE_SIZE", 140: "REDUCE_ALL", 141: "CONV_3D_TRANSPOSE", 142: "VAR_HANDLE",
    143: "READ_VARIABLE", 144: "ASSIGN_VARIABLE", 145: "BROADCAST_ARGS", 146: "RANDOM_STANDARD_NORMAL",
    147: "BUCKETIZE", 148: "RANDOM_UNIFORM", 149: "MULTINOMIAL", 150: "GELU", 151: "DYNAMIC_UPDATE_SLICE",
    152: "RELU_0_TO_1", 153: "UNSORTED_SEGMENT_PROD", 154: "UNSORTED_SEGMENT_MAX",
    155: "UNSORTED_SEGMENT_SUM", 156: "ATAN2", 157: "UNSORTED_SEGMENT_MIN", 158: "SIGN", 159: "BITCAST",
    160: "BITWISE_XOR", 161: "RIGHT_SHIFT", 162: "STABLEHLO_LOGISTIC", 163: "STABLEHLO_ADD",
    164: "STABLEHLO_DIVIDE", 165: "STABLEHLO_MULTIPLY", 166: "STABLEHLO_MAXIMUM", 167: "STABLEHLO_RESHAPE",
    168: "STABLEHLO_CLAMP", 169: "STABLEHLO_CONCATENATE", 170: "STABLEHLO_BROADCAST_IN_DIM",
    171: "STABLEHLO_CONVOLUTION", 172: "STABLEHLO_SLICE", 173: "STABLEHLO_CUSTOM_CALL",
    174: "STABLEHLO_REDUCE", 175: "STABLEHLO_ABS", 176: "STABLEHLO_AND", 177: "STABLEHLO_COSINE",
    178: "STABLEHLO_EXPONENTIAL", 179: "STABLEHLO_FLOOR", 180: "STABLEHLO_LOG", 181: "STABLEHLO_MINIMUM",
    182: "STABLEHLO_NEGATE", 183: "STABLEHLO_OR", 184: "STABLEHLO_POWER", 185: "STABLEHLO_REMAINDER",
    186: "STABLEHLO_RSQRT", 187: "STABLEHLO_SELECT", 188: "STABLEHLO_SUBTRACT", 189: "STABLEHLO_TANH",
    190: "STABLEHLO_SCATTER", 191: "STABLEHLO_COMPARE", 192: "STABLEHLO_CONVERT",
    193: "STABLEHLO_DYNAMIC_SLICE", 194: "STABLEHLO_DYNAMIC_UPDATE_SLICE", 195: "STABLEHLO_PAD",
    196: "STABLEHLO_IOTA", 197: "STABLEHLO_DOT_GENERAL", 198: "STABLEHLO_REDUCE_WINDOW",
    199: "STABLEHLO_SORT", 200: "STABLEHLO_WHILE", 201: "STABLEHLO_GATHER", 202: "STABLEHLO_TRANSPOSE",
    203: "DILATE", 204: "STABLEHLO_RNG_BIT_GENERATOR", 205: "REDUCE_WINDOW", 206: "STABLEHLO_COMPOSITE",
    207: "STABLEHLO_SHIFT_LEFT", 208: "STABLEHLO_CBRT", 209: "STABLEHLO_CASE",
}
_CUSTOM = 32
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

_FUSED_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_PADDINGS = {0: "SAME", 1: "VALID"}

# Builtin options by op: (field name, field index, struct format, default). Only what har-edge reads.
_OPTION_FIELDS: dict[str, tuple[tuple[str, int, str, Any], ...]] = {
    "CONV_2D": (("padding", 0, "b", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0),
                ("fused_activation_function", 3, "b", 0), ("dilation_w_factor", 4, "i", 1),
                ("dilation_h_factor", 5, "i", 1)),
    "MAX_POOL_2D": (("padding", 0, "b", 0), ("stride_w", 1, "i", 0), ("stride_h", 2, "i", 0),
                    ("filter_width", 3, "i", 0), ("filter_height", 4, "i", 0), ("fused_activation_function", 5, "b", 0)),
    "FULLY_CONNECTED": (("fused_activation_function", 0, "b", 0), ("weights_format", 1, "b", 0),
                        ("keep_num_dims", 2, "?", False)),
    "SOFTMAX": (("beta", 0, "f", 0.0),),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (("fused_activation_function", 0, "b", 0), ("cell_clip", 1, "f", 0.0),
                                     ("proj_clip", 2, "f", 0.0), ("time_major", 3, "?", False)),
    "UNIDIRECTIONAL_SEQUENCE_RNN": (("time_major", 0, "?", False), ("fused_activation_function", 1, "b", 0)),
    "STRIDED_SLICE": (("begin_mask", 0, "i", 0), ("end_mask", 1, "i", 0), ("ellipsis_mask", 2, "i", 0),
                      ("new_axis_mask", 3, "i", 0), ("shrink_axis_mask", 4, "i", 0)),
}
_AS_NAMES = {"fused_activation_function": _FUSED_ACTIVATIONS, "padding": _PADDINGS}


@dataclass(frozen=True)
class TfliteTensor:
    """One tensor of the main subgraph. ``scale``/``zero_point`` are empty when not quantised."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    scale: tuple[float, ...] = ()
    zero_point: tuple[int, ...] = ()
    is_variable: bool = False
    quantized_dimension: int = 0


@dataclass(frozen=True)
class TfliteOperator:
    """One operator: its op name (``"CONV_2D"``, ``"CUSTOM:FlexXxx"``, ...), tensor indices (-1 = absent) and options."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TfliteModel:
    """What :func:`read_tflite` found: the main subgraph, the buffers' bytes and the metadata entries."""

    version: int
    description: str
    opcodes: tuple[str, ...]
    tensors: tuple[TfliteTensor, ...]
    operators: tuple[TfliteOperator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    buffers: tuple[bytes, ...]
    buffer_offsets: tuple[int | None, ...]
    metadata: dict[str, bytes]
    metadata_buffers: dict[str, int] = field(default_factory=dict)
    n_subgraphs: int = 1

    def tensor_array(self, index: int) -> NDArray[Any] | None:
        """The constant data of tensor ``index`` as a numpy array of its shape, or ``None`` if it has none."""
        t = self.tensors[index]
        data = self.buffers[t.buffer] if 0 <= t.buffer < len(self.buffers) else b""
        if not data:
            return None
        if t.dtype in ("string", "resource", "variant", "int4"):
            raise ModelError(f"tensor {index} ({t.name!r}): dtype {t.dtype} cannot be read as an array")
        dt = np.dtype(t.dtype if t.dtype != "bfloat16" else "uint16").newbyteorder("<")
        count = int(np.prod(t.shape)) if t.shape else 1
        if len(data) != count * dt.itemsize:
            raise ModelError(f"tensor {index} ({t.name!r}): buffer has {len(data)} bytes, shape {t.shape} "
                             f"of {t.dtype} needs {count * dt.itemsize}")
        return np.frombuffer(data, dtype=dt).reshape(t.shape).astype(dt.newbyteorder("="))


class _Reader:
    """Bounds-checked access to flatbuffer tables, vectors and strings in ``buf``."""

    def __init__(self, buf: bytes, where: str) -> None:
        self.buf = buf
        self.where = where

    def _fail(self, what: str) -> ModelError:
        return ModelError(f"{self.where}: malformed TFLite flatbuffer ({what}); file truncated or corrupted?")

    def unpack(self, fmt: str, pos: int) -> Any:
        size = struct.calcsize("<" + fmt)
        if pos < 0 or pos + size > len(self.buf):
            raise self._fail(f"read of {size} bytes at offset {pos} outside {len(self.buf)} bytes")
        return struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def field_pos(self, table: int, index: int) -> int | None:
        """Absolute position of field ``index`` of the table at ``table``, or ``None`` if absent."""
        vtable = table - self.unpack("i", table)
        vt_size = self.unpack("H", vtable)
        slot = 4 + 2 * index
        if slot + 2 > vt_size:
            return None
        off = self.unpack("H", vtable + slot)
        return table + off if off else None

    def scalar(self, table: int, index: int, fmt: str, default: Any) -> Any:
        pos = self.field_pos(table, index)
        return default if pos is None else self.unpack(fmt, pos)

    def ref(self, table: int, index: int) -> int | None:
        """Follow the uoffset stored in a reference field (table, vector or string)."""
        pos = self.field_pos(table, index)
        return None if pos is None else pos + self.unpack("I", pos)

    def vector(self, table: int, index: int, elem_size: int = 1) -> tuple[int, int] | None:
        """``(start of elements, length)`` of a vector field whose ``elem_size``-byte elements lie inside the file."""
        pos = self.ref(table, index)
        if pos is None:
            return None
        n = self.unpack("I", pos)
        if pos + 4 + n * elem_size > len(self.buf):
            raise self._fail(f"vector of {n} x {elem_size} bytes at offset {pos} runs past the end")
        return pos + 4, n

    def scalars(self, table: int, index: int, fmt: str) -> tuple[Any, ...]:
        vec = self.vector(table, index, struct.calcsize("<" + fmt))
        if vec is None:
            return ()
        start, n = vec
        return struct.unpack_from(f"<{n}{fmt}", self.buf, start)

    def tables(self, table: int, index: int) -> list[int]:
        vec = self.vector(table, index, 4)
        if vec is None:
            return []
        start, n = vec
        return [start + 4 * k + self.unpack("I", start + 4 * k) for k in range(n)]

    def string(self, table: int, index: int) -> str:
        vec = self.vector(table, index)
        if vec is None:
            return ""
        start, n = vec
        return self.buf[start:start + n].decode("utf-8", errors="replace")

    def bytes_field(self, table: int, index: int) -> tuple[bytes, int | None]:
        vec = self.vector(table, index)
        if vec is None:
            return b"", None
        start, n = vec
        return bytes(self.buf[start:start + n]), start


def _opcode_name(r: _Reader, code_table: int) -> str:
    deprecated = r.scalar(code_table, 0, "b", 0)
    code = r.scalar(code_table, 3, "i", 0)
    code = max(int(code), int(deprecated))  # old files use the deprecated byte; new ones write both
    if code == _CUSTOM:
        return "CUSTOM:" + r.string(code_table, 1)
    return BUILTIN_OPERATORS.get(code, f"BUILTIN_{code}")


def _options(r: _Reader, op_table: int, opcode: str) -> dict[str, Any]:
    spec = _OPTION_FIELDS.get(opcode)
    table = r.ref(op_table, 4)
    if spec is None:
        return {}
    out: dict[str, Any] = {}
    for name, index, fmt, default in spec:
        value = default if table is None else r.scalar(table, index, fmt, default)
        out[name] = _AS_NAMES[name].get(value, value) if name in _AS_NAMES else value
    return out


def _tensor(r: _Reader, t: int, index: int) -> TfliteTensor:
    scale: tuple[float, ...] = ()
    zero: tuple[int, ...] = ()
    qdim = 0
    q = r.ref(t, 4)
    if q is not None:
        scale = tuple(float(s) for s in r.scalars(q, 2, "f"))
        zero = tuple(int(z) for z in r.scalars(q, 3, "q"))
        qdim = int(r.scalar(q, 6, "i", 0))
    type_code = int(r.scalar(t, 1, "b", 0))
    return TfliteTensor(index=index, name=r.string(t, 3), shape=tuple(int(d) for d in r.scalars(t, 0, "i")),
                        dtype=TENSOR_TYPES.get(type_code, f"type_{type_code}"), buffer=int(r.scalar(t, 2, "I", 0)),
                        scale=scale, zero_point=zero, is_variable=bool(r.scalar(t, 5, "?", False)),
                        quantized_dimension=qdim)


def _check_tensor_indices(operators: list[TfliteOperator], inputs: tuple[int, ...], outputs: tuple[int, ...],
                          n_tensors: int, where: str) -> None:
    """Every tensor index the graph uses names a tensor (-1 marks an absent optional operator input)."""
    for op in operators:
        for kind, indices, lowest in (("input", op.inputs, -1), ("output", op.outputs, 0)):
            bad = [v for v in indices if not lowest <= v < n_tensors]
            if bad:
                raise ModelError(f"{where}: operator {op.index} ({op.opcode}) {kind} tensor index {bad[0]}; "
                                 f"the main subgraph has {n_tensors} tensors")
    for kind, indices in (("input", inputs), ("output", outputs)):
        bad = [v for v in indices if not 0 <= v < n_tensors]
        if bad:
            raise ModelError(f"{where}: subgraph {kind} tensor index {bad[0]}; the main subgraph has {n_tensors} tensors")


def read_tflite(data: bytes, *, where: str = "model") -> TfliteModel:
    """Parse a ``.tflite`` flatbuffer (its first subgraph, buffers and metadata).

    Args:
        data: the whole file.
        where: how to name the model in errors (e.g. its path).

    Raises:
        ModelError: not a TFLite flatbuffer, or an offset points outside the file.
    """
    data = bytes(data)
    if len(data) < 16 or data[4:8] != FILE_IDENTIFIER:
        raise ModelError(f"{where}: not a TFLite model (missing 'TFL3' identifier; file truncated or corrupted?)")
    r = _Reader(data, where)
    root = r.unpack("I", 0)
    opcodes = tuple(_opcode_name(r, c) for c in r.tables(root, 1))
    subgraphs = r.tables(root, 2)
    if not subgraphs:
        raise ModelError(f"{where}: the model has no subgraph")
    sg = subgraphs[0]
    tensors = tuple(_tensor(r, t, i) for i, t in enumerate(r.tables(sg, 0)))
    operators = []
    for i, op in enumerate(r.tables(sg, 3)):
        code_index = int(r.scalar(op, 0, "I", 0))
        if code_index >= len(opcodes):
            raise ModelError(f"{where}: operator {i} uses opcode index {code_index}; the model has {len(opcodes)}")
        name = opcodes[code_index]
        operators.append(TfliteOperator(index=i, opcode=name, inputs=tuple(int(v) for v in r.scalars(op, 1, "i")),
                                        outputs=tuple(int(v) for v in r.scalars(op, 2, "i")),
                                        options=_options(r, op, name)))
    buffers: list[bytes] = []
    offsets: list[int | None] = []
    for b in r.tables(root, 4):
        payload, start = r.bytes_field(b, 0)
        ext_offset, ext_size = int(r.scalar(b, 1, "Q", 0)), int(r.scalar(b, 2, "Q", 0))
        if not payload and ext_offset > 1:  # large models keep buffers after the flatbuffer
            if ext_offset + ext_size > len(data):
                raise ModelError(f"{where}: buffer at offset {ext_offset} (+{ext_size}) runs past the end")
            payload, start = data[ext_offset:ext_offset + ext_size], ext_offset
        buffers.append(payload)
        offsets.append(start)
    metadata: dict[str, bytes] = {}
    metadata_buffers: dict[str, int] = {}
    for m in r.tables(root, 6):
        name, buf_index = r.string(m, 0), int(r.scalar(m, 1, "I", 0))
        if buf_index >= len(buffers):
            raise ModelError(f"{where}: metadata {name!r} points at buffer {buf_index}; the model has {len(buffers)}")
        metadata[name] = buffers[buf_index]
        metadata_buffers[name] = buf_index
    for t in tensors:
        if t.buffer >= len(buffers):
            raise ModelError(f"{where}: tensor {t.index} ({t.name!r}) points at buffer {t.buffer}; "
                             f"the model has {len(buffers)}")
    inputs, outputs = tuple(int(v) for v in r.scalars(sg, 1, "i")), tuple(int(v) for v in r.scalars(sg, 2, "i"))
    _check_tensor_indices(operators, inputs, outputs, len(tensors), where)
    return TfliteModel(version=int(r.scalar(root, 0, "I", 0)), description=r.string(root, 3), opcodes=opcodes,
                       tensors=tensors, operators=tuple(operators), inputs=inputs, outputs=outputs, buffers=tuple(buffers),
                       buffer_offsets=tuple(offsets), metadata=metadata,
                       metadata_buffers=metadata_buffers, n_subgraphs=len(subgraphs))


def model_ops(model: TfliteModel | bytes, *, where: str = "model") -> list[str]:
    """Every op the model uses, each once: the main subgraph's in execution order, then those only other
    subgraphs use (a ``WHILE`` body's). Names as ``"CONV_2D"``, ..., ``"CUSTOM:FlexTensorListReserve"``.

    Read from the flatbuffer itself, so no interpreter (and no private interpreter API) is involved,
    and an op no interpreter here can run is still named.
    """
    m = model if isinstance(model, TfliteModel) else read_tflite(model, where=where)
    return list(dict.fromkeys([op.opcode for op in m.operators] + list(m.opcodes)))


def weights_sha256(model: TfliteModel) -> str:
    """SHA-256 of every buffer that is not a metadata entry (each as uint64 length + bytes, in order).

    It identifies the graph's constants independently of the metadata. Bundles of manifest schema 1 and 2
    name this hash; schema 3 names :func:`har_edge.inference.bundle.content_sha256` (the whole file: operator
    options, shapes, types, quantisation and opcodes too), so this one now only compares two models' constants.
    """
    skip = set(model.metadata_buffers.values())
    h = hashlib.sha256()
    for i, data in enumerate(model.buffers):
        if i not in skip:
            h.update(struct.pack("<Q", len(data)))
            h.update(data)
    return h.hexdigest()
