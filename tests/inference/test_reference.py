"""The NumPy reference engine against tf_keras, its .npz format, and its TensorFlow-free import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.requirements import import_or_skip

from har_edge.errors import BundleError, DataError, ModelError
from har_edge.inference.reference import (
    Conv1DLayer,
    DenseLayer,
    LSTMLayer,
    MaxPool1DLayer,
    ReferenceModel,
    SimpleRNNLayer,
    sigmoid,
)

REPO = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5

# (id, ModelConfig kwargs, n_channels)
ARCHITECTURES = [
    ("conv_lstm", dict(cell="lstm", units=(8,), conv_filters=(4,)), 9),
    ("simple_rnn", dict(cell="simple_rnn", units=(8,), dropout=0.0), 3),
    ("conv_even_kernel_stacked_lstm_dense", dict(cell="lstm", units=(8, 6), conv_filters=(4,), conv_kernel=4, dense_units=5), 9),
    ("two_conv_stacked_rnn_dense", dict(cell="simple_rnn", units=(7, 5), conv_filters=(4, 3), conv_pool=3, dense_units=4), 3),
]


def _random_model(arch: dict[str, object], n_channels: int, seed: int) -> object:
    """A seeded tiny classifier whose weights are scaled up so gates saturate and softmaxes are peaked."""
    from har_edge.config import ModelConfig
    from har_edge.models.builders import build_classifier

    model = build_classifier(ModelConfig(**arch), window_samples=32, n_channels=n_channels, n_classes=6, seed=seed)  # type: ignore[arg-type]
    rng = np.random.default_rng(seed)
    weights = [w * 1.5 + rng.normal(scale=0.3, size=w.shape).astype(np.float32) for w in model.get_weights()]
    weights[-2] *= 3.0  # the softmax head's kernel V
    model.set_weights(weights)
    return model


@pytest.mark.tf
@pytest.mark.parametrize("arch,n_channels", [a[1:] for a in ARCHITECTURES], ids=[a[0] for a in ARCHITECTURES])
def test_matches_keras_predict(arch: dict[str, object], n_channels: int, tmp_path: Path) -> None:
    model = _random_model(arch, n_channels, seed=7)
    X = np.random.default_rng(1).normal(size=(32, 32, n_channels)).astype(np.float32)
    expected = model.predict(X, verbose=0)  # type: ignore[attr-defined]
    ref = ReferenceModel.from_keras(model)
    got = ref.predict_proba(X)
    assert got.dtype == np.float32 and got.shape == (32, 6)
    assert np.abs(got - expected).max() <= TOLERANCE
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert expected.max(axis=1).mean() > 0.4  # well above uniform (1/6): not a check on flat outputs
    assert ref.count_params() == model.count_params()  # type: ignore[attr-defined]
    got64 = ref.predict_proba(X, dtype="float64", batch_size=5)
    assert got64.dtype == np.float64 and np.abs(got64 - expected).max() <= TOLERANCE
    np.testing.assert_allclose(ref.infer_window(X[3]), got[3], atol=1e-6)

    loaded = ReferenceModel.load_npz(ref.save_npz(tmp_path / "reference_weights.npz"))
    assert loaded.architecture() == ref.architecture()
    np.testing.assert_array_equal(loaded.predict_proba(X), got)


@pytest.mark.tf
def test_lstm_gate_activations_are_read_from_keras() -> None:
    from har_edge.models.keras_backend import import_keras

    keras = import_keras()
    assert keras.layers.LSTM(4).get_config()["recurrent_activation"] == "sigmoid"  # tf_keras 2.21 default
    model = keras.Sequential([
        keras.Input((10, 3)),
        keras.layers.Conv1D(4, 3, padding="valid", activation="relu"),
        keras.layers.LSTM(5, recurrent_activation="hard_sigmoid"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    X = np.random.default_rng(2).normal(size=(16, 10, 3)).astype(np.float32)
    got = ReferenceModel.from_keras(model).predict_proba(X)
    assert np.abs(got - model.predict(X, verbose=0)).max() <= TOLERANCE


@pytest.mark.tf
def test_unsupported_keras_layer_is_named() -> None:
    from har_edge.models.keras_backend import import_keras

    keras = import_keras()
    model = keras.Sequential([keras.Input((10, 3)), keras.layers.GRU(4, name="my_gru"), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="my_gru.*GRU"):
        ReferenceModel.from_keras(model)


def _hand_model(rng: np.random.Generator) -> ReferenceModel:
    f = lambda *s: rng.normal(size=s).astype(np.float32)  # noqa: E731
    return ReferenceModel(layers=(
        Conv1DLayer(kernel=f(3, 2, 4), bias=f(4)),
        MaxPool1DLayer(pool_size=2, strides=2),
        LSTMLayer(kernel=f(4, 12), recurrent_kernel=f(3, 12), bias=f(12), return_sequences=True),
        SimpleRNNLayer(U=f(3, 5), W=f(5, 5), b=f(5)),
        DenseLayer(kernel=f(5, 3), bias=f(3), activation="softmax"),
    ), input_shape=(8, 2))


def test_lstm_one_step_by_hand() -> None:
    """One LSTM step with one unit, gate by gate, against the equations written out in scalars."""
    kernel = np.array([[0.5, -1.0, 2.0, 0.3]], np.float64)  # W_i W_f W_c W_o (1 input)
    recurrent = np.array([[0.1, 0.2, 0.3, 0.4]], np.float64)  # U_i U_f U_c U_o
    bias = np.array([0.0, 1.0, -0.5, 0.2], np.float64)  # b_i b_f b_c b_o
    layer = LSTMLayer(kernel=kernel, recurrent_kernel=recurrent, bias=bias, return_sequences=True)
    x = np.array([[[1.5], [-0.7]]], np.float64)
    s, C = 0.0, 0.0
    for x_t in (1.5, -0.7):
        i = 1 / (1 + np.exp(-(0.5 * x_t + 0.1 * s + 0.0)))
        f = 1 / (1 + np.exp(-(-1.0 * x_t + 0.2 * s + 1.0)))
        C = f * C + i * np.tanh(2.0 * x_t + 0.3 * s - 0.5)
        s = 1 / (1 + np.exp(-(0.3 * x_t + 0.4 * s + 0.2))) * np.tanh(C)
    np.testing.assert_allclose(layer.forward(x)[0, -1, 0], s, rtol=1e-12)


def test_npz_round_trip_and_errors(tmp_path: Path) -> None:
    ref = _hand_model(np.random.default_rng(3))
    X = np.random.default_rng(4).normal(size=(6, 8, 2)).astype(np.float32)
    path = ref.save_npz(tmp_path / "w.npz")
    loaded = ReferenceModel.load_npz(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), ref.predict_proba(X))
    assert loaded.count_params() == ref.count_params()
    with np.load(path, allow_pickle=False) as npz:  # plain arrays + a JSON string: no pickle needed
        assert "architecture" in npz.files and npz["layer2.kernel"].shape == (4, 12)

    with pytest.raises(BundleError, match="not found"):
        ReferenceModel.load_npz(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BundleError, match="junk.npz"):
        ReferenceModel.load_npz(tmp_path / "junk.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["layer2.recurrent_kernel"] = arrays["layer2.recurrent_kernel"][:, :8]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(BundleError, match="recurrent_kernel has shape"):
        ReferenceModel.load_npz(tmp_path / "bad.npz")


def test_input_shape_and_layer_errors() -> None:
    ref = _hand_model(np.random.default_rng(5))
    with pytest.raises(DataError, match=r"\(6, 8, 3\)"):
        ref.predict_proba(np.zeros((6, 8, 3), np.float32))
    with pytest.raises(DataError, match="float16"):
        ref.predict_proba(np.zeros((6, 8, 2), np.float32), dtype="float16")
    assert ref.infer_window(np.zeros((8, 2), np.float32)).shape == (3,)
    with pytest.raises(ModelError, match="recurrent_kernel"):
        LSTMLayer(kernel=np.zeros((3, 8)), recurrent_kernel=np.zeros((3, 8)), bias=np.zeros(8))
    with pytest.raises(ModelError, match="swish"):
        DenseLayer(kernel=np.zeros((3, 2)), bias=np.zeros(2), activation="swish")
    assert sigmoid(np.array([-1000.0, 0.0, 1000.0], np.float32)).tolist() == [0.0, 0.5, 1.0]


def test_imports_without_tensorflow(tmp_path: Path) -> None:
    """The device path: import, build, save, load and predict with tensorflow/tf_keras/keras unimportable."""
    script = textwrap.dedent(f"""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tf_keras", "keras"):
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        import numpy as np
        import har_edge.inference.reference as r
        f = lambda *s: np.ones(s, np.float32) * 0.1
        m = r.ReferenceModel(layers=(r.LSTMLayer(kernel=f(2, 8), recurrent_kernel=f(2, 8), bias=f(8)),
                                     r.DenseLayer(kernel=f(2, 3), bias=f(3), activation="softmax")), input_shape=(4, 2))
        p = r.ReferenceModel.load_npz(m.save_npz({str(tmp_path / 'w.npz')!r})).predict_proba(f(5, 4, 2))
        assert p.shape == (5, 3)
        heavy = sorted(k for k in sys.modules if k.split(".")[0] in ("tensorflow", "tf_keras", "keras"))
        assert not heavy, heavy
        try:
            import tensorflow
        except ImportError:
            print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.tf
def test_cell_clip_reproduces_litert() -> None:
    """The converted fused LSTM clips C_t to ±10 (Keras does not); ``lstm_cell_clip=10`` matches LiteRT,
    and clearing the clip in the flatbuffer (as float exports do) makes LiteRT match Keras."""
    import_or_skip("ai_edge_litert.interpreter")
    from har_edge.config import ModelConfig
    from har_edge.models.builders import build_classifier
    from har_edge.models.keras_backend import import_tensorflow

    arch = ModelConfig(cell="lstm", units=(8,), dropout=0.0)
    model = build_classifier(arch, window_samples=48, n_channels=3, n_classes=6, seed=3)
    weights = model.get_weights()
    u = 8
    weights[2][:2 * u] += 8.0  # input and forget biases: i ≈ f ≈ 1, so C_t ≈ C_{t-1} + C̃_t
    model.set_weights(weights)
    # 24 steps of +v then 24 of -v: each unit's C_t climbs ~24 (clipped: 10) and then falls back.
    v = np.random.default_rng(1).normal(size=(8, 1, 3))
    X = (np.concatenate([np.repeat(4 * v, 24, axis=1), np.repeat(-4 * v, 24, axis=1)], axis=1)).astype(np.float32)
    twin = build_classifier(arch, window_samples=48, n_channels=3, n_classes=6, batch_size=1)
    twin.set_weights(weights)
    converted = import_tensorflow().lite.TFLiteConverter.from_keras_model(twin).convert()

    def run_litert(model_bytes: bytes) -> np.ndarray:
        from har_edge.inference.interpreter import TfliteRunner

        with TfliteRunner(model_bytes, backend="litert") as runner:
            return runner.predict(X)

    lite_p = run_litert(converted)
    keras_like = ReferenceModel.from_keras(model).predict_proba(X)
    clipped = ReferenceModel.from_keras(model, lstm_cell_clip=10.0).predict_proba(X)
    assert np.abs(keras_like - model.predict(X, verbose=0)).max() <= TOLERANCE
    assert np.abs(keras_like - lite_p).max() > 1e-3  # the clip matters here ...
    assert np.abs(clipped - lite_p).max() <= TOLERANCE  # ... and explains the whole difference
    # what float exports do: clear the clip in the flatbuffer, and LiteRT computes what Keras computes
    from har_edge.export.tflite_rewrite import set_lstm_cell_clip

    unclipped, n_changed = set_lstm_cell_clip(converted, 0.0)
    assert n_changed == 1
    assert np.abs(run_litert(unclipped) - keras_like).max() <= TOLERANCE
