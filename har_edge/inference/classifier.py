"""Classify one window with a classification bundle: normalise, quantise, invoke from zero state, dequantise.

>>> with Classifier.from_bundle("bundle/") as clf:          # doctest: +SKIP
...     pred = clf.classify(window)                          # window: (T, C) preprocessed features
...     pred.label, pred.confidence, pred.latency_ms
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError
from har_edge.inference.bundle import CLASSIFICATION, Bundle
from har_edge.inference.runner import BundleModel

__all__ = ["Prediction", "Classifier"]


@dataclass(frozen=True)
class Prediction:
    """One classified window: ``probabilities`` is ``(k,)`` in label order."""

    label: str
    index: int
    confidence: float
    probabilities: NDArray[np.float32]
    latency_ms: float


class Classifier(BundleModel):
    """A classification bundle's model ready to classify windows. A context manager; :meth:`close` frees it.

    Raises:
        BundleError: the bundle is not a classification bundle, or its model disagrees with its manifest.
    """

    TASK = CLASSIFICATION

    def __init__(self, bundle: Bundle, *, backend: str | None = None, num_threads: int = 1) -> None:
        super().__init__(bundle, backend=backend, num_threads=num_threads)
        self.labels = bundle.labels
        self.window_samples = bundle.window_samples
        self.n_channels = len(bundle.channel_names)
        self.carries_state = bundle.carries_state

    def quantise_input(self, x_norm: NDArray[np.float32]) -> NDArray[Any]:
        """Normalised float input → the model's input dtype (int8 via scale / zero point)."""
        return self.runner.quantise_input(x_norm)

    def raw_output(self, x_norm: NDArray[np.float32]) -> NDArray[Any]:
        """The model's raw output ``(k,)`` (int8 for full-int8 models) for one normalised window ``(T, C)``."""
        return self.runner.run(self.runner.quantise_input(x_norm[None, ...]))[0]

    def probabilities_normalised(self, x_norm: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probabilities ``(k,)`` for one normalised window ``(T, C)``: from zero state, or for a streaming
        model (:attr:`carries_state`) from the state the previous window left."""
        if not self.carries_state:
            return self.runner.predict(x_norm[None, ...])[0]
        r = self.runner
        return r.dequantise_output(r.run(r.quantise_input(x_norm[None, ...]), reset=False))[0]

    def reset_state(self) -> None:
        """A streaming model's stream starts afresh: zero the recurrent state (nothing to do for other models)."""
        if self.carries_state:
            self.runner.reset_state()

    def predict_normalised(self, X_norm: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probabilities ``(n, k)`` for normalised windows ``(n, T, C)``, each from zero state."""
        return self.runner.predict(X_norm)

    def classify(self, window: NDArray[np.floating]) -> Prediction:
        """Classify one preprocessed (not yet normalised) window ``(T, C)`` in the manifest's channel order.

        Raises:
            DataError: wrong shape, or NaN / inf in the window.
        """
        if window.shape != (self.window_samples, self.n_channels):
            raise DataError(f"window shape {window.shape}; the bundle expects ({self.window_samples}, {self.n_channels})")
        if not np.isfinite(window).all():
            raise DataError("window contains NaN or inf")
        t0 = time.perf_counter()
        probs = self.probabilities_normalised(self.normalisation.transform(window))
        latency_ms = (time.perf_counter() - t0) * 1e3
        i = int(np.argmax(probs))
        return Prediction(self.labels[i], i, float(probs[i]), probs, latency_ms)
