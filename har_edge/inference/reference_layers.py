"""The reference engine's layers: activations and the Conv1D, MaxPool1D, SimpleRNN, LSTM and Dense forward passes.

NumPy only. Shapes are ``(n, T, C)`` for sequences and ``(n, C)`` after the last recurrent layer;
weights are row-major as Keras stores them (``x @ U`` is the book's ``U·x``). The equations are in
:mod:`har_edge.inference.reference`'s docstring and in docs/recurrent-networks.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Union

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import ModelError

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
LAYER_TYPES: dict[str, type] = {cls.kind: cls for cls in (Conv1DLayer, MaxPool1DLayer, SimpleRNNLayer, LSTMLayer, DenseLayer)}
