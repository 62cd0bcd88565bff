"""A NumPy reference engine: the RNN and LSTM equations, written out, verified against Keras.

This module imports **numpy only**, so it runs on a device with no TensorFlow and no LiteRT
(:meth:`ReferenceModel.from_keras` reads a Keras model by duck typing, without importing Keras).
It mirrors the classifiers that ``har_edge``'s model builders make::

    window (n, T, C) → [Conv1D(same, relu) → MaxPool1D]* → LSTM / SimpleRNN layers
                     → (Dropout: identity at inference) → [Dense(relu)] → Dense(softmax) → (n, k)

Notation (row vectors, as Keras stores its weights, so ``x @ U`` is the book's ``U·x``):

* Simple RNN: ``s_t = tanh(U·x_t + W·s_{t-1} + b)``; Keras ``kernel`` = U ``(in, u)``,
  ``recurrent_kernel`` = W ``(u, u)``, ``bias`` = b ``(u,)``.
* LSTM (Keras gate order **i, f, c, o** along the last axis of ``kernel (in, 4u)``,
  ``recurrent_kernel (u, 4u)`` and ``bias (4u,)``)::

      f_t = σ(W_f x_t + U_f s_{t-1} + b_f)        forget gate
      i_t = σ(W_i x_t + U_i s_{t-1} + b_i)        input gate
      C̃_t = tanh(W_c x_t + U_c s_{t-1} + b_c)     candidate cell
      C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t             cell state (the additive path)
      o_t = σ(W_o x_t + U_o s_{t-1} + b_o)        output gate
      s_t = o_t ⊙ tanh(C_t)                       hidden state

  (The LSTM literature names the input weights W and the recurrent ones U — the opposite of the
  simple-RNN textbook convention; each class follows its own equations.)

Weights travel to the device as one ``.npz`` (arrays plus a JSON architecture string, no pickle):
:meth:`ReferenceModel.save_npz` / :meth:`ReferenceModel.load_npz`.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> model = ReferenceModel(layers=(
...     SimpleRNNLayer(U=rng.normal(size=(3, 4)).astype(np.float32), W=np.eye(4, dtype=np.float32),
...                    b=np.zeros(4, np.float32)),
...     DenseLayer(kernel=rng.normal(size=(4, 2)).astype(np.float32), bias=np.zeros(2, np.float32),
...                activation="softmax"),
... ), input_shape=(5, 3))
>>> model.predict_proba(rng.normal(size=(7, 5, 3)).astype(np.float32)).shape
(7, 2)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BundleError, DataError, ModelError
from har_edge.inference.reference_layers import (
    LAYER_TYPES,
    Array,
    Conv1DLayer,
    DenseLayer,
    Layer,
    LSTMLayer,
    MaxPool1DLayer,
    SimpleRNNLayer,
    sigmoid,
    softmax,
)

__all__ = [
    "sigmoid",
    "softmax",
    "Conv1DLayer",
    "MaxPool1DLayer",
    "SimpleRNNLayer",
    "LSTMLayer",
    "DenseLayer",
    "Layer",
    "ReferenceModel",
    "NPZ_FORMAT",
]

log = logging.getLogger(__name__)

NPZ_FORMAT = "har_edge.reference/1"


def _layer_from_arrays(kind: str, name: str, config: dict[str, Any], arrays: dict[str, Array]) -> Layer:
    if kind not in LAYER_TYPES:
        raise ModelError(f"layer {name!r}: type {kind!r} is unknown; expected one of {sorted(LAYER_TYPES)}")
    if kind == "simple_rnn":
        return SimpleRNNLayer.from_arrays(arrays, name=name, **config)
    layer: Layer = LAYER_TYPES[kind](name=name, **config, **arrays)
    return layer


# Reading a tf_keras model by duck typing (no TensorFlow import here)
_SKIPPED = {"InputLayer", "Dropout"}  # Dropout is the identity at inference


def _only(cfg: dict[str, Any], key: str, allowed: tuple[Any, ...], where: str) -> None:
    if key in cfg and cfg[key] not in allowed:
        raise ModelError(f"{where}: {key}={cfg[key]!r} is not supported; expected {allowed}")


def _layer_from_keras(layer: Any, lstm_cell_clip: float | None) -> Layer | None:
    kind = layer.__class__.__name__
    cfg: dict[str, Any] = layer.get_config()
    name = str(cfg.get("name", getattr(layer, "name", kind)))
    where = f"layer {name!r} ({kind})"
    if kind in _SKIPPED:
        return None
    w = [np.asarray(a, dtype=np.float32) for a in layer.get_weights()]
    use_bias = bool(cfg.get("use_bias", True))
    if kind == "Conv1D":
        for key, ok in (("strides", ((1,), [1], 1)), ("dilation_rate", ((1,), [1], 1)), ("groups", (1,)),
                        ("data_format", ("channels_last",)), ("padding", ("same", "valid"))):
            _only(cfg, key, ok, where)
        bias = w[1] if use_bias else np.zeros(w[0].shape[2], np.float32)
        return Conv1DLayer(kernel=w[0], bias=bias, activation=cfg["activation"], padding=cfg["padding"], name=name)
    if kind in ("MaxPooling1D", "MaxPool1D"):
        _only(cfg, "padding", ("valid",), where)
        _only(cfg, "data_format", ("channels_last",), where)
        pool = int(np.ravel(cfg["pool_size"])[0])
        strides = pool if cfg.get("strides") is None else int(np.ravel(cfg["strides"])[0])
        return MaxPool1DLayer(pool_size=pool, strides=strides, name=name)
    if kind in ("LSTM", "SimpleRNN"):
        for key in ("go_backwards", "return_state", "stateful"):
            _only(cfg, key, (False,), where)
        _only(cfg, "time_major", (False,), where)
        units = w[0].shape[1]
        bias = w[2] if use_bias else np.zeros(units, np.float32)
        if kind == "SimpleRNN":
            return SimpleRNNLayer(U=w[0], W=w[1], b=bias, return_sequences=bool(cfg["return_sequences"]),
                                  activation=cfg["activation"], name=name)
        return LSTMLayer(kernel=w[0], recurrent_kernel=w[1], bias=bias, return_sequences=bool(cfg["return_sequences"]),
                         activation=cfg["activation"], recurrent_activation=cfg["recurrent_activation"],
                         cell_clip=lstm_cell_clip, name=name)
    if kind == "Dense":
        bias = w[1] if use_bias else np.zeros(w[0].shape[1], np.float32)
        return DenseLayer(kernel=w[0], bias=bias, activation=cfg["activation"], name=name)
    raise ModelError(f"{where}: layer type {kind!r} is not supported by the reference engine; "
                     f"supported: Conv1D, MaxPooling1D, LSTM, SimpleRNN, Dense, Dropout, InputLayer")


# The model
@dataclass(frozen=True, eq=False)
class ReferenceModel:
    """A stack of reference layers applied in order.

    Attributes:
        layers: the layers, input to output.
        input_shape: ``(T, C)`` of one window (``T`` may be ``None``: any length).
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int | None, int]
    name: str = "reference"

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ModelError(f"{self.name}: a reference model needs at least one layer")

    # -- inference ------------------------------------------------------------------------------
    def predict_proba(self, X: NDArray[np.floating], *, dtype: str = "float32", batch_size: int = 512) -> Array:
        """Class probabilities for a batch of normalised windows.

        Args:
            X: ``(n, T, C)`` windows (already standardised, like the Keras model's input).
            dtype: ``"float32"`` (default; what Keras and LiteRT compute in) or ``"float64"``.
            batch_size: windows per chunk (bounds memory: the LSTM keeps ``(chunk, T, 4u)`` projections).

        Returns:
            ``(n, k)`` probabilities in ``dtype``.

        Raises:
            DataError: ``X`` is not 3-D or its ``(T, C)`` does not match :attr:`input_shape`.
        """
        if dtype not in ("float32", "float64"):
            raise DataError(f"dtype={dtype!r}; expected 'float32' or 'float64'")
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size}; expected >= 1")
        X = np.asarray(X)
        T, C = self.input_shape
        if X.ndim != 3 or X.shape[2] != C or (T is not None and X.shape[1] != T):
            raise DataError(f"windows have shape {X.shape}; this model expects (n, {T}, {C})")
        X = X.astype(dtype, copy=False)
        chunks = [self._forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
        if not chunks:
            return np.zeros((0, self.n_outputs), dtype=dtype)
        return np.concatenate(chunks, axis=0)

    def infer_window(self, x: NDArray[np.floating], *, dtype: str = "float32") -> Array:
        """Probabilities ``(k,)`` for one normalised window ``x`` of shape ``(T, C)``."""
        x = np.asarray(x)
        if x.ndim != 2:
            raise DataError(f"window has shape {x.shape}; expected (T, C) = {self.input_shape}")
        return self.predict_proba(x[None], dtype=dtype)[0]

    def _forward(self, x: Array) -> Array:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    @property
    def n_outputs(self) -> int:
        last = self.layers[-1]
        if isinstance(last, DenseLayer):
            return int(last.kernel.shape[1])
        raise ModelError(f"{self.name}: the last layer is {last.kind!r}, not a dense head")

    def count_params(self) -> int:
        """Number of weights (the same count Keras's ``count_params`` gives)."""
        return int(sum(a.size for layer in self.layers for a in layer.arrays().values()))

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_keras(cls, model: Any, *, lstm_cell_clip: float | None = None) -> ReferenceModel:
        """Read a tf_keras model's layers by duck typing (``__class__.__name__``, ``get_config()``, ``get_weights()``).

        Args:
            model: a tf_keras model (Functional or Sequential, flat).
            lstm_cell_clip: ``None`` computes what Keras computes; ``10.0`` what the converted
                ``.tflite`` computes (its fused LSTM clips the cell state).

        Raises:
            ModelError: a layer type or option the reference engine does not implement.
        """
        layers = [ref for ref in (_layer_from_keras(layer, lstm_cell_clip) for layer in model.layers) if ref is not None]
        shape = tuple(model.input_shape)
        if len(shape) != 3:
            raise ModelError(f"{model.name}: input shape {shape} is not (batch, T, C)")
        T = None if shape[1] is None else int(shape[1])
        return cls(layers=tuple(layers), input_shape=(T, int(shape[2])), name=str(model.name))

    @classmethod
    def from_tflite(cls, model: str | Path | bytes) -> ReferenceModel:
        """Read a float32 / float16 / dynamic-range ``.tflite`` (a path or its bytes), NumPy only.

        See :func:`har_edge.inference.reference_tflite.reference_from_tflite`; raises ``ModelError``.
        """
        from har_edge.inference.reference_tflite import reference_from_tflite  # imports this module

        if isinstance(model, (bytes, bytearray)):
            return reference_from_tflite(bytes(model))
        return reference_from_tflite(Path(model).read_bytes(), where=str(model))

    # -- the .npz the device loads --------------------------------------------------------------
    def architecture(self) -> dict[str, Any]:
        """The JSON-able description stored next to the arrays in the ``.npz``."""
        return {
            "format": NPZ_FORMAT,
            "name": self.name,
            "input_shape": list(self.input_shape),
            "layers": [{"type": layer.kind, "name": layer.name, "config": layer.config()} for layer in self.layers],
        }

    def save_npz(self, path: str | Path) -> Path:
        """Write one ``.npz``: ``architecture`` (a JSON string) and ``layer{i}.{array}`` float32 arrays."""
        path = Path(path)
        arrays: dict[str, NDArray[Any]] = {"architecture": np.array(json.dumps(self.architecture()))}
        for i, layer in enumerate(self.layers):
            for key, a in layer.arrays().items():
                arrays[f"layer{i}.{key}"] = np.asarray(a)
        with path.open("wb") as fh:  # a file handle: np.savez would otherwise append ".npz" to the name
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        log.debug("wrote %s (%d layers, %d parameters)", path, len(self.layers), self.count_params())
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> ReferenceModel:
        """Read a ``.npz`` written by :meth:`save_npz` (no pickle).

        Raises:
            BundleError: the file is missing, not an npz, or its architecture and arrays disagree.
        """
        path = Path(path)
        if not path.is_file():
            raise BundleError(f"{path}: reference weights file not found")
        try:
            with np.load(path, allow_pickle=False) as npz:
                contents = {key: npz[key] for key in npz.files}
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path}: not a readable .npz ({exc})") from exc
        if "architecture" not in contents:
            raise BundleError(f"{path}: no 'architecture' entry; keys are {sorted(contents)}")
        try:
            arch = json.loads(str(contents.pop("architecture")))
            if arch.get("format") != NPZ_FORMAT:
                raise BundleError(f"{path}: format={arch.get('format')!r}; expected {NPZ_FORMAT!r}")
            layers = []
            for i, spec in enumerate(arch["layers"]):
                prefix = f"layer{i}."
                arrays = {k[len(prefix):]: v for k, v in contents.items() if k.startswith(prefix)}
                layers.append(_layer_from_arrays(spec["type"], spec["name"], spec["config"], arrays))
            T, C = arch["input_shape"]
            return cls(layers=tuple(layers), input_shape=(None if T is None else int(T), int(C)), name=str(arch["name"]))
        except BundleError:
            raise
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, ModelError) as exc:
            raise BundleError(f"{path}: malformed reference weights ({type(exc).__name__}: {exc})") from exc
