"""Classify one window with a bundle: normalise, quantise, invoke from zero state, dequantise.

>>> with Classifier.from_bundle("bundle/") as clf:          # doctest: +SKIP
...     pred = clf.classify(window)                          # window: (T, C) preprocessed features
...     pred.label, pred.confidence, pred.latency_ms
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import BundleError, DataError
from har_edge.export.bundle import Bundle, load_bundle
from har_edge.runtime.interpreter import TfliteRunner

__all__ = ["Prediction", "Classifier", "REFERENCE_WEIGHTS_NAME"]

REFERENCE_WEIGHTS_NAME = "reference_weights.npz"


@dataclass(frozen=True)
class Prediction:
    """One classified window: ``probabilities`` is ``(k,)`` in label order."""

    label: str
    index: int
    confidence: float
    probabilities: NDArray[np.float32]
    latency_ms: float


class _NumpyRunner:
    """The NumPy reference engine (``--backend numpy``) behind the same ``run`` interface."""

    backend = "numpy"

    def __init__(self, bundle: Bundle) -> None:
        """Load ``reference_weights.npz`` beside the model if present, else read the weights from the ``.tflite``."""
        from har_edge.errors import ModelError
        from har_edge.models.reference import ReferenceModel
        from har_edge.models.reference_tflite import SUPPORTED_QUANTISATIONS, reference_from_tflite

        path = bundle.directory / REFERENCE_WEIGHTS_NAME
        if path.is_file():
            self._model = ReferenceModel.load_npz(path)
        else:
            try:
                self._model = reference_from_tflite(bundle.model_bytes, where=str(bundle.model_path))
            except ModelError as exc:
                raise BundleError(
                    f"{path.name} not found beside {bundle.model_path}, and the numpy backend cannot read the model's own "
                    f"weights ({exc}); it reads {', '.join(SUPPORTED_QUANTISATIONS)} exports, or a bundle with the "
                    f"{REFERENCE_WEIGHTS_NAME} that `har-edge export` writes"
                ) from exc
        expected = (bundle.window_samples, len(bundle.channel_names))
        T, C = self._model.input_shape
        if (T not in (None, expected[0])) or C != expected[1]:
            raise BundleError(f"{bundle.model_path}: numpy model input {self._model.input_shape} disagrees with the manifest {expected}")
        self.input_dtype = np.dtype(np.float32)
        self.output_dtype = np.dtype(np.float32)
        self.input_quant = (0.0, 0)
        self.output_quant = (0.0, 0)

    def run(self, x: NDArray) -> NDArray:
        return self._model.predict_proba(np.asarray(x, dtype=np.float32))

    def predict_batch(self, X: NDArray) -> NDArray:
        return self._model.predict_proba(np.asarray(X, dtype=np.float32))

    def close(self) -> None:
        pass


class Classifier:
    """A bundle's model ready to classify windows. A context manager; :meth:`close` frees it."""

    def __init__(self, bundle: Bundle, *, backend: str | None = None, num_threads: int = 1) -> None:
        self.bundle = bundle
        self.labels = bundle.labels
        self.normalisation = bundle.normalisation
        self.window_samples = bundle.window_samples
        self.n_channels = len(bundle.channel_names)
        self._runner: Any
        if backend == "numpy":
            self._runner = _NumpyRunner(bundle)
        else:
            self._runner = TfliteRunner(bundle.model_bytes, backend=backend, num_threads=num_threads, where=str(bundle.model_path))
            expected = (1, self.window_samples, self.n_channels)
            if self._runner.input_shape != expected:
                raise BundleError(
                    f"{bundle.model_path}: model input shape {self._runner.input_shape} disagrees with the manifest {expected}"
                )
            if self._runner.output_shape != (1, len(self.labels)):
                raise BundleError(f"{bundle.model_path}: model output {self._runner.output_shape} but {len(self.labels)} labels")
        self.backend = self._runner.backend
        self._in_scale, self._in_zero = (float(v) for v in self._runner.input_quant)
        self._out_scale, self._out_zero = (float(v) for v in self._runner.output_quant)
        self._int_in = np.issubdtype(self._runner.input_dtype, np.integer)
        self._int_out = np.issubdtype(self._runner.output_dtype, np.integer)

    @classmethod
    def from_bundle(cls, path: str | Path, *, backend: str | None = None, num_threads: int = 1) -> "Classifier":
        """Load a bundle (directory or ``model.tflite`` with its manifest) and an interpreter."""
        return cls(load_bundle(path), backend=backend, num_threads=num_threads)

    def __enter__(self) -> "Classifier":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.close()
            self._runner = None

    def quantise_input(self, x_norm: NDArray[np.float32]) -> NDArray:
        """Normalised float input → the model's input dtype (int8 via scale / zero point)."""
        if not self._int_in:
            return x_norm.astype(self._runner.input_dtype, copy=False)
        info = np.iinfo(self._runner.input_dtype)
        q = np.round(x_norm / self._in_scale + self._in_zero)
        return np.clip(q, info.min, info.max).astype(self._runner.input_dtype)

    def dequantise_output(self, y: NDArray) -> NDArray[np.float32]:
        if not self._int_out:
            return y.astype(np.float32, copy=False)
        return ((y.astype(np.float32) - self._out_zero) * self._out_scale).astype(np.float32)

    def raw_output(self, x_norm: NDArray[np.float32]) -> NDArray:
        """The model's raw output ``(k,)`` (int8 for full-int8 models) for one normalised window ``(T, C)``."""
        if self._runner is None:
            raise BundleError("classifier is closed")
        return self._runner.run(self.quantise_input(x_norm[None, ...]))[0]

    def probabilities_normalised(self, x_norm: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probabilities ``(k,)`` for one normalised window ``(T, C)``."""
        return self.dequantise_output(self.raw_output(x_norm))

    def predict_normalised(self, X_norm: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probabilities ``(n, k)`` for normalised windows ``(n, T, C)``, one invoke each (zero state)."""
        if isinstance(self._runner, _NumpyRunner):
            return self._runner.predict_batch(X_norm)
        return np.stack([self.probabilities_normalised(x) for x in X_norm]) if len(X_norm) else np.zeros((0, len(self.labels)), np.float32)

    def classify(self, window: NDArray[np.floating]) -> Prediction:
        """Classify one preprocessed (not yet normalised) window ``(T, C)`` in the manifest's channel order."""
        if window.shape != (self.window_samples, self.n_channels):
            raise DataError(f"window shape {window.shape}; the bundle expects ({self.window_samples}, {self.n_channels})")
        if not np.isfinite(window).all():
            raise DataError("window contains NaN or inf")
        t0 = time.perf_counter()
        probs = self.probabilities_normalised(self.normalisation.transform(window))
        latency_ms = (time.perf_counter() - t0) * 1e3
        i = int(np.argmax(probs))
        return Prediction(self.labels[i], i, float(probs[i]), probs, latency_ms)
