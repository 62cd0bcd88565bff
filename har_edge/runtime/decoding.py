"""A hidden-Markov smoother of per-classification probabilities (online forward filter), and the smoother factory.

The shown activity is a state that rarely changes: between two classifications it stays with
probability about ``1 - switch_probability`` and otherwise moves to another class
(:func:`transition_matrix`; with ``structure = "postural"``, changes between postures that skip the
postural-transition class are all but ruled out). Each classification's probabilities ``p_t (k,)``
are the evidence; the belief over classes is ``b_t ∝ p_t ** evidence_weight ⊙ (A^T b_{t-1})``,
started uniform.
The activity is ``argmax b_t`` (its belief the confidence; below ``confidence_floor``: ``uncertain``).
A single stray window barely moves a confident belief, while a change the model is sure of
takes one or two classifications: less flicker for a small delay. Pure NumPy and a few
multiplications per classification, so the firmware repeats it (``har_preprocess.h``: ``HmmSmoother``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import ConfigError
from har_edge.runtime.smoothing import UNCERTAIN, Smoother, SmoothingConfig

__all__ = ["ActivitySmoother", "HmmSmoother", "make_smoother", "transition_matrix"]

_FLOOR = 1e-6  # evidence floor: one window saying 0.0 never rules a class out for good


class ActivitySmoother(Protocol):
    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]: ...
    def reset(self) -> None: ...


_POSTURE_WORDS = ("SIT", "STAND", "LAY", "LIE")


def _posture(label: str) -> str | None:
    up = label.upper()
    return next((w for w in _POSTURE_WORDS if up.startswith(w)), None)


def transition_matrix(labels: tuple[str, ...], config: SmoothingConfig, uncertain_labels: tuple[str, ...] = ()) -> NDArray[np.float64]:
    """``A (k, k)``: ``A[i, j]`` the probability that the shown class goes from ``i`` to ``j`` between two classifications.

    ``structure = "free"``: any change has ``switch_probability / k``. ``"postural"``: a body cannot go from
    one posture to another (sitting, standing, lying) nor between sitting or lying and moving without a
    postural transition, i.e. through one of ``uncertain_labels``: those changes get ``forbidden_probability``
    instead (standing ↔ moving and moving ↔ moving stay free).
    """
    k = len(labels)
    A = np.full((k, k), config.switch_probability / k)
    if config.structure == "postural":
        hub = {i for i, lab in enumerate(labels) if lab in uncertain_labels}
        if not hub:
            raise ConfigError(f"smoothing structure 'postural' needs a transition class among the bundle's uncertain_labels; "
                              f"this bundle has none (labels {list(labels)})")
        kind = [_posture(lab) for lab in labels]
        for i in range(k):
            for j in range(k):
                if i == j or i in hub or j in hub:
                    continue
                moving_i, moving_j = kind[i] is None, kind[j] is None
                free = (moving_i and moving_j) or (moving_i and kind[j] == "STAND") or (kind[i] == "STAND" and moving_j)
                if not free:
                    A[i, j] = config.forbidden_probability
    np.fill_diagonal(A, 0.0)
    np.fill_diagonal(A, 1.0 - A.sum(axis=1))
    return A


class HmmSmoother:
    """Online HMM forward filter over raw probability vectors ``(k,)``; ``update`` returns ``(activity, confidence, belief (k,))``."""

    def __init__(self, labels: tuple[str, ...], config: SmoothingConfig, uncertain_labels: tuple[str, ...] = ()) -> None:
        self.labels = labels
        self.config = config
        self.transitions = transition_matrix(labels, config, uncertain_labels)
        self._belief: NDArray[np.float64] | None = None

    def reset(self) -> None:
        self._belief = None

    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]:
        p = np.maximum(np.asarray(probabilities, dtype=np.float64), _FLOOR) ** self.config.evidence_weight
        if self._belief is None:
            prior = np.full(len(self.labels), 1.0 / len(self.labels))
        else:
            prior = self._belief @ self.transitions  # (A^T b)_j = sum_i b_i A[i, j]
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
    inner: ActivitySmoother = HmmSmoother(labels, config, uncertain_labels) if config.method == "hmm" else Smoother(labels, config)
    return _ShowUncertain(inner, frozenset(uncertain_labels)) if uncertain_labels else inner
