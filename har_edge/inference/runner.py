"""Open a bundle's model for inference: a TFLite interpreter, or the NumPy reference engine (``backend="numpy"``).

Both sit behind the same :class:`Runner` interface, so :class:`~har_edge.inference.classifier.Classifier`
(and every other task's wrapper) never asks which one it has: ``predict((n, T, C) float) -> (n, k) float32``,
each input from zero recurrent state.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BundleError, ModelError
from har_edge.inference.bundle import Bundle, load_bundle
from har_edge.inference.interpreter import TfliteRunner
from har_edge.inference.reference import ReferenceModel
from har_edge.inference.reference_tflite import SUPPORTED_QUANTISATIONS, reference_from_tflite

__all__ = ["Runner", "NumpyRunner", "BundleModel", "open_runner", "REFERENCE_WEIGHTS_NAME"]

REFERENCE_WEIGHTS_NAME = "reference_weights.npz"
"""Weights file that bundles exported before the NumPy engine read ``.tflite`` weights carry; still read."""


class Runner(Protocol):
    """What task wrappers need of a model: shapes, quantisation and float-in / float-out prediction."""

    backend: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_dtype: np.dtype[Any]
    output_dtype: np.dtype[Any]

    def run(self, x: NDArray[Any], *, reset: bool = True) -> NDArray[Any]: ...
    def reset_state(self) -> None: ...
    def run_batch(self, X: NDArray[Any], *, reset: NDArray[np.bool_] | None = None) -> NDArray[Any]: ...
    def quantise_input(self, x: NDArray[np.floating]) -> NDArray[Any]: ...
    def dequantise_output(self, y: NDArray[Any]) -> NDArray[np.float32]: ...
    def predict(self, X: NDArray[np.floating]) -> NDArray[np.float32]: ...
    def close(self) -> None: ...


class NumpyRunner:
    """The NumPy reference engine behind the :class:`Runner` interface (float in and out, batched)."""

    backend = "numpy"
    input_dtype = np.dtype(np.float32)
    output_dtype = np.dtype(np.float32)
    input_quant = (0.0, 0)
    output_quant = (0.0, 0)

    def __init__(self, model: ReferenceModel, *, input_shape: tuple[int, ...]) -> None:
        self._model = model
        self.input_shape = input_shape
        self.output_shape: tuple[int, ...] = (1, model.n_outputs)

    def run(self, x: NDArray[Any], *, reset: bool = True) -> NDArray[np.float32]:
        if not reset:
            raise BundleError("the numpy backend runs every window from zero state; a streaming model needs an interpreter")
        return self.predict(x)

    def reset_state(self) -> None:
        pass  # no state between calls

    def run_batch(self, X: NDArray[Any], *, reset: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
        if reset is not None and not np.all(reset):
            raise BundleError("the numpy backend runs every window from zero state; a streaming model needs an interpreter")
        return self.predict(X)

    def quantise_input(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        return np.asarray(x, dtype=np.float32)

    def dequantise_output(self, y: NDArray[Any]) -> NDArray[np.float32]:
        return np.asarray(y, dtype=np.float32)

    def predict(self, X: NDArray[np.floating]) -> NDArray[np.float32]:
        return np.asarray(self._model.predict_proba(np.asarray(X, dtype=np.float32)), dtype=np.float32)

    def close(self) -> None:
        pass


def _numpy_runner(bundle: Bundle) -> NumpyRunner:
    """``reference_weights.npz`` beside the model if present (older bundles), else the ``.tflite``'s own weights."""
    path = Path(bundle.directory) / REFERENCE_WEIGHTS_NAME
    if path.is_file():
        model = ReferenceModel.load_npz(path)
    else:
        try:
            model = reference_from_tflite(bundle.model_bytes, where=str(bundle.model_path))
        except ModelError as exc:
            raise BundleError(
                f"the numpy backend cannot read the weights of {bundle.model_path} ({exc}); it reads "
                f"{', '.join(SUPPORTED_QUANTISATIONS)} exports: use an interpreter backend for this one"
            ) from exc
    expected = tuple(int(d) for d in bundle.manifest["input"]["shape"])
    T, C = model.input_shape
    if (T not in (None, expected[1])) or C != expected[2]:
        raise BundleError(f"{bundle.model_path}: numpy model input {model.input_shape} disagrees with the manifest {expected[1:]}")
    runner = NumpyRunner(model, input_shape=expected)
    try:  # one dry run: layer shapes that do not chain (a corrupted file) fail here, not in the device loop
        with np.errstate(all="ignore"):
            out = runner.predict(np.zeros(expected, dtype=np.float32))
    except (ValueError, IndexError, TypeError, FloatingPointError, ModelError) as exc:
        raise BundleError(f"{bundle.model_path}: the numpy backend cannot run this model ({type(exc).__name__}: {exc})") from None
    if out.shape != (1, model.n_outputs):
        raise BundleError(f"{bundle.model_path}: the numpy model gives output {out.shape}, expected {(1, model.n_outputs)}")
    return runner


def open_runner(bundle: Bundle, *, backend: str | None = None, num_threads: int = 1) -> Runner:
    """The bundle's model in ``backend`` (None/"auto": the first installed interpreter; "numpy": the reference engine).

    Raises:
        BundleError: the model does not load, or its tensors disagree with the manifest.
        BackendNotAvailable: the backend is not installed.
    """
    runner: Runner
    if backend == "numpy":
        if bundle.carries_state:
            raise BundleError(f"{bundle.model_path}: a streaming model (recurrent state carried between windows); the numpy "
                              "backend runs every window from zero state: use an interpreter backend (litert, tflite-runtime)")
        runner = _numpy_runner(bundle)
    else:
        runner = TfliteRunner(bundle.model_bytes, backend=None if backend == "auto" else backend,
                              num_threads=num_threads, where=str(bundle.model_path))
    for which, shape in (("input", runner.input_shape), ("output", runner.output_shape)):
        declared = tuple(int(d) for d in bundle.manifest[which]["shape"])
        if shape != declared:
            runner.close()
            raise BundleError(f"{bundle.model_path}: model {which} shape {shape} disagrees with the manifest {declared}")
    return runner


_M = TypeVar("_M", bound="BundleModel")


class BundleModel:
    """A task's bundle with its model opened by :func:`open_runner`: the one lifecycle of every task wrapper.

    Subclasses (:class:`~har_edge.inference.classifier.Classifier`, :class:`~har_edge.inference.forecaster.Forecaster`)
    set ``TASK`` and read their manifest keys in ``__init__`` after calling this one. A context manager;
    :meth:`close` frees the interpreter.
    """

    TASK = ""

    def __init__(self, bundle: Bundle, *, backend: str | None = None, num_threads: int = 1) -> None:
        bundle.require_task(self.TASK)
        self.bundle = bundle
        self.normalisation = bundle.normalisation
        self._runner: Runner | None = open_runner(bundle, backend=backend, num_threads=num_threads)
        self.backend = self._runner.backend

    @classmethod
    def from_bundle(cls: type[_M], path: str | Path, *, backend: str | None = None, num_threads: int = 1) -> _M:
        """Load a bundle (directory or ``model.tflite``, which carries its manifest) and an interpreter."""
        return cls(load_bundle(path), backend=backend, num_threads=num_threads)

    def __enter__(self: _M) -> _M:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            raise BundleError(f"{type(self).__name__.lower()} is closed")
        return self._runner
