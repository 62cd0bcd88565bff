"""The numpy-only TFLite flatbuffer reader against TensorFlow's schema and LiteRT, and on corrupted files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from har_edge.errors import ModelError
from har_edge.inference.bundle import content_sha256
from har_edge.inference.flatbuffer import BUILTIN_OPERATORS, TENSOR_TYPES, model_ops, read_tflite, weights_sha256

pytestmark = pytest.mark.tf


def test_operator_and_type_names_match_tensorflows_schema() -> None:
    from tensorflow.lite.python import schema_py_generated as schema

    ops = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    assert ops == BUILTIN_OPERATORS  # all of them (regenerate the table when TensorFlow adds ops)
    types = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    assert {code: types.get(code) for code in TENSOR_TYPES} == TENSOR_TYPES


@pytest.mark.parametrize("mode", ["float32", "float16", "dynamic", "int8"])
def test_reader_agrees_with_litert_and_the_converter(tiny_exports: Path, mode: str) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import schema_py_generated as schema

    data = (tiny_exports / mode / "model.tflite").read_bytes()
    m = read_tflite(data)
    # TensorFlow's generated flatbuffer code, an independent reader, sees the same operators
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    tf_model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(data, 0))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in tf_model.operatorCodes]
    expected = [names[codes[op.opcodeIndex]] for op in tf_model.subgraphs[0].operators]
    assert [op.opcode for op in m.operators] == expected
    assert model_ops(data) == list(dict.fromkeys(expected))
    it = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
    it.allocate_tensors()
    details = {d["index"]: d for d in it.get_tensor_details()}
    for t in m.tensors:
        d = details[t.index]
        assert d["name"] == t.name and tuple(d["shape_signature"]) == t.shape and np.dtype(d["dtype"]).name == t.dtype
        q = d["quantization_parameters"]
        assert tuple(np.asarray(q["scales"], float)) == pytest.approx(t.scale) and tuple(q["zero_points"]) == t.zero_point
        const = m.tensor_array(t.index)
        if const is not None and not t.is_variable:  # graph constants: the interpreter holds the same values
            np.testing.assert_array_equal(it.get_tensor(t.index), const)
    lstm = [op for op in m.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstm) == 1 and lstm[0].options["cell_clip"] == (10.0 if mode == "int8" else 0.0)  # float exports clear it
    assert lstm[0].options["fused_activation_function"] == "TANH" and not lstm[0].options["time_major"]
    assert (m.inputs, m.outputs) == ((it.get_input_details()[0]["index"],), (it.get_output_details()[0]["index"],))
    manifest = json.loads(m.metadata["har_edge_manifest"])
    assert manifest["weights_sha256"] == content_sha256(data) and manifest["quantization"] == mode
    assert manifest["schema_version"] == 3 and len(weights_sha256(m)) == 64  # the constants-only hash of schema 2


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_files_raise_model_error_or_parse(tiny_exports: Path, data: st.DataObject) -> None:
    """Truncation or random byte flips: the reader raises ModelError or returns a model, nothing else."""
    original = (tiny_exports / "int8" / "model.tflite").read_bytes()
    blob = bytearray(original[: data.draw(st.integers(0, len(original)), label="length")])
    for _ in range(data.draw(st.integers(0, 6), label="flips")):
        if blob:
            blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    try:
        read_tflite(bytes(blob), where="fuzzed.tflite")
    except ModelError as exc:
        assert "fuzzed.tflite" in str(exc)
