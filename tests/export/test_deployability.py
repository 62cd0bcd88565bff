"""What export refuses to write: Flex / custom ops, WHILE loops, unfused LSTMs, and a repack that changed the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from har_edge.errors import ExportError
from har_edge.export.converter import check_deployable_ops

pytestmark = pytest.mark.tf


@pytest.mark.parametrize(
    "ops,match",
    [
        (["RESHAPE", "CUSTOM:FlexTensorListReserve", "UNIDIRECTIONAL_SEQUENCE_LSTM"], r"Flex/custom op\(s\) \['CUSTOM:FlexTensorListReserve'\]"),
        (["DELEGATE", "UNIDIRECTIONAL_SEQUENCE_LSTM"], r"Flex/custom op\(s\) \['DELEGATE'\]"),
        (["FULLY_CONNECTED", "WHILE", "UNIDIRECTIONAL_SEQUENCE_LSTM"], "WHILE loop"),
        (["FULLY_CONNECTED", "SOFTMAX"], "lacks the fused UNIDIRECTIONAL_SEQUENCE_LSTM"),
    ],
)
def test_undeployable_op_lists_are_refused(ops: list[str], match: str) -> None:
    with pytest.raises(ExportError, match=match):
        check_deployable_ops(ops, cell="lstm")


def test_deployable_ops_pass() -> None:
    check_deployable_ops(["RESHAPE", "CONV_2D", "UNIDIRECTIONAL_SEQUENCE_LSTM", "STRIDED_SLICE", "FULLY_CONNECTED", "SOFTMAX"],
                         cell="lstm")


def test_a_real_simple_rnn_conversion_is_refused_for_its_while_loop() -> None:
    """SimpleRNN converts to a WHILE loop over a second subgraph: the op list read from the file names it."""
    from har_edge.config import ModelConfig
    from har_edge.export.converter import convert_to_tflite
    from har_edge.inference.flatbuffer import model_ops
    from har_edge.models.builders import build_classifier

    twin = build_classifier(ModelConfig(cell="simple_rnn", units=(4,), dropout=0.0), window_samples=16, n_channels=3,
                            n_classes=3, batch_size=1)
    ops = model_ops(convert_to_tflite(twin, "float32"))
    assert "WHILE" in ops
    with pytest.raises(ExportError, match="WHILE loop"):
        check_deployable_ops(ops, cell="simple_rnn")


def test_the_repack_check_fires_when_the_rewrite_changed_the_model(tiny_exports: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from har_edge.export import tflite_rewrite
    from har_edge.inference.flatbuffer import read_tflite

    data = (tiny_exports / "float32" / "model.tflite").read_bytes()
    # another cell clip than the one asked for: the operators differ from what was intended
    before = read_tflite(data)
    other, changed = tflite_rewrite.set_lstm_cell_clip(data, 5.0)
    assert changed == 1
    with pytest.raises(ExportError, match=r"changed the model \(operators\)"):
        tflite_rewrite._check_same_graph(before, other, {}, "model", lstm_cell_clip=0.0)
    # a packer that flips a byte of every large buffer: weights (and the embedded manifest) differ
    original_init = tflite_rewrite._AlignedBuffer.__init__

    def corrupting(self: object, buffer: object, schema: object) -> None:
        original_init(self, buffer, schema)  # type: ignore[arg-type]
        data_ = getattr(self, "data")
        if data_ is not None and len(data_) > 64:
            setattr(self, "data", bytes([data_[0] ^ 0xFF]) + data_[1:])

    monkeypatch.setattr(tflite_rewrite._AlignedBuffer, "__init__", corrupting)
    with pytest.raises(ExportError, match=r"changed the model \(buffers"):
        tflite_rewrite.set_lstm_cell_clip(data, 0.0)
    with pytest.raises(ExportError, match=r"changed the model \(buffers"):
        tflite_rewrite.embed_metadata(data, {"note": b"x" * 100})
