"""The NumPy reference engine built from a ``.tflite`` (no TensorFlow in the reader) against LiteRT."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.requirements import import_or_skip

from har_edge.errors import BundleError, ModelError
from har_edge.inference.reference import LSTMLayer, ReferenceModel
from har_edge.inference.reference_tflite import reference_from_tflite
from har_edge.inference.flatbuffer import read_tflite

pytestmark = pytest.mark.tf

TOLERANCE = 1e-5
FLOAT16_TOLERANCE = 1e-5  # the reference reads the same float16-rounded weights LiteRT dequantises; measured ~1e-6
# Dynamic range: same int8 weights, but LiteRT's hybrid kernels also quantise the activations to int8 on the
# fly. Measured on the real hapt_device model's 2,996 test windows: max 0.107, argmax agreement 99.93 %.
DYNAMIC_TOLERANCE = 0.15


def _litert(model_bytes: bytes, X: np.ndarray) -> np.ndarray:
    """LiteRT probabilities ``(n, k)``, one invoke per window from zero state."""
    import_or_skip("ai_edge_litert.interpreter")
    from har_edge.inference.interpreter import TfliteRunner

    with TfliteRunner(model_bytes, backend="litert") as runner:
        return runner.predict(X)


def _windows(n: int, T: int, C: int, seed: int = 0) -> np.ndarray:
    """Normalised-like windows: slow random walks plus noise, so the conv and LSTM see structure."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(scale=0.3, size=(n, T, C)), axis=1)
    return (walk / walk.std() + rng.normal(scale=0.3, size=(n, T, C))).astype(np.float32)


@pytest.mark.parametrize("mode,tolerance", [("float32", TOLERANCE), ("float16", FLOAT16_TOLERANCE),
                                            ("dynamic", DYNAMIC_TOLERANCE)])
def test_tiny_export_matches_litert(tiny_exports: Path, mode: str, tolerance: float) -> None:
    data = (tiny_exports / mode / "model.tflite").read_bytes()
    ref = reference_from_tflite(data, where=mode)
    assert ref.input_shape == (64, 9)
    assert [layer.kind for layer in ref.layers] == ["conv1d", "maxpool1d", "lstm", "dense"]
    lstm = ref.layers[2]
    assert isinstance(lstm, LSTMLayer) and lstm.units == 12 and not lstm.return_sequences
    # the op's cell_clip is copied: 10 from the converter, 0 (= None) if the export rewrote it
    (clip,) = [op.options["cell_clip"] for op in read_tflite(data).operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert lstm.cell_clip == (clip or None)
    X = _windows(50, 64, 9)
    got, expected = ref.predict_proba(X), _litert(data, X)
    assert got.shape == expected.shape == (50, ref.n_outputs)
    assert np.abs(got - expected).max() <= tolerance
    if mode != "dynamic":
        assert (got.argmax(1) == expected.argmax(1)).all()
    else:
        assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9


def test_weights_read_back_from_the_tflite_are_the_keras_weights(tiny_run: Path, tiny_exports: Path) -> None:
    """The float32 export's weights, read back by the NumPy engine, are the trained Keras weights."""
    from har_edge.models.training import load_keras_model

    from_tflite = ReferenceModel.from_tflite(tiny_exports / "float32" / "model.tflite")
    from_keras = ReferenceModel.from_keras(load_keras_model(tiny_run))
    assert from_tflite.count_params() == from_keras.count_params()
    for a, b in zip(from_tflite.layers, from_keras.layers):
        assert a.kind == b.kind
        for key, value in b.arrays().items():
            np.testing.assert_allclose(a.arrays()[key], value, atol=1e-6)


def test_export_writes_no_second_copy_of_the_weights(tiny_exports: Path) -> None:
    """One bundle format: the .tflite is the only copy of the weights (the NumPy engine reads it)."""
    assert sorted(p.name for p in (tiny_exports / "float32").iterdir()) == ["manifest.json", "model.tflite"]


def test_int8_model_is_refused(tiny_exports: Path) -> None:
    with pytest.raises(ModelError, match="full-integer.*float32, float16, dynamic"):
        reference_from_tflite((tiny_exports / "int8" / "model.tflite").read_bytes())


def test_stacked_lstm_and_hidden_dense_match_litert() -> None:
    """Two LSTMs (the first returns sequences), an even conv kernel and a hidden Dense(relu): beyond the tiny export.

    Converted float32 and dynamic; its 32-filter conv and 32-unit LSTM are big enough for the dynamic-range
    converter to quantise them to int8 (per-channel for the conv), so the dequantisation is exercised too.
    """
    from har_edge.config import ModelConfig
    from har_edge.export.converter import convert_to_tflite
    from har_edge.models.builders import build_classifier

    arch = ModelConfig(cell="lstm", units=(32, 6), conv_filters=(32,), conv_kernel=4, dense_units=5, dropout=0.0)
    model = build_classifier(arch, window_samples=32, n_channels=9, n_classes=6, seed=5)
    rng = np.random.default_rng(5)
    weights = [w * 1.5 + rng.normal(scale=0.2, size=w.shape).astype(np.float32) for w in model.get_weights()]
    weights[-2] *= 8.0  # the head's kernel: peaked softmaxes
    twin = build_classifier(arch, window_samples=32, n_channels=9, n_classes=6, batch_size=1)
    twin.set_weights(weights)
    X = _windows(40, 32, 9, seed=1)

    data = convert_to_tflite(twin, "float32")
    ref = ReferenceModel.from_tflite(data)
    assert [layer.kind for layer in ref.layers] == ["conv1d", "maxpool1d", "lstm", "lstm", "dense", "dense"]
    assert [getattr(layer, "return_sequences", None) for layer in ref.layers[2:4]] == [True, False]
    assert ref.layers[4].activation == "relu" and ref.layers[5].activation == "softmax"  # type: ignore[union-attr]
    got, expected = ref.predict_proba(X), _litert(data, X)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert expected.max(axis=1).mean() > 0.3  # well above uniform (1/6): not flat outputs
    keras_clipped = ReferenceModel.from_keras(twin, lstm_cell_clip=10.0).predict_proba(X)
    assert np.abs(got - keras_clipped).max() <= TOLERANCE

    dynamic = convert_to_tflite(twin, "dynamic")
    assert any(t.dtype == "int8" and len(t.scale) > 1 for t in read_tflite(dynamic).tensors)  # per-channel conv
    ref_dyn = ReferenceModel.from_tflite(dynamic)
    assert np.abs(ref_dyn.predict_proba(X) - _litert(dynamic, X)).max() <= DYNAMIC_TOLERANCE
    assert np.abs(ref_dyn.predict_proba(X) - got).max() <= DYNAMIC_TOLERANCE  # int8 weights ≈ the float ones


def test_simple_rnn_model_is_refused_by_name() -> None:
    from har_edge.config import ModelConfig
    from har_edge.export.converter import convert_to_tflite
    from har_edge.models.builders import build_classifier

    twin = build_classifier(ModelConfig(cell="simple_rnn", units=(4,), dropout=0.0), window_samples=16, n_channels=3,
                            n_classes=3, batch_size=1)
    with pytest.raises(ModelError, match=r"operator \d+ \(WHILE\).*supported ops.*SimpleRNN"):
        reference_from_tflite(convert_to_tflite(twin, "float32"))


def test_numpy_backend_reads_a_lone_tflite(tiny_exports: Path, tmp_path: Path) -> None:
    from har_edge.inference.bundle import load_bundle
    from har_edge.inference.classifier import Classifier
    from har_edge.inference.runner import REFERENCE_WEIGHTS_NAME

    lone = tmp_path / "lone" / "model.tflite"
    lone.parent.mkdir()
    shutil.copyfile(tiny_exports / "float32" / "model.tflite", lone)
    assert not (lone.parent / REFERENCE_WEIGHTS_NAME).exists() and not (lone.parent / "manifest.json").exists()
    bundle = load_bundle(lone)
    X = _windows(20, 64, 9, seed=2)
    with Classifier(bundle, backend="numpy") as numpy_clf, Classifier(bundle) as lite_clf:
        assert numpy_clf.backend == "numpy" and lite_clf.backend != "numpy"
        got, expected = numpy_clf.predict_normalised(X), lite_clf.predict_normalised(X)
        assert np.abs(got - expected).max() <= TOLERANCE
        np.testing.assert_allclose(numpy_clf.probabilities_normalised(X[0]), got[0], atol=1e-6)

    int8 = tmp_path / "int8" / "model.tflite"
    int8.parent.mkdir()
    shutil.copyfile(tiny_exports / "int8" / "model.tflite", int8)
    with pytest.raises(BundleError, match="numpy backend.*full-integer.*float32, float16, dynamic.*interpreter backend"):
        Classifier(load_bundle(int8), backend="numpy")
