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

__all__ = ["TfliteTensor", "TfliteOperator", "TfliteModel", "read_tflite", "weights_sha256", "BUILTIN_OPERATORS", "TENSOR_TYPES"]

FILE_IDENTIFIER = b"TFL3"

# TensorType (schema.fbs) → numpy dtype name
TENSOR_TYPES: dict[int, str] = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool", 7: "int16",
    8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64", 13: "resource",
    14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}

# BuiltinOperator codes (schema.fbs) for the ops a converted Keras model commonly holds; any other
# code reads as "BUILTIN_<n>". A test checks these names against TensorFlow's generated schema.
BUILTIN_OPERATORS: dict[int, str] = {
    0: "ADD", 1: "AVERAGE_POOL_2D", 2: "CONCATENATION", 3: "CONV_2D", 4: "DEPTHWISE_CONV_2D",
    6: "DEQUANTIZE", 9: "FULLY_CONNECTED", 14: "LOGISTIC", 16: "LSTM", 17: "MAX_POOL_2D", 18: "MUL",
    19: "RELU", 22: "RESHAPE", 25: "SOFTMAX", 28: "TANH", 32: "CUSTOM", 34: "PAD", 35: "UNIDIRECTIONAL_SEQUENCE_RNN",
    36: "GATHER", 39: "TRANSPOSE", 40: "MEAN", 41: "SUB", 43: "SQUEEZE", 44: "UNIDIRECTIONAL_SEQUENCE_LSTM",
    45: "STRIDED_SLICE", 49: "SPLIT", 53: "CAST", 70: "EXPAND_DIMS", 77: "SHAPE", 83: "PACK", 88: "UNPACK",
    102: "SPLIT_V", 114: "QUANTIZE", 119: "WHILE", 126: "BATCH_MATMUL",
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

    def vector(self, table: int, index: int) -> tuple[int, int] | None:
        """``(start of elements, length)`` of a vector field."""
        pos = self.ref(table, index)
        if pos is None:
            return None
        n = self.unpack("I", pos)
        if pos + 4 + n > len(self.buf):
            raise self._fail(f"vector of {n} elements at offset {pos} runs past the end")
        return pos + 4, n

    def scalars(self, table: int, index: int, fmt: str) -> tuple[Any, ...]:
        vec = self.vector(table, index)
        if vec is None:
            return ()
        start, n = vec
        size = struct.calcsize("<" + fmt)
        if start + n * size > len(self.buf):
            raise self._fail(f"vector of {n} x {size} bytes at offset {start} runs past the end")
        return struct.unpack_from(f"<{n}{fmt}", self.buf, start)

    def tables(self, table: int, index: int) -> list[int]:
        vec = self.vector(table, index)
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
    q = r.ref(t, 4)
    if q is not None:
        scale = tuple(float(s) for s in r.scalars(q, 2, "f"))
        zero = tuple(int(z) for z in r.scalars(q, 3, "q"))
    type_code = int(r.scalar(t, 1, "b", 0))
    return TfliteTensor(index=index, name=r.string(t, 3), shape=tuple(int(d) for d in r.scalars(t, 0, "i")),
                        dtype=TENSOR_TYPES.get(type_code, f"type_{type_code}"), buffer=int(r.scalar(t, 2, "I", 0)),
                        scale=scale, zero_point=zero, is_variable=bool(r.scalar(t, 5, "?", False)))


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
    return TfliteModel(version=int(r.scalar(root, 0, "I", 0)), description=r.string(root, 3), opcodes=opcodes,
                       tensors=tensors, operators=tuple(operators), inputs=tuple(int(v) for v in r.scalars(sg, 1, "i")),
                       outputs=tuple(int(v) for v in r.scalars(sg, 2, "i")), buffers=tuple(buffers),
                       buffer_offsets=tuple(offsets), metadata=metadata,
                       metadata_buffers=metadata_buffers, n_subgraphs=len(subgraphs))


def weights_sha256(model: TfliteModel) -> str:
    """SHA-256 of every buffer that is not a metadata entry (each as uint64 length + bytes, in order).

    It identifies the graph's constants independently of the metadata, so a manifest embedded in
    the model can name the weights it belongs to (a file cannot contain its own hash).
    """
    skip = set(model.metadata_buffers.values())
    h = hashlib.sha256()
    for i, data in enumerate(model.buffers):
        if i not in skip:
            h.update(struct.pack("<Q", len(data)))
            h.update(data)
    return h.hexdigest()
