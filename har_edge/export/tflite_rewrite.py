"""Rewrite a converted ``.tflite``: embed named metadata (the bundle manifest), set the LSTM cell clip.

* :func:`embed_metadata` stores the manifest in the model, so one file travels.
* :func:`set_lstm_cell_clip` changes the fused LSTM's ``cell_clip`` option. The converter writes
  ``cell_clip = 10`` into every ``UNIDIRECTIONAL_SEQUENCE_LSTM``; Keras never clips, so float exports
  clear it (``0`` = no clip) to compute what the trained model computes.

Export-time only: it repacks the flatbuffer with TensorFlow's generated schema and the ``flatbuffers``
package (both come with the ``train`` extra). Reading the entries back needs neither:
:func:`har_edge.inference.flatbuffer.read_tflite` does it with numpy only, on the device.

The repack keeps every tensor, operator and buffer; it places each buffer's data on a 16-byte
boundary (the schema's ``force_align: 16``; the converter itself only guarantees 4), and it is
checked by re-reading the result and comparing it with the input, entry by entry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Callable

from har_edge.errors import BackendNotAvailable, ExportError, ModelError
from har_edge.inference.flatbuffer import TfliteModel, read_tflite, weights_sha256

__all__ = ["embed_metadata", "set_lstm_cell_clip"]

_FILE_IDENTIFIER = b"TFL3"
_DATA_ALIGN = 16


class _AlignedBuffer:
    """Packs like the schema's ``BufferT`` but puts the data on a 16-byte boundary."""

    def __init__(self, buffer: Any, schema: Any) -> None:
        self.data = None if buffer.data is None else bytes(bytearray(buffer.data))
        self.offset = int(buffer.offset or 0)
        self.size = int(buffer.size or 0)
        self._schema = schema

    def Pack(self, builder: Any) -> int:  # noqa: N802 - the generated code's protocol
        data_offset = None
        if self.data is not None:
            n = len(self.data)
            builder.StartVector(1, n, _DATA_ALIGN)
            builder.head = builder.Head() - n
            builder.Bytes[builder.Head():builder.Head() + n] = self.data
            data_offset = builder.EndVector()
        s = self._schema
        s.BufferStart(builder)
        if data_offset is not None:
            s.BufferAddData(builder, data_offset)
        s.BufferAddOffset(builder, self.offset)
        s.BufferAddSize(builder, self.size)
        return int(s.BufferEnd(builder))


def _modules() -> tuple[Any, Any]:
    try:
        import flatbuffers  # type: ignore[import-untyped]
        from tensorflow.lite.python import schema_py_generated as schema  # type: ignore[import-untyped]
    except ImportError as exc:
        raise BackendNotAvailable(
            f"embedding metadata needs TensorFlow's TFLite schema and flatbuffers ({exc}); "
            "install the training extra: pip install 'har-edge[train]'"
        ) from exc
    return flatbuffers, schema


def _repack(tflite_bytes: bytes, edit: Callable[[Any, Any], None], *, extra_bytes: int, where: str) -> tuple[TfliteModel, bytes]:
    """Unpack with TF's schema, apply ``edit(model_t, schema)``, pack with 16-byte aligned buffers."""
    try:
        before = read_tflite(tflite_bytes, where=where)
    except ModelError as exc:
        raise ExportError(str(exc)) from exc
    flatbuffers, schema = _modules()
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)
    if any(int(b.offset or 0) > 1 for b in model.buffers or []):
        raise ExportError(f"{where}: models with external buffers (buffer offsets) cannot be repacked here")
    model.metadata = list(model.metadata or [])
    model.buffers = list(model.buffers or [])
    edit(model, schema)
    model.buffers = [b if isinstance(b, _AlignedBuffer) else _AlignedBuffer(b, schema) for b in model.buffers]
    builder = flatbuffers.Builder(len(tflite_bytes) + extra_bytes + 1024)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return before, bytes(builder.Output())


def embed_metadata(tflite_bytes: bytes, entries: dict[str, bytes], *, where: str = "model") -> bytes:
    """Return ``tflite_bytes`` with ``entries`` stored as named metadata buffers (replacing same-named ones).

    Raises:
        ExportError: the input is not a readable model, or the repacked model differs from it.
        BackendNotAvailable: TensorFlow (its TFLite schema) or flatbuffers is not installed.
    """

    def edit(model: Any, schema: Any) -> None:
        for name, payload in entries.items():
            existing = [m for m in model.metadata if (m.name.decode() if isinstance(m.name, bytes) else m.name) == name]
            if existing:
                model.buffers[existing[0].buffer].data = bytearray(payload)
                continue
            buf = schema.BufferT()
            buf.data = bytearray(payload)
            model.buffers.append(buf)
            meta = schema.MetadataT()
            meta.name = name
            meta.buffer = len(model.buffers) - 1
            model.metadata.append(meta)

    before, out = _repack(tflite_bytes, edit, extra_bytes=sum(len(p) for p in entries.values()), where=where)
    _check_same_graph(before, out, entries, where)
    return out


def set_lstm_cell_clip(tflite_bytes: bytes, cell_clip: float, *, where: str = "model") -> tuple[bytes, int]:
    """Set ``cell_clip`` (``0`` = none) on every fused ``UNIDIRECTIONAL_SEQUENCE_LSTM``; returns ``(bytes, ops changed)``.

    Raises:
        ExportError: unreadable model, ``cell_clip < 0``, or a repack that changed anything else.
    """
    if not cell_clip >= 0:
        raise ExportError(f"cell_clip={cell_clip}; expected >= 0 (0 = no clip)")
    changed = [0]

    def edit(model: Any, schema: Any) -> None:
        codes = [max(int(c.builtinCode), int(c.deprecatedBuiltinCode)) for c in model.operatorCodes]
        lstm = schema.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
        for graph in model.subgraphs:
            for op in graph.operators or []:
                if codes[op.opcodeIndex] == lstm and op.builtinOptions is not None:
                    op.builtinOptions.cellClip = float(cell_clip)
                    changed[0] += 1

    before, out = _repack(tflite_bytes, edit, extra_bytes=0, where=where)
    _check_same_graph(before, out, {}, where, lstm_cell_clip=float(cell_clip))
    return out, changed[0]


def _check_same_graph(before: TfliteModel, out: bytes, entries: dict[str, bytes], where: str, *,
                      lstm_cell_clip: float | None = None) -> None:
    after = read_tflite(out, where=f"{where} (rewritten)")
    problems = []
    if after.tensors != before.tensors:
        problems.append("tensors")
    expected = before.operators
    if lstm_cell_clip is not None:
        expected = tuple(replace(op, options=dict(op.options, cell_clip=lstm_cell_clip))
                         if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM" else op for op in expected)
    if after.operators != expected or after.opcodes != before.opcodes:
        problems.append("operators")
    if (after.inputs, after.outputs) != (before.inputs, before.outputs):
        problems.append("inputs/outputs")
    if weights_sha256(after) != weights_sha256(before):
        problems.append("buffers")
    for name, payload in entries.items():
        if after.metadata.get(name) != payload:
            problems.append(f"metadata {name!r}")
    for name, payload in before.metadata.items():
        if name not in entries and after.metadata.get(name) != payload:
            problems.append(f"metadata {name!r}")
    misaligned = [i for i, (o, b) in enumerate(zip(after.buffer_offsets, after.buffers)) if b and o is not None and o % _DATA_ALIGN]
    if misaligned:
        problems.append(f"alignment of buffers {misaligned[:5]}")
    if problems:
        raise ExportError(f"{where}: rewriting the flatbuffer changed the model ({', '.join(problems)}); not written")
