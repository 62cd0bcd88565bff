"""Keras → TFLite conversion with a fixed batch of 1, so the LSTM becomes the fused op.

Keras 3 LSTMs do not fuse (``../shared/notes/stack.md``): the run's tf_keras model is rebuilt with
``batch_size=1`` (its "export twin"), the weights copied, and the twin converted. A converted
model with any Flex (select-TF) op, or an LSTM model without ``UNIDIRECTIONAL_SEQUENCE_LSTM``, is
rejected with :class:`ExportError`.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

import numpy as np

from har_edge.config import RunConfig
from har_edge.data.sampling import stratified_indices
from har_edge.errors import ExportError
from har_edge.models.builders import build_network
from har_edge.models.keras_backend import import_tensorflow
from har_edge.native_output import captured_native_stderr

__all__ = ["QUANT_MODES", "build_export_twin", "convert_to_tflite", "check_deployable_ops", "representative_windows"]

log = logging.getLogger(__name__)

QUANT_MODES = ("float32", "float16", "dynamic", "int8")
FUSED_LSTM_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"


def build_export_twin(model: Any, cfg: RunConfig | Any, *, window_samples: int, n_channels: int, n_classes: int,
                      head: str = "softmax") -> Any:
    """The same architecture with a fixed batch of 1 and the trained weights copied in.

    ``cfg`` is any run config with a ``model`` table (classifier or forecaster); ``n_classes`` is the
    number of outputs (classes, or forecast steps with ``head="linear"``).
    """
    twin = build_network(cfg.model, window_samples=window_samples, n_channels=n_channels, n_outputs=n_classes, head=head,
                         batch_size=1)
    twin.set_weights(model.get_weights())
    return twin


def representative_windows(X: np.ndarray, y: np.ndarray, *, count: int = 300, seed: int = 0) -> np.ndarray:
    """A class-stratified sample of ``count`` normalised training windows ``(count, T, C)`` for int8 calibration."""
    return X[stratified_indices(y, count, seed=seed)].astype(np.float32)


def convert_to_tflite(twin: Any, mode: str, *, representative: np.ndarray | None = None) -> bytes:
    """Convert a fixed-batch tf_keras model.

    Args:
        mode: ``float32`` | ``float16`` (float16 weights) | ``dynamic`` (int8 weights, float
            activations) | ``int8`` (full integer, int8 input and output).
        representative: ``(n, T, C)`` normalised windows, required for ``int8``.
    """
    if mode not in QUANT_MODES:
        raise ExportError(f"unknown quantisation mode {mode!r}; expected one of {', '.join(QUANT_MODES)} (or 'all')")
    tf = import_tensorflow()
    conv = tf.lite.TFLiteConverter.from_keras_model(twin)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if representative is None or len(representative) == 0:
            raise ExportError("int8 quantisation needs representative windows for calibration")
        rep = representative.astype(np.float32)

        def gen() -> Iterable[list[np.ndarray]]:
            for w in rep:
                yield [w[None, ...]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    # the converter prints its calibration summary and Python warnings to stderr: keep them for -vv / the error
    with captured_native_stderr() as captured:
        try:
            data = bytes(conv.convert())
        except Exception as exc:  # noqa: BLE001 - the converter raises many types
            tail = " | ".join(captured().strip().splitlines()[-3:])
            raise ExportError(f"TFLite conversion ({mode}) failed: {type(exc).__name__}: {str(exc)[:500]}"
                              + (f" (converter output: {tail})" if tail else "")) from exc
        noise = captured().strip()
    if noise:
        log.debug("TFLite converter output (%s):\n%s", mode, noise)
    return data


def check_deployable_ops(ops: list[str], *, cell: str) -> None:
    """Reject Flex / select-TF and custom ops, WHILE loops, and LSTM models that did not fuse.

    ``ops``: op names as :func:`har_edge.inference.flatbuffer.model_ops` gives them (custom ops as ``CUSTOM:<name>``).
    """
    flex = [o for o in ops if o.startswith(("CUSTOM", "Flex")) or o == "DELEGATE"]
    if flex:
        raise ExportError(f"converted model uses Flex/custom op(s) {flex}, which LiteRT, tflite-runtime and TFLite Micro cannot run")
    if cell == "lstm" and FUSED_LSTM_OP not in ops:
        raise ExportError(f"converted LSTM model lacks the fused {FUSED_LSTM_OP} op (ops: {ops}); was it built with tf_keras and batch_size=1?")
    if "WHILE" in ops:
        raise ExportError(f"converted model contains a WHILE loop (ops: {ops}); the recurrent layer did not convert to a fused op")
