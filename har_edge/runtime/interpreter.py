"""TFLite interpreter backends, tried in order: ``ai_edge_litert`` → ``tflite_runtime`` → ``tensorflow.lite``.

Every invoke starts from zero recurrent state: the fused LSTM op keeps its hidden and cell state
between invokes in every interpreter, so :meth:`TfliteRunner.run` calls ``reset_all_variables()``
before each one.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BackendNotAvailable, BundleError

__all__ = ["BACKENDS", "load_interpreter_class", "TfliteRunner"]

log = logging.getLogger(__name__)

# name -> (module, attribute, extra that installs it)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "litert": ("ai_edge_litert.interpreter", "Interpreter", 'pip install "har-edge[device]" (ai-edge-litert)'),
    "tflite-runtime": ("tflite_runtime.interpreter", "Interpreter", "pip install tflite-runtime (Python <= 3.11, numpy < 2)"),
    "tensorflow": ("tensorflow.lite", "Interpreter", 'pip install "har-edge[train]" (tensorflow)'),
}


def load_interpreter_class(backend: str | None = None) -> tuple[str, Callable[..., Any]]:
    """Return ``(backend_name, Interpreter class)``; ``backend=None`` tries them in order.

    Raises:
        BackendNotAvailable: naming the package to install.
    """
    names = list(BACKENDS) if backend in (None, "auto") else [backend]
    errors = []
    for name in names:
        if name not in BACKENDS:
            raise BackendNotAvailable(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}, auto or numpy")
        module, attr, hint = BACKENDS[name]
        try:
            if name == "tensorflow":
                import os

                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
                import tensorflow as tf  # tensorflow.lite is a lazy alias, not an importable module

                return name, tf.lite.Interpreter
            cls = getattr(importlib.import_module(module), attr)
            return name, cls
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            if backend not in (None, "auto"):
                raise BackendNotAvailable(f"backend {name!r} is not installed: {hint}") from exc
    raise BackendNotAvailable(
        'no TFLite interpreter installed; install one: pip install "har-edge[device]" (LiteRT). Tried: ' + "; ".join(errors)
    )


class TfliteRunner:
    """One TFLite model in one interpreter, run one window at a time from zero state.

    ``run(x)`` takes the model input ``(1, T, C)`` in the model's input dtype and returns the raw
    output ``(1, k)`` (int8 for full-int8 models).
    """

    def __init__(self, model_bytes: bytes, *, backend: str | None = None, num_threads: int = 1, where: str = "model") -> None:
        self.backend, cls = load_interpreter_class(backend)
        try:
            try:
                self._interp = cls(model_content=model_bytes, num_threads=num_threads)
            except TypeError:
                self._interp = cls(model_content=model_bytes)
            self._interp.allocate_tensors()
        except BackendNotAvailable:
            raise
        except Exception as exc:  # noqa: BLE001 - interpreters raise RuntimeError/ValueError
            raise BundleError(f"{where}: the {self.backend} interpreter cannot load this model: {exc}") from exc
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in_index, self._out_index = inp["index"], out["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.input_dtype = np.dtype(inp["dtype"])
        self.output_shape = tuple(int(v) for v in out["shape"])
        self.output_dtype = np.dtype(out["dtype"])
        self.input_quant = tuple(inp.get("quantization", (0.0, 0)))
        self.output_quant = tuple(out.get("quantization", (0.0, 0)))
        self._reset = getattr(self._interp, "reset_all_variables", None)
        if self._reset is None:
            log.warning("%s interpreter has no reset_all_variables(); LSTM state may leak between windows", self.backend)

    def run(self, x: NDArray) -> NDArray:
        if self._reset is not None:
            self._reset()
        self._interp.set_tensor(self._in_index, x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out_index).copy()

    def ops(self) -> list[str]:
        try:
            return [str(d.get("op_name")) for d in self._interp._get_ops_details()]
        except Exception:  # noqa: BLE001 - private API, best effort
            return []

    def close(self) -> None:
        self._interp = None
