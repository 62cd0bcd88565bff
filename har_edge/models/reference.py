"""A NumPy reference engine: the RNN and LSTM equations, written out, verified against Keras.

This module imports **numpy only** (TensorFlow is imported lazily, and only by
:meth:`ReferenceModel.from_run`), so it runs on a device with no TensorFlow and no LiteRT.
It mirrors the classifiers of :mod:`har_edge.models.builders`::

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
from typing import Any, Callable, ClassVar, Union

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BundleError, DataError, ModelError

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
Array = NDArray[np.floating]


# Activations
def sigmoid(z: Array) -> Array:
    """σ(z) = 1 / (1 + e^{-z}), elementwise, in the dtype of ``z``."""
    with np.errstate(over="ignore"):  # e^{-z} → inf for very negative z gives σ = 0, as it should
        return 1.0 / (1.0 + np.exp(-z))


def softmax(z: Array) -> Array:
    """softmax over the last axis: ``exp(z - max z) / Σ exp(z - max z)``."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _hard_sigmoid(z: Array) -> Array:
    """tf_keras 2.x ``hard_sigmoid``: ``clip(0.2 z + 0.5, 0, 1)``."""
    return np.clip(0.2 * z + 0.5, 0.0, 1.0).astype(z.dtype, copy=False)


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "linear": lambda z: z,
    "relu": lambda z: np.maximum(z, 0),
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "hard_sigmoid": _hard_sigmoid,
    "softmax": softmax,
}


def _activation(name: str, where: str) -> Callable[[Array], Array]:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ModelError(f"{where}: activation={name!r} is not supported; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _check_shape(where: str, name: str, a: NDArray[Any], shape: tuple[int, ...]) -> None:
    if a.shape != shape:
        raise ModelError(f"{where}: {name} has shape {a.shape}, expected {shape}")


def _as(a: Array, x: Array) -> Array:
    """Weights in the compute dtype of ``x`` (no copy when they already match)."""
    return a.astype(x.dtype, copy=False)


# Layers. Each has ``forward(x)``, ``config()`` (JSON-able) and ``arrays()`` (for the .npz).
@dataclass(frozen=True, eq=False)
class Conv1DLayer:
    """``y[t] = act(Σ_k x[t + k - pad_left] · kernel[k] + bias)``, stride 1.

    Attributes:
        kernel: ``(K, C_in, F)``.
        bias: ``(F,)``.
        padding: ``"same"`` (zero-pad ``(K-1)//2`` before and the rest after, like TF) or ``"valid"``.
    """

    kernel: Array
    bias: Array
    activation: str = "relu"
    padding: str = "same"
    name: str = "conv"
    kind: ClassVar[str] = "conv1d"

    def __post_init__(self) -> None:
        if self.kernel.ndim != 3:
            raise ModelError(f"{self.name}: kernel has shape {self.kernel.shape}, expected (K, C_in, F)")
        _check_shape(self.name, "bias", self.bias, (self.kernel.shape[2],))
        if self.padding not in ("same", "valid"):
            raise ModelError(f"{self.name}: padding={self.padding!r}; expected 'same' or 'valid'")
        _activation(self.activation, self.name)

    def forward(self, x: Array) -> Array:
        """``(n, T, C_in)`` → ``(n, T, F)`` (same) or ``(n, T-K+1, F)`` (valid)."""
        K = self.kernel.shape[0]
        if self.padding == "same":
            left = (K - 1) // 2
            x = np.pad(x, ((0, 0), (left, K - 1 - left), (0, 0)))
        T_out = x.shape[1] - K + 1
        kernel = _as(self.kernel, x)
        y = _as(self.bias, x) + x[:, 0:T_out, :] @ kernel[0]
        for k in range(1, K):  # one shifted matmul per kernel tap
            y = y + x[:, k:k + T_out, :] @ kernel[k]
        return ACTIVATIONS[self.activation](y)

    def config(self) -> dict[str, Any]:
        return {"activation": self.activation, "padding": self.padding}

    def arrays(self) -> dict[str, Array]:
        return {"kernel": self.kernel, "bias": self.bias}


@dataclass(frozen=True, eq=False)
class MaxPool1DLayer:
    """Max over windows of ``pool_size`` steps, moving by ``strides`` (valid padding)."""

    pool_size: int
    strides: int
    name: str = "pool"
    kind: ClassVar[str] = "maxpool1d"

    def __post_init__(self) -> None:
        if self.pool_size < 1 or self.strides < 1:
            raise ModelError(f"{self.name}: pool_size={self.pool_size}, strides={self.strides}; both must be >= 1")

    def forward(self, x: Array) -> Array:
        """``(n, T, C)`` → ``(n, (T - pool_size)//strides + 1, C)``."""
        T_out = (x.shape[1] - self.pool_size) // self.strides + 1
        span = (T_out - 1) * self.strides + 1
        return np.stack([x[:, j:j + span:self.strides] for j in range(self.pool_size)]).max(axis=0)

    def config(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "strides": self.strides}

    def arrays(self) -> dict[str, Array]:
        return {}


@dataclass(frozen=True, eq=False)
class SimpleRNNLayer:
    """The Elman RNN: ``s_t = tanh(U·x_t + W·s_{t-1} + b)``, with ``s_0 = 0``.

    Attributes:
        U: input weights ``(C_in, u)`` (Keras ``kernel``).
        W: recurrent weights ``(u, u)`` (Keras ``recurrent_kernel``).
        b: bias ``(u,)``.
        return_sequences: return every ``s_t`` ``(n, T, u)`` rather than the last ``s_T`` ``(n, u)``.
    """

    U: Array
    W: Array
    b: Array
    return_sequences: bool = False
    activation: str = "tanh"
    name: str = "simple_rnn"
    kind: ClassVar[str] = "simple_rnn"

    def __post_init__(self) -> None:
        if self.U.ndim != 2:
            raise ModelError(f"{self.name}: U has shape {self.U.shape}, expected (C_in, units)")
        u = self.U.shape[1]
        _check_shape(self.name, "W", self.W, (u, u))
        _check_shape(self.name, "b", self.b, (u,))
        _activation(self.activation, self.name)

    def forward(self, x: Array) -> Array:
        """``(n, T, C_in)`` → ``(n, u)``, or ``(n, T, u)`` with ``return_sequences``."""
        U, W, b = _as(self.U, x), _as(self.W, x), _as(self.b, x)
        act = ACTIVATIONS[self.activation]
        n, T, _ = x.shape
        Ux_b = x @ U + b  # U·x_t + b for every t at once: (n, T, u); only W·s_{t-1} is sequential
        s = np.zeros((n, U.shape[1]), dtype=x.dtype)  # s_0
        states = []
        for t in range(T):
            s = act(Ux_b[:, t] + s @ W)  # s_t = tanh(U·x_t + W·s_{t-1} + b)
            states.append(s)
        return np.stack(states, axis=1) if self.return_sequences else s

    def config(self) -> dict[str, Any]:
        return {"return_sequences": self.return_sequences, "activation": self.activation}

    def arrays(self) -> dict[str, Array]:
        return {"kernel": self.U, "recurrent_kernel": self.W, "bias": self.b}

    @classmethod
    def from_arrays(cls, arrays: dict[str, Array], **config: Any) -> SimpleRNNLayer:
        return cls(U=arrays["kernel"], W=arrays["recurrent_kernel"], b=arrays["bias"], **config)


def _split_gates(m: Array) -> dict[str, Array]:
    """Split Keras's fused ``(..., 4u)`` LSTM weights into the four gates, order i, f, c, o."""
    i, f, c, o = (np.ascontiguousarray(g) for g in np.split(m, 4, axis=-1))
    return {"i": i, "f": f, "c": c, "o": o}


@dataclass(frozen=True, eq=False)
class LSTMLayer:
    """The LSTM, gate by gate (see the module docstring), with ``s_0 = C_0 = 0``.

    Attributes:
        kernel: input weights ``[W_i W_f W_c W_o]`` ``(C_in, 4u)``.
        recurrent_kernel: recurrent weights ``[U_i U_f U_c U_o]`` ``(u, 4u)``.
        bias: ``[b_i b_f b_c b_o]`` ``(4u,)``.
        activation: for ``C̃_t`` and ``tanh(C_t)`` (Keras ``activation``, default tanh).
        recurrent_activation: σ of the gates (Keras ``recurrent_activation``; tf_keras 2.21's default is
            ``"sigmoid"``, the old Keras 1 default ``"hard_sigmoid"`` is supported too).
        cell_clip: if set, ``C_t`` is clipped to ``[-cell_clip, cell_clip]`` after each update. Keras
            never clips; the TFLite converter gives the fused ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op
            ``cell_clip=10``, so ``10.0`` reproduces LiteRT (see docs/recurrent-networks.md).
    """

    kernel: Array
    recurrent_kernel: Array
    bias: Array
    return_sequences: bool = False
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    cell_clip: float | None = None
    name: str = "lstm"
    kind: ClassVar[str] = "lstm"

    def __post_init__(self) -> None:
        if self.kernel.ndim != 2 or self.kernel.shape[1] % 4:
            raise ModelError(f"{self.name}: kernel has shape {self.kernel.shape}, expected (C_in, 4*units)")
        u = self.kernel.shape[1] // 4
        _check_shape(self.name, "recurrent_kernel", self.recurrent_kernel, (u, 4 * u))
        _check_shape(self.name, "bias", self.bias, (4 * u,))
        _activation(self.activation, self.name)
        _activation(self.recurrent_activation, self.name)
        if self.cell_clip is not None and not self.cell_clip > 0:
            raise ModelError(f"{self.name}: cell_clip={self.cell_clip}; expected None or > 0")

    @property
    def units(self) -> int:
        return self.kernel.shape[1] // 4

    def forward(self, x: Array) -> Array:
        """``(n, T, C_in)`` → ``(n, u)``, or ``(n, T, u)`` with ``return_sequences``."""
        W = _split_gates(_as(self.kernel, x))            # W["f"]: (C_in, u)
        U = _split_gates(_as(self.recurrent_kernel, x))  # U["f"]: (u, u)
        b = _split_gates(_as(self.bias, x))              # b["f"]: (u,)
        sigma, tanh = ACTIVATIONS[self.recurrent_activation], ACTIVATIONS[self.activation]
        # The input halves W·x_t + b of all four gates, for every t at once: each (n, T, u).
        Wx_b = {g: x @ W[g] + b[g] for g in "ifco"}
        n, T, _ = x.shape
        s = np.zeros((n, self.units), dtype=x.dtype)  # s_0: hidden state
        C = np.zeros((n, self.units), dtype=x.dtype)  # C_0: cell state
        states = []
        for t in range(T):
            f = sigma(Wx_b["f"][:, t] + s @ U["f"])         # f_t = σ(W_f x_t + U_f s_{t-1} + b_f)
            i = sigma(Wx_b["i"][:, t] + s @ U["i"])         # i_t = σ(W_i x_t + U_i s_{t-1} + b_i)
            C_tilde = tanh(Wx_b["c"][:, t] + s @ U["c"])    # C̃_t = tanh(W_c x_t + U_c s_{t-1} + b_c)
            C = f * C + i * C_tilde                         # C_t = f_t ⊙ C_{t-1} + i_t ⊙ C̃_t
            if self.cell_clip is not None:                  # LiteRT's fused op only: |C_t| <= clip
                C = np.clip(C, -self.cell_clip, self.cell_clip)
            o = sigma(Wx_b["o"][:, t] + s @ U["o"])         # o_t = σ(W_o x_t + U_o s_{t-1} + b_o)
            s = o * tanh(C)                                 # s_t = o_t ⊙ tanh(C_t)
            states.append(s)
        return np.stack(states, axis=1) if self.return_sequences else s

    def config(self) -> dict[str, Any]:
        return {"return_sequences": self.return_sequences, "activation": self.activation,
                "recurrent_activation": self.recurrent_activation, "cell_clip": self.cell_clip}

    def arrays(self) -> dict[str, Array]:
        return {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel, "bias": self.bias}


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """``y = act(x·kernel + bias)``; the head ``ŷ = softmax(V·s_T + c)`` is a Dense with softmax.

    Attributes:
        kernel: ``(in, out)`` (V for the head).
        bias: ``(out,)`` (c for the head).
    """

    kernel: Array
    bias: Array
    activation: str = "linear"
    name: str = "dense"
    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        if self.kernel.ndim != 2:
            raise ModelError(f"{self.name}: kernel has shape {self.kernel.shape}, expected (in, out)")
        _check_shape(self.name, "bias", self.bias, (self.kernel.shape[1],))
        _activation(self.activation, self.name)

    def forward(self, x: Array) -> Array:
        """``(n, in)`` → ``(n, out)`` (or ``(n, T, in)`` → ``(n, T, out)``)."""
        return ACTIVATIONS[self.activation](x @ _as(self.kernel, x) + _as(self.bias, x))

    def config(self) -> dict[str, Any]:
        return {"activation": self.activation}

    def arrays(self) -> dict[str, Array]:
        return {"kernel": self.kernel, "bias": self.bias}


Layer = Union[Conv1DLayer, MaxPool1DLayer, SimpleRNNLayer, LSTMLayer, DenseLayer]
_LAYER_TYPES: dict[str, type] = {cls.kind: cls for cls in (Conv1DLayer, MaxPool1DLayer, SimpleRNNLayer, LSTMLayer, DenseLayer)}


def _layer_from_arrays(kind: str, name: str, config: dict[str, Any], arrays: dict[str, Array]) -> Layer:
    if kind not in _LAYER_TYPES:
        raise ModelError(f"layer {name!r}: type {kind!r} is unknown; expected one of {sorted(_LAYER_TYPES)}")
    if kind == "simple_rnn":
        return SimpleRNNLayer.from_arrays(arrays, name=name, **config)
    layer: Layer = _LAYER_TYPES[kind](name=name, **config, **arrays)
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
    def from_run(cls, run_dir: str | Path, *, lstm_cell_clip: float | None = None) -> ReferenceModel:
        """Load ``RUN_DIR/model.keras`` (needs TensorFlow, imported only here) and read it (see :meth:`from_keras`)."""
        from har_edge.models.training import load_keras_model  # lazy: keeps this module TF-free

        return cls.from_keras(load_keras_model(Path(run_dir)), lstm_cell_clip=lstm_cell_clip)

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
