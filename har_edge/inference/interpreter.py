"""TFLite interpreters behind one runner: LiteRT, tflite-runtime, tf.lite and the TFLite Micro host interpreter.

:func:`load_backend` is the one place an interpreter package is imported: ``backend=None`` tries
``ai_edge_litert`` → ``tflite_runtime`` → ``tensorflow.lite`` in that order; ``"tflm"`` is the TFLite
Micro Python interpreter (``tflite-micro``, used to verify MCU exports on the host).

:class:`TfliteRunner` is the one reset → set → invoke → read loop. Every invoke starts from zero
recurrent state: the fused LSTM op keeps its hidden and cell state between invokes in every
interpreter, so :meth:`TfliteRunner.run` resets (``reset_all_variables()``, or TFLM's ``reset()``)
before each one — except for a streaming model (a bundle with carried recurrent state), whose caller
passes ``reset=False`` and resets with :meth:`TfliteRunner.reset_state` only when its stream starts. It also knows its input/output quantisation, so :meth:`TfliteRunner.predict` takes
and returns float32 for any export mode.

>>> with TfliteRunner(open("model.tflite", "rb").read()) as r:      # doctest: +SKIP
...     probs = r.predict(windows)                                   # (n, T, C) float → (n, k) float32
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BackendNotAvailable, BundleError
from har_edge.native_output import captured_native_stderr

__all__ = ["BACKENDS", "INTERPRETER_BACKENDS", "Backend", "load_backend", "TfliteRunner"]

log = logging.getLogger(__name__)

# name -> (module holding ``Interpreter``, how to install it)
BACKENDS: dict[str, tuple[str, str]] = {
    "litert": ("ai_edge_litert.interpreter", 'pip install "har-edge[device]" (ai-edge-litert)'),
    "tflite-runtime": ("tflite_runtime.interpreter", "pip install tflite-runtime (Python <= 3.11, numpy < 2)"),
    "tensorflow": ("tensorflow.lite", 'pip install "har-edge[train]" (tensorflow)'),
    "tflm": ("tflite_micro.python.tflite_micro.runtime", 'the mcu extra: pip install ".[mcu]" (tflite-micro; wheels for Linux x86-64 only)'),
}
INTERPRETER_BACKENDS = ("litert", "tflite-runtime", "tensorflow")
"""The order ``backend=None`` tries (TFLM is only used when asked for by name)."""


@dataclass(frozen=True)
class Backend:
    """An importable interpreter package: ``interpreter_class`` and, where it has one, ``op_resolver_type``."""

    name: str
    interpreter_class: Callable[..., Any]
    op_resolver_type: Any = None


def _import(name: str) -> Backend:
    module, _ = BACKENDS[name]
    if name == "tensorflow":
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with captured_native_stderr() as captured:  # TensorFlow's start-up lines: once, at DEBUG
            import tensorflow as tf  # tensorflow.lite is a lazy alias, not an importable module

            noise = captured().strip()
        if noise:
            log.debug("TensorFlow start-up output: %s", noise)

        return Backend(name, tf.lite.Interpreter, tf.lite.experimental.OpResolverType)
    mod = importlib.import_module(module)
    return Backend(name, mod.Interpreter, getattr(mod, "OpResolverType", None))


def load_backend(backend: str | None = None, *, order: tuple[str, ...] = INTERPRETER_BACKENDS) -> Backend:
    """Import an interpreter package; ``backend`` None or ``"auto"`` tries ``order`` in turn.

    Raises:
        BackendNotAvailable: unknown name, or nothing importable (the message names what to install).
    """
    names = list(order) if backend in (None, "auto") else [backend]
    errors = []
    for name in names:
        if name not in BACKENDS:
            raise BackendNotAvailable(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}, auto or numpy")
        try:
            return _import(name)
        except (ImportError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
            if backend not in (None, "auto"):
                raise BackendNotAvailable(f"backend {name!r} is not installed: {BACKENDS[name][1]}") from exc
    raise BackendNotAvailable(
        'no TFLite interpreter installed; install one: pip install "har-edge[device]" (LiteRT), or use the NumPy '
        "engine, which needs none (--backend numpy; e.g. on 32-bit Raspberry Pi OS). Tried: " + "; ".join(errors)
    )


class TfliteRunner:
    """One ``.tflite`` model in one interpreter, run one input at a time from zero state.

    Args:
        model_bytes: the whole ``.tflite`` file.
        backend: a name from :data:`BACKENDS`, or None for the first installed of :data:`INTERPRETER_BACKENDS`.
        reference_kernels: LiteRT / tf.lite only: the reference kernels (``BUILTIN_REF``, no delegate)
            instead of the default optimised ones.
        preserve_all_tensors: keep every intermediate tensor readable with :meth:`tensor`.
        arena_bytes: TFLM only: the tensor arena size.
        where: how to name the model in errors.

    Attributes:
        input_shape, output_shape: e.g. ``(1, T, C)`` and ``(1, k)``.
        input_dtype, output_dtype: numpy dtypes (int8 for full-int8 models).
        input_quant, output_quant: ``(scale, zero_point)``; ``(0.0, 0)`` when not quantised.
    """

    def __init__(self, model_bytes: bytes, *, backend: str | None = None, num_threads: int = 1,
                 reference_kernels: bool = False, preserve_all_tensors: bool = False,
                 arena_bytes: int | None = None, where: str = "model") -> None:
        impl = load_backend(backend)
        self.backend = impl.name
        try:
            self._interp = self._open(impl, model_bytes, num_threads, reference_kernels, preserve_all_tensors, arena_bytes)
        except BackendNotAvailable:
            raise
        except Exception as exc:  # noqa: BLE001 - interpreters raise RuntimeError/ValueError
            raise BundleError(f"{where}: the {self.backend} interpreter cannot load this model: {exc}") from exc
        self._tflm = impl.name == "tflm"
        inp, out = self._details("input"), self._details("output")
        self._in_index, self._out_index = inp["index"], out["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.input_dtype = np.dtype(inp["dtype"])
        self.output_shape = tuple(int(v) for v in out["shape"])
        self.output_dtype = np.dtype(out["dtype"])
        self.input_quant = inp["quant"]
        self.output_quant = out["quant"]
        self._reset = self._interp.reset if self._tflm else getattr(self._interp, "reset_all_variables", None)
        if self._reset is None:
            log.warning("%s interpreter has no reset_all_variables(); LSTM state may leak between windows", self.backend)

    @staticmethod
    def _open(impl: Backend, model_bytes: bytes, num_threads: int, reference_kernels: bool,
              preserve_all_tensors: bool, arena_bytes: int | None) -> Any:
        if impl.name == "tflm":
            import tflite_micro.python.tflite_micro.runtime as tflm  # type: ignore[import-untyped]

            config = tflm.InterpreterConfig
            micro: Any = impl.interpreter_class
            return micro.from_bytes(
                model_bytes, arena_size=arena_bytes,
                intrepreter_config=config.kPreserveAllTensors if preserve_all_tensors else config.kAllocationRecording)  # sic
        kwargs: dict[str, Any] = {"model_content": model_bytes, "num_threads": num_threads}
        if preserve_all_tensors:
            kwargs["experimental_preserve_all_tensors"] = True
        if reference_kernels:
            if impl.op_resolver_type is None:
                raise BackendNotAvailable(f"the {impl.name} interpreter has no reference kernels; use litert or tensorflow")
            kwargs["experimental_op_resolver_type"] = impl.op_resolver_type.BUILTIN_REF
        # LiteRT / tf.lite print "Created TensorFlow Lite XNNPACK delegate" (and tf.lite a deprecation
        # warning) to stderr from C++: kept for -vv, or for the error message
        with captured_native_stderr() as captured:
            try:
                try:
                    interp = impl.interpreter_class(**kwargs)
                except TypeError:  # an interpreter without num_threads
                    kwargs.pop("num_threads")
                    interp = impl.interpreter_class(**kwargs)
                interp.allocate_tensors()
            except Exception as exc:
                tail = " | ".join(captured().strip().splitlines()[-2:])
                if tail:
                    exc.args = (f"{exc} ({impl.name} said: {tail})",)
                raise
            noise = captured().strip()
        if noise:
            log.debug("%s interpreter output: %s", impl.name, noise)
        return interp

    def _details(self, which: str) -> dict[str, Any]:
        if self._tflm:
            d = (self._interp.get_input_details if which == "input" else self._interp.get_output_details)(0)
            q = d.get("quantization_parameters") or {}
            scales, zeros = list(q.get("scales", [])), list(q.get("zero_points", []))
            quant = (float(scales[0]), int(zeros[0])) if scales else (0.0, 0)
            return {"index": 0, "shape": d["shape"], "dtype": d["dtype"], "quant": quant}
        d = (self._interp.get_input_details if which == "input" else self._interp.get_output_details)()[0]
        scale, zero = d.get("quantization", (0.0, 0))
        return {"index": d["index"], "shape": d["shape"], "dtype": d["dtype"], "quant": (float(scale), int(zero))}

    @property
    def interpreter(self) -> Any:
        """The underlying interpreter object, for backend-specific calls (e.g. TFLM's ``print_allocations``)."""
        return self._interp

    # -- one input, raw ----------------------------------------------------------------------------
    def run(self, x: NDArray[Any], *, reset: bool = True) -> NDArray[Any]:
        """Reset the recurrent state, set ``x`` (``input_shape``, ``input_dtype``), invoke; the raw output copy.

        ``reset=False`` (streaming models only) lets the state of the last invoke run on instead.
        """
        if self._interp is None:
            raise BundleError("the runner is closed")
        if reset and self._reset is not None:
            self._reset()
        x = np.ascontiguousarray(x, dtype=self.input_dtype)
        if self._tflm:
            self._interp.set_input(x, 0)
            self._interp.invoke()
            return np.array(self._interp.get_output(0), copy=True)
        self._interp.set_tensor(self._in_index, x)
        self._interp.invoke()
        return np.array(self._interp.get_tensor(self._out_index), copy=True)

    def reset_state(self) -> None:
        """Zero the recurrent state now (a streaming model's stream starts afresh)."""
        if self._interp is None:
            raise BundleError("the runner is closed")
        if self._reset is None:
            raise BundleError(f"the {self.backend} interpreter cannot reset the LSTM state (no reset_all_variables())")
        self._reset()

    def tensor(self, index: int) -> NDArray[Any]:
        """A copy of tensor ``index`` (model/flatbuffer numbering) after the last :meth:`run`."""
        if self._tflm:
            return np.array(self._interp.GetTensor(index, 0)["tensor_data"], copy=True)
        return np.array(self._interp.get_tensor(index), copy=True)

    def tensor_details(self) -> dict[int, dict[str, Any]]:
        """``{index: {"name", "shape", "dtype", "scale"}}`` of every tensor (LiteRT / tf.lite / tflite-runtime)."""
        out = {}
        for d in self._interp.get_tensor_details():
            out[int(d["index"])] = {"name": str(d["name"]), "shape": [int(s) for s in d["shape"]],
                                    "dtype": np.dtype(d["dtype"]).name, "scale": float(d["quantization"][0])}
        return out

    def run_batch(self, X: NDArray[Any], *, reset: NDArray[np.bool_] | None = None) -> NDArray[Any]:
        """Raw outputs ``(n, *output_shape[1:])`` for inputs ``(n, *input_shape[1:])``, one invoke each.

        ``reset`` ``(n,)``: whether each input starts from zero state (default: all do). A streaming model's
        consecutive windows pass ``True`` where a stream starts and ``False`` elsewhere.
        """
        if len(X) == 0:
            return np.zeros((0, *self.output_shape[1:]), dtype=self.output_dtype)
        if reset is None:
            return np.stack([self.run(x[None])[0] for x in X])
        return np.stack([self.run(x[None], reset=bool(r))[0] for x, r in zip(X, reset)])

    # -- float in, float out ------------------------------------------------------------------------
    def quantise_input(self, x: NDArray[np.floating]) -> NDArray[Any]:
        """Float input → the model's input dtype (int8 via scale / zero point, rounded and clipped)."""
        if not np.issubdtype(self.input_dtype, np.integer):
            return np.asarray(x).astype(self.input_dtype, copy=False)
        scale, zero = self.input_quant
        info = np.iinfo(self.input_dtype)
        return np.clip(np.round(np.asarray(x) / scale + zero), info.min, info.max).astype(self.input_dtype)

    def dequantise_output(self, y: NDArray[Any]) -> NDArray[np.float32]:
        """Raw output → float32 (``(q - zero_point) * scale`` for integer outputs)."""
        if not np.issubdtype(self.output_dtype, np.integer):
            return np.asarray(y).astype(np.float32, copy=False)
        scale, zero = self.output_quant
        return ((np.asarray(y).astype(np.float32) - zero) * scale).astype(np.float32)

    def predict(self, X: NDArray[np.floating]) -> NDArray[np.float32]:
        """Float outputs ``(n, *output_shape[1:])`` for float inputs ``(n, *input_shape[1:])``, zero state each."""
        return self.dequantise_output(self.run_batch(self.quantise_input(X)))

    def close(self) -> None:
        self._interp = None

    def __enter__(self) -> TfliteRunner:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
