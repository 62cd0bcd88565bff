"""A hidden-Markov smoother of per-classification probabilities (online forward filter), and the smoother factory.

The shown activity is a state that rarely changes: between two classifications it stays with
probability ``1 - switch_probability`` and otherwise moves to any class alike. Each
classification's probabilities ``p_t (k,)`` are the evidence; the belief over classes is
``b_t ∝ p_t ** evidence_weight ⊙ (A^T b_{t-1})`` with ``A = (1 - s) I + s / k``, started uniform.
The activity is ``argmax b_t`` (its belief the confidence; below ``confidence_floor``: ``uncertain``).
A single stray window barely moves a confident belief, while a change the model is sure of
takes one or two classifications: less flicker for a small delay. Pure NumPy and a few
multiplications per classification, so the firmware repeats it (``har_preprocess.h``: ``HmmSmoother``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from har_edge.runtime.smoothing import UNCERTAIN, Smoother, SmoothingConfig

__all__ = ["ActivitySmoother", "HmmSmoother", "make_smoother"]

_FLOOR = 1e-6  # evidence floor: one window saying 0.0 never rules a class out for good


class ActivitySmoother(Protocol):
    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]: ...
    def reset(self) -> None: ...


class HmmSmoother:
    """Online HMM forward filter over raw probability vectors ``(k,)``; ``update`` returns ``(activity, confidence, belief (k,))``."""

    def __init__(self, labels: tuple[str, ...], config: SmoothingConfig) -> None:
        self.labels = labels
        self.config = config
        k = len(labels)
        s = config.switch_probability
        self._stay = 1.0 - s + s / k
        self._move = s / k
        self._belief: NDArray[np.float64] | None = None

    def reset(self) -> None:
        self._belief = None

    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]:
        p = np.maximum(np.asarray(probabilities, dtype=np.float64), _FLOOR) ** self.config.evidence_weight
        if self._belief is None:
            prior = np.full(len(self.labels), 1.0 / len(self.labels))
        else:  # (A^T b)_j = stay * b_j + move * (sum(b) - b_j) with sum(b) = 1
            prior = (self._stay - self._move) * self._belief + self._move
        b = prior * p
        b /= b.sum()
        self._belief = b
        i = int(np.argmax(b))
        conf = float(b[i])
        smoothed = b.astype(np.float32)
        if conf < self.config.confidence_floor:
            return UNCERTAIN, conf, smoothed
        return self.labels[i], conf, smoothed


class _ShowUncertain:
    """Shows :data:`UNCERTAIN` where the inner smoother picks one of ``uncertain_labels`` (e.g. a transition class)."""

    def __init__(self, inner: ActivitySmoother, uncertain_labels: frozenset[str]) -> None:
        self.inner = inner
        self.uncertain_labels = uncertain_labels

    def reset(self) -> None:
        self.inner.reset()

    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]:
        activity, conf, smoothed = self.inner.update(probabilities)
        return (UNCERTAIN if activity in self.uncertain_labels else activity), conf, smoothed


def make_smoother(labels: tuple[str, ...], config: SmoothingConfig, *, uncertain_labels: tuple[str, ...] = ()) -> ActivitySmoother:
    """The smoother ``config.method`` names: :class:`HmmSmoother` for ``hmm``, else :class:`~har_edge.runtime.smoothing.Smoother`;
    classes in ``uncertain_labels`` (the bundle's, e.g. a postural-transition class) are shown as :data:`UNCERTAIN`."""
    inner: ActivitySmoother = HmmSmoother(labels, config) if config.method == "hmm" else Smoother(labels, config)
    return _ShowUncertain(inner, frozenset(uncertain_labels)) if uncertain_labels else inner
