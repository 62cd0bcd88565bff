"""Build a :class:`~har_edge.inference.reference.ReferenceModel` from a converted ``.tflite`` (NumPy only).

The device gets one file, ``model.tflite``; this module reads its weights back (with
:func:`~har_edge.inference.flatbuffer.read_tflite`, no TensorFlow and no interpreter) so the
NumPy reference engine can run the same model. It walks the operators of an exported classifier::

    RESHAPE → CONV_2D → RESHAPE → MAX_POOL_2D → RESHAPE        (per conv block; the RESHAPEs only
                                                                add/drop the unit height axis)
    → UNIDIRECTIONAL_SEQUENCE_LSTM* → STRIDED_SLICE (last step) → FULLY_CONNECTED* [→ SOFTMAX]

(a classifier ends in SOFTMAX; a forecaster's linear multi-step head is the last FULLY_CONNECTED)

and converts TFLite's weight layouts to the Keras layout the reference layers take:

* CONV_2D filter ``(F, 1, K, C_in)`` (OHWI) → Conv1D kernel ``(K, C_in, F)``;
* LSTM: TFLite keeps one tensor per gate — inputs 1-4 ``W_{i,f,c,o}`` ``(u, C_in)``, 5-8
  ``U_{i,f,c,o}`` ``(u, u)``, 12-15 ``b_{i,f,c,o}`` ``(u,)`` — which are transposed and concatenated
  into Keras's fused ``kernel (C_in, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)`` (gate order
  i, f, c, o); the op's ``cell_clip`` (the converter writes 10) becomes ``LSTMLayer.cell_clip``;
* FULLY_CONNECTED weights ``(out, in)`` → Dense kernel ``(in, out)``; a following SOFTMAX becomes the
  Dense head's ``softmax`` activation.

Constants may be float32, float16 behind a ``DEQUANTIZE`` op (``float16`` export) or int8 with
(per-channel) scales (``dynamic`` export: ``w = (q - zero_point) * scale``). Full-integer (``int8``)
models and SimpleRNN models (they convert to a ``WHILE`` loop over a second subgraph) raise
:class:`~har_edge.errors.ModelError`. (``har-edge export`` refuses SimpleRNN models for the same reason;
the NumPy engine still evaluates them from the Keras run: ``har-edge evaluate RUN --backend numpy``.)
"""

from __future__ import annotations

import numpy as np

from har_edge.errors import ModelError
from har_edge.inference.reference import ReferenceModel
from har_edge.inference.reference_layers import Array, Conv1DLayer, DenseLayer, Layer, LSTMLayer, MaxPool1DLayer
from har_edge.inference.flatbuffer import TfliteModel, TfliteOperator, read_tflite

__all__ = ["reference_from_tflite", "SUPPORTED_OPS", "SUPPORTED_QUANTISATIONS"]

SUPPORTED_OPS = ("DEQUANTIZE", "RESHAPE", "CONV_2D", "MAX_POOL_2D", "UNIDIRECTIONAL_SEQUENCE_LSTM",
                 "STRIDED_SLICE", "FULLY_CONNECTED", "SOFTMAX")
SUPPORTED_QUANTISATIONS = ("float32", "float16", "dynamic")

_ACTIVATIONS = {"NONE": "linear", "RELU": "relu", "TANH": "tanh"}
# UNIDIRECTIONAL_SEQUENCE_LSTM inputs (schema order)
_LSTM_W = (1, 2, 3, 4)        # input-to-{input, forget, cell, output} weights, each (u, C_in)
_LSTM_U = (5, 6, 7, 8)        # recurrent-to-{i, f, c, o} weights, each (u, u)
_LSTM_PEEPHOLE = (9, 10, 11)
_LSTM_B = (12, 13, 14, 15)    # {i, f, c, o} gate biases, each (u,)
_LSTM_PROJECTION = (16, 17)
_LSTM_STATES = (18, 19)       # output state and cell state (variables, zero after reset)
_LSTM_LAYER_NORM = (20, 21, 22, 23)


class _Builder:
    """Walks the operators of one subgraph, keeping the running activation tensor and the layers built so far."""

    def __init__(self, model: TfliteModel, where: str) -> None:
        self.m = model
        self.where = where
        self.consts: dict[int, Array] = {}  # DEQUANTIZE outputs: float32 constants
        self.layers: list[Layer] = []
        self.current = -1

    def fail(self, op: TfliteOperator, msg: str) -> ModelError:
        return ModelError(f"{self.where}: operator {op.index} ({op.opcode}): {msg}")

    def shape(self, index: int) -> tuple[int, ...]:
        return self.m.tensors[index].shape

    def const(self, op: TfliteOperator, index: int, what: str) -> Array | None:
        """The float32 value of constant tensor ``index`` (dequantised), or ``None`` if ``index`` is -1.

        Per-channel scales apply along the tensor's ``quantized_dimension``.
        """
        if index < 0:
            return None
        if index in self.consts:
            return self.consts[index]
        t = self.m.tensors[index]
        data = self.m.tensor_array(index)
        if data is None:
            raise self.fail(op, f"{what} (tensor {index} {t.name!r}) is not a constant")
        if t.dtype in ("float32", "float16"):
            return np.asarray(data, dtype=np.float32)
        if t.dtype in ("int8", "uint8", "int16") and t.scale:
            axis = t.quantized_dimension
            scale = np.asarray(t.scale, np.float32)
            zero = np.asarray(t.zero_point or (0,) * len(t.scale), np.float32)
            if len(scale) > 1:
                if data.ndim <= axis or data.shape[axis] != len(scale) or len(zero) != len(scale):
                    raise self.fail(op, f"{what} (tensor {index}) has {len(scale)} scales for shape {data.shape}; "
                                        f"expected one per entry of axis {axis}")
                bshape = [1] * data.ndim
                bshape[axis] = len(scale)
                scale, zero = scale.reshape(bshape), zero.reshape(bshape)
            return ((data.astype(np.float32) - zero) * scale).astype(np.float32)
        raise self.fail(op, f"{what} (tensor {index} {t.name!r}) has dtype {t.dtype}"
                            f"{'' if t.scale else ' without quantisation scales'}; supported: float32, float16, "
                            "int8 with scales")

    def take_input(self, op: TfliteOperator) -> tuple[int, ...]:
        """Check ``op`` consumes the running activation (a linear chain); returns that tensor's shape."""
        if not op.inputs or op.inputs[0] != self.current:
            raise self.fail(op, f"input {op.inputs[:1]} is not the previous op's output (tensor {self.current}); "
                                "only a linear chain of layers is supported")
        if len(op.outputs) != 1:
            raise self.fail(op, f"has {len(op.outputs)} outputs; expected 1")
        self.current = op.outputs[0]
        return self.shape(op.inputs[0])

    def activation(self, op: TfliteOperator) -> str:
        fused = op.options.get("fused_activation_function", "NONE")
        if fused not in _ACTIVATIONS:
            raise self.fail(op, f"fused_activation_function={fused!r}; supported: {sorted(_ACTIVATIONS)}")
        return _ACTIVATIONS[fused]

    # -- one method per op ------------------------------------------------------------------------
    def dequantize(self, op: TfliteOperator) -> None:
        value = self.const(op, op.inputs[0], "DEQUANTIZE input")  # float16 → float32 (or int8 → float32)
        if value is None:
            raise self.fail(op, "has no input")
        self.consts[op.outputs[0]] = value

    def reshape(self, op: TfliteOperator) -> None:
        before = self.take_input(op)
        after = self.shape(self.current)
        if [d for d in before[1:] if d != 1] != [d for d in after[1:] if d != 1] or before[:1] != after[:1]:
            raise self.fail(op, f"reshapes {before} → {after}; only adding or dropping unit axes is supported")

    def conv_2d(self, op: TfliteOperator) -> None:
        shape = self.take_input(op)
        o = op.options
        filt = self.const(op, op.inputs[1], "filter")
        bias = self.const(op, op.inputs[2] if len(op.inputs) > 2 else -1, "bias")
        if filt is None or filt.ndim != 4 or len(shape) != 4:
            raise self.fail(op, f"input {shape}, filter {None if filt is None else filt.shape}; expected 4-D NHWC and OHWI")
        # Conv1D converts with a unit height: input (n, 1, T, C), filter (F, 1, K, C).
        if shape[1] == 1 and filt.shape[1] == 1:
            kernel, stride, dilation = filt[:, 0], o.get("stride_w"), o.get("dilation_w_factor")
        elif shape[2] == 1 and filt.shape[2] == 1:
            kernel, stride, dilation = filt[:, :, 0], o.get("stride_h"), o.get("dilation_h_factor")
        else:
            raise self.fail(op, f"input {shape} with filter {filt.shape} is a true 2-D convolution; only Conv1D is supported")
        if (stride, dilation, o["stride_h"] * o["stride_w"]) != (1, 1, 1) or o.get("padding") not in ("SAME", "VALID"):
            raise self.fail(op, f"options {o}; supported: strides 1, dilation 1, SAME or VALID padding")
        kernel = np.ascontiguousarray(kernel.transpose(1, 2, 0))  # (F, K, C) → (K, C_in, F)
        if bias is None:
            bias = np.zeros(kernel.shape[2], np.float32)
        self.layers.append(Conv1DLayer(kernel=kernel, bias=bias.reshape(-1), activation=self.activation(op),
                                       padding=o["padding"].lower(), name=f"conv_op{op.index}"))

    def max_pool_2d(self, op: TfliteOperator) -> None:
        shape = self.take_input(op)
        o = op.options
        if len(shape) != 4:
            raise self.fail(op, f"input {shape}; expected 4-D NHWC")
        if shape[2] == 1 and o.get("filter_width") == 1 and o.get("stride_w") == 1:
            pool, stride = o["filter_height"], o["stride_h"]
        elif shape[1] == 1 and o.get("filter_height") == 1 and o.get("stride_h") == 1:
            pool, stride = o["filter_width"], o["stride_w"]
        else:
            raise self.fail(op, f"input {shape} with options {o} pools in 2-D; only MaxPool1D is supported")
        if o.get("padding") != "VALID" or self.activation(op) != "linear":
            raise self.fail(op, f"options {o}; supported: VALID padding, no fused activation")
        self.layers.append(MaxPool1DLayer(pool_size=int(pool), strides=int(stride), name=f"pool_op{op.index}"))

    def lstm(self, op: TfliteOperator) -> None:
        shape = self.take_input(op)
        o = op.options
        if o.get("time_major") or len(shape) != 3:
            raise self.fail(op, f"input {shape}, time_major={o.get('time_major')}; expected batch-major (n, T, C)")
        inputs = op.inputs + (-1,) * (24 - len(op.inputs))
        present = [k for k in _LSTM_PEEPHOLE + _LSTM_PROJECTION + _LSTM_LAYER_NORM if inputs[k] >= 0]
        if present or inputs[1] < 0:
            raise self.fail(op, f"uses inputs {present or [1]} (peephole / projection / layer norm / CIFG); "
                                "supported: the plain Keras LSTM (inputs 0-8, 12-15, 18-19)")
        activation = self.activation(op)
        if activation == "linear":
            raise self.fail(op, "fused_activation_function=NONE; supported: TANH, RELU")
        for k in _LSTM_STATES:
            self.check_zero_state(op, inputs[k])
        W = [self.gate(op, inputs[k], k) for k in _LSTM_W]  # each (u, C_in)
        U = [self.gate(op, inputs[k], k) for k in _LSTM_U]  # each (u, u)
        u = U[0].shape[0]
        b = [self.const(op, inputs[k], f"input {k}") for k in _LSTM_B]
        bias = np.concatenate([np.zeros(u, np.float32) if g is None else g for g in b])  # (4u,)
        kernel = np.concatenate([g.T for g in W], axis=1)     # (C_in, 4u): [W_i W_f W_c W_o], Keras's layout
        recurrent = np.concatenate([g.T for g in U], axis=1)  # (u, 4u):    [U_i U_f U_c U_o]
        clip = float(o.get("cell_clip", 0.0))
        self.layers.append(LSTMLayer(kernel=np.ascontiguousarray(kernel), recurrent_kernel=np.ascontiguousarray(recurrent),
                                     bias=bias, return_sequences=True, activation=activation,
                                     cell_clip=clip if clip > 0 else None, name=f"lstm_op{op.index}"))

    def gate(self, op: TfliteOperator, index: int, k: int) -> Array:
        value = self.const(op, index, f"input {k}")
        if value is None or value.ndim != 2:
            raise self.fail(op, f"input {k} (a gate weight matrix) is absent or not 2-D")
        return value

    def check_zero_state(self, op: TfliteOperator, index: int) -> None:
        """An LSTM state input must start at zero: a variable (reset to zero) or an all-zero constant."""
        if index < 0:
            raise self.fail(op, "an LSTM state input is absent")
        if self.m.tensors[index].is_variable:
            return
        value = self.consts.get(index, self.m.tensor_array(index))
        if value is None or np.any(value != 0):
            raise self.fail(op, f"state tensor {index} is neither a variable nor a zero constant")

    def strided_slice(self, op: TfliteOperator) -> None:
        shape = self.take_input(op)
        o = op.options
        begin, end, strides = (self.m.tensor_array(k) if k >= 0 else None for k in op.inputs[1:4])  # int32 constants
        last = self.layers[-1] if self.layers else None
        ok = (isinstance(last, LSTMLayer) and last.return_sequences and len(shape) == 3 and begin is not None
              and strides is not None and end is not None and o.get("shrink_axis_mask") == 2
              and o.get("ellipsis_mask") == 0 and o.get("new_axis_mask") == 0 and np.all(strides == 1)
              and int(begin[1]) in (-1, shape[1] - 1)
              and all((o.get("begin_mask", 0) >> a) & 1 or int(begin[a]) == 0 for a in (0, 2))
              and all((o.get("end_mask", 0) >> a) & 1 or int(end[a]) >= shape[a] for a in (0, 2)))
        if not ok or last is None:
            raise self.fail(op, f"begin={begin}, end={end}, strides={strides}, options {o}; supported: taking the last "
                                "time step [:, -1, :] of an LSTM's output sequence")
        self.layers[-1] = LSTMLayer(**{**last.config(), **last.arrays(), "return_sequences": False}, name=last.name)

    def fully_connected(self, op: TfliteOperator) -> None:
        shape = self.take_input(op)
        o = op.options
        weights = self.const(op, op.inputs[1], "weights")
        bias = self.const(op, op.inputs[2] if len(op.inputs) > 2 else -1, "bias")
        if weights is None or weights.ndim != 2 or len(shape) != 2 or o.get("weights_format", 0) != 0:
            raise self.fail(op, f"input {shape}, weights {None if weights is None else weights.shape}, options {o}; "
                                "supported: (n, in) input and DEFAULT-format (out, in) weights")
        if bias is None:
            bias = np.zeros(weights.shape[0], np.float32)
        self.layers.append(DenseLayer(kernel=np.ascontiguousarray(weights.T), bias=bias, activation=self.activation(op),
                                      name=f"dense_op{op.index}"))

    def softmax(self, op: TfliteOperator) -> None:
        self.take_input(op)
        last = self.layers[-1] if self.layers else None
        if not isinstance(last, DenseLayer) or last.activation != "linear" or op.options.get("beta") != 1.0:
            raise self.fail(op, f"beta={op.options.get('beta')} after {type(last).__name__}; supported: "
                                "softmax (beta 1) directly after a FULLY_CONNECTED without activation")
        self.layers[-1] = DenseLayer(kernel=last.kernel, bias=last.bias, activation="softmax", name=last.name)


_HANDLERS = {"DEQUANTIZE": _Builder.dequantize, "RESHAPE": _Builder.reshape, "CONV_2D": _Builder.conv_2d,
             "MAX_POOL_2D": _Builder.max_pool_2d, "UNIDIRECTIONAL_SEQUENCE_LSTM": _Builder.lstm,
             "STRIDED_SLICE": _Builder.strided_slice, "FULLY_CONNECTED": _Builder.fully_connected,
             "SOFTMAX": _Builder.softmax}


def reference_from_tflite(model_bytes: bytes, *, where: str = "model") -> ReferenceModel:
    """Read a float32 / float16 / dynamic-range ``.tflite`` classifier or forecaster into a reference model.

    Args:
        model_bytes: the whole ``.tflite`` file.
        where: how to name the model in errors (e.g. its path).

    Returns:
        A :class:`ReferenceModel` whose ``predict_proba((n, T, C)) -> (n, k)`` computes what LiteRT
        computes (float32: to ~1e-6; float16: the same float16-rounded weights; dynamic: the
        dequantised int8 weights, while LiteRT also quantises the activations — approximate).

    Raises:
        ModelError: not a TFLite model, a full-integer model, or an op / option it does not implement
            (the message names the op index and op, and what is supported).
    """
    model = read_tflite(model_bytes, where=where)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"{where}: {len(model.inputs)} inputs and {len(model.outputs)} outputs; expected one of each")
    t_in, t_out = model.tensors[model.inputs[0]], model.tensors[model.outputs[0]]
    if t_in.dtype != "float32" or t_out.dtype != "float32":
        raise ModelError(f"{where}: input {t_in.dtype}, output {t_out.dtype}: a full-integer (int8) model; the NumPy "
                         f"reference reads float models only ({', '.join(SUPPORTED_QUANTISATIONS)} exports)")
    if len(t_in.shape) != 3:
        raise ModelError(f"{where}: input shape {t_in.shape}; expected (1, T, C)")
    b = _Builder(model, where)
    b.current = model.inputs[0]
    for op in model.operators:  # every op first, so an unsupported one is named before any shape complaint
        if op.opcode not in _HANDLERS:
            hint = ("; a SimpleRNN converts to a WHILE loop over a second subgraph, which this reader does not follow "
                    "(evaluate such a run from Keras instead: `har-edge evaluate RUN --backend numpy`)") if op.opcode == "WHILE" else ""
            raise b.fail(op, f"not supported by the NumPy reference; supported ops: {', '.join(SUPPORTED_OPS)}{hint}")
    for op in model.operators:
        _HANDLERS[op.opcode](b, op)
    if b.current != model.outputs[0]:
        raise ModelError(f"{where}: the operator chain ends at tensor {b.current}, not the model output {model.outputs[0]}")
    if not b.layers or not isinstance(b.layers[-1], DenseLayer) or b.layers[-1].activation not in ("softmax", "linear"):
        raise ModelError(f"{where}: the model does not end in FULLY_CONNECTED [+ SOFTMAX] (a classifier or linear "
                         "forecast head)")
    T, C = t_in.shape[1], t_in.shape[2]
    return ReferenceModel(layers=tuple(b.layers), input_shape=(int(T), int(C)), name=f"tflite:{where}")

