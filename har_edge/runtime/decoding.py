"""A hidden-Markov smoother of per-classification probabilities (online forward filter), and the smoother factory.

The shown activity is a state that rarely changes: between two classifications it stays with
probability about ``1 - switch_probability`` and otherwise moves on (:func:`hmm_model`; with
``structure = "postural"``, the moves a body cannot make — between postures without a postural
transition, or a transition that ends in the posture it left — are all but ruled out). Each
classification's probabilities ``p_t (k,)`` are the evidence; the belief over the hidden states is
``b_t ∝ max(p_t, floor)[class(s)] ** evidence_weight ⊙ (A^T b_{t-1})``, started from ``initial``
(``floor``: :func:`evidence_floor`, half the output's quantisation step for an int8 model).
The activity is the class with the most belief (that belief the confidence; below ``confidence_floor``: ``uncertain``).
A single stray window barely moves a confident belief, while a change the model is sure of
takes one or two classifications: less flicker for a small delay. Pure NumPy and a few
multiplications per classification, so the firmware repeats it (``har_preprocess.h``: ``ActivitySmoother``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from har_edge.data.activities import posture_of, transition_postures
from har_edge.errors import ConfigError
from har_edge.runtime.smoothing import UNCERTAIN, Smoother, SmoothingConfig

__all__ = ["ActivitySmoother", "HmmModel", "HmmSmoother", "evidence_floor", "hmm_model", "make_smoother", "transition_matrix"]

_FLOOR = 1e-6  # evidence floor: one window saying 0.0 never rules a class out for good


def evidence_floor(output_step: float) -> float:
    """The least evidence a class gets: half the output's quantisation step (an int8 probability of 0 stands for
    anything below it; flooring it at 1e-6 made int8 evidence far more decisive than float32's), at least 1e-6."""
    return max(_FLOOR, output_step / 2)


class ActivitySmoother(Protocol):
    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]: ...
    def reset(self) -> None: ...


@dataclass(frozen=True)
class HmmModel:
    """The HMM behind :class:`HmmSmoother`: hidden states, each showing one class.

    ``state_class (S,)``: the class a state shows; ``transitions (S, S)``: ``[i, j]`` the probability of
    going from state ``i`` to ``j`` between two classifications (rows sum to 1); ``initial (S,)``: the belief
    when a stream starts; ``state_names``: for people.
    """

    state_class: NDArray[np.int64]
    transitions: NDArray[np.float64]
    initial: NDArray[np.float64]
    state_names: tuple[str, ...]


def _free_model(labels: tuple[str, ...], config: SmoothingConfig) -> HmmModel:
    k = len(labels)
    A = np.full((k, k), config.switch_probability / k)
    np.fill_diagonal(A, 0.0)
    np.fill_diagonal(A, 1.0 - A.sum(axis=1))
    return HmmModel(np.arange(k), A, np.full(k, 1.0 / k), labels)


@dataclass(frozen=True)
class _State:
    """``role``: ``M`` moving, ``P`` a known posture, ``U`` a posture guessed at the start of a stream, ``H`` a
    transition; ``posture`` of P / U states; ``origin`` / ``destination``: the postures a transition leaves and
    reaches (None: not known)."""

    role: str
    cls: int
    posture: str | None = None
    origin: str | None = None
    destination: str | None = None


def _into_transition(a: _State, b: _State) -> str:
    if a.role == "H":  # another transition class: the same movement read differently
        return "free" if a.origin == b.origin else ("forbidden" if b.destination is not None else "never")
    leaving = a.posture if a.role in ("P", "U") else None
    if b.destination is None:  # a transition of unknown direction remembers the posture it leaves
        return "free" if b.origin == leaving else "never"
    if b.origin == leaving or (a.role == "M" and b.origin == "STANDING"):
        return "free"
    return "forbidden"


def _postural_rule(a: _State, b: _State) -> str:
    """``free``, ``forbidden`` or ``never`` for the move from state ``a`` to state ``b`` (see :func:`hmm_model`)."""
    if b.role == "U":
        return "free" if a.role == "U" else "never"
    if b.role == "H":
        return _into_transition(a, b)
    if a.role == "U":  # a guessed posture becomes known only through a transition
        return "free" if b.role == "M" else "never"
    if a.role == "H":
        if b.role == "P":
            if a.destination is not None:
                return "free" if b.posture == a.destination else "forbidden"
            return "free" if b.posture != a.origin else "forbidden"  # a transition ends in another posture
        ends_standing = a.destination == "STANDING" or (a.destination is None and a.origin in (None, "STANDING"))
        return "free" if ends_standing else "forbidden"
    if b.role == "M":
        return "free" if a.role == "M" or a.posture == "STANDING" else "forbidden"
    return "free" if a.role == "M" and b.posture == "STANDING" else "forbidden"  # into a known posture


def _postural_model(labels: tuple[str, ...], config: SmoothingConfig, uncertain_labels: tuple[str, ...]) -> HmmModel:
    hubs = [i for i, lab in enumerate(labels) if lab in uncertain_labels]
    if not hubs:
        raise ConfigError(f"smoothing structure 'postural' needs a transition class among the bundle's uncertain_labels; "
                          f"this bundle has none (labels {list(labels)})")
    kind = {i: posture_of(lab) for i, lab in enumerate(labels) if i not in hubs}
    postures = sorted({p for p in kind.values() if p is not None})
    directed = {labels.index(n): ends for n, ends in transition_postures([labels[h] for h in hubs]).items()
                if all(e in postures for e in ends)}
    states = [_State("M", c) for c, p in kind.items() if p is None]
    states += [_State(role, c, p) for role in ("P", "U") for c, p in kind.items() if p is not None]
    for h in hubs:
        if h in directed:
            states.append(_State("H", h, origin=directed[h][0], destination=directed[h][1]))
        else:
            states += [_State("H", h, origin=o) for o in [*postures, None]]
    k = len(labels)
    prob = {"free": config.switch_probability / k, "forbidden": config.forbidden_probability, "never": 0.0}
    A = np.array([[0.0 if i == j else prob[_postural_rule(a, b)] for j, b in enumerate(states)] for i, a in enumerate(states)])
    np.fill_diagonal(A, 1.0 - A.sum(axis=1))
    state_class = np.array([st.cls for st in states])
    start = np.array([st.role in ("M", "U") or (st.role == "H" and st.origin is None) or st.destination is not None
                      for st in states], dtype=np.float64)
    per_class = np.bincount(state_class, weights=start, minlength=k)
    initial = np.where(start > 0, start / np.maximum(per_class[state_class], 1), 0.0)
    names = tuple(f"{st.role}:{labels[st.cls]}" + (f"<{st.origin}" if st.role == "H" and st.destination is None else "")
                  for st in states)
    return HmmModel(state_class, A, initial / initial.sum(), names)


def hmm_model(labels: tuple[str, ...], config: SmoothingConfig, uncertain_labels: tuple[str, ...] = ()) -> HmmModel:
    """The HMM of ``config.structure``.

    ``free``: one state per class; any change has ``switch_probability / k``.

    ``postural`` (a bundle with postural-transition classes among ``uncertain_labels``): postures (sitting,
    standing, lying, by label name) change only through a transition; a transition named ``A_TO_B`` leaves
    ``A`` and ends in ``B``, one of unknown direction (e.g. ``TRANSITION``) remembers the posture it left
    and ends in another. The moves a body cannot make get ``forbidden_probability``. States: moving
    classes ``M``; known postures ``P``; postures guessed at the start of a stream ``U`` (nothing was seen
    entering them, so they change freely until the first transition); transitions ``H``. Moving ↔
    standing and moving ↔ moving stay free.

    With ``leave_transition_probability``, the states of a class in ``uncertain_labels`` are left with that
    probability (their moves keep their proportions).
    """
    model = _postural_model(labels, config, uncertain_labels) if config.structure == "postural" else _free_model(labels, config)
    leave = config.leave_transition_probability
    rows = [i for i, c in enumerate(model.state_class) if labels[c] in uncertain_labels]
    if not leave or not rows:
        return model
    A = model.transitions.copy()
    for i in rows:
        moves = A[i].sum() - A[i, i]
        if moves > 0:
            A[i] *= leave / moves
            A[i, i] = 1.0 - leave
    return HmmModel(model.state_class, A, model.initial, model.state_names)


def transition_matrix(labels: tuple[str, ...], config: SmoothingConfig, uncertain_labels: tuple[str, ...] = ()) -> NDArray[np.float64]:
    """``hmm_model(...).transitions`` (``(S, S)``; ``S = k`` for the free structure)."""
    return hmm_model(labels, config, uncertain_labels).transitions


class HmmSmoother:
    """Online HMM forward filter over raw probability vectors ``(k,)``; ``update`` returns ``(activity, confidence,
    class belief (k,))``."""

    def __init__(self, labels: tuple[str, ...], config: SmoothingConfig, uncertain_labels: tuple[str, ...] = (),
                 output_step: float = 0.0) -> None:
        self.labels = labels
        self.config = config
        self.model = hmm_model(labels, config, uncertain_labels)
        self.floor = evidence_floor(output_step)
        self._belief: NDArray[np.float64] | None = None

    def reset(self) -> None:
        self._belief = None

    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]:
        m = self.model
        p = np.maximum(np.asarray(probabilities, dtype=np.float64), self.floor) ** self.config.evidence_weight
        prior = m.initial if self._belief is None else self._belief @ m.transitions  # (A^T b)_j = sum_i b_i A[i, j]
        b = prior * p[m.state_class]
        b /= b.sum()
        self._belief = b
        per_class = np.bincount(m.state_class, weights=b, minlength=len(self.labels))
        i = int(np.argmax(per_class))
        conf = float(per_class[i])
        smoothed = per_class.astype(np.float32)
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


def make_smoother(labels: tuple[str, ...], config: SmoothingConfig, *, uncertain_labels: tuple[str, ...] = (),
                  output_step: float = 0.0) -> ActivitySmoother:
    """The smoother ``config.method`` names: :class:`HmmSmoother` for ``hmm``, else :class:`~har_edge.runtime.smoothing.Smoother`;
    classes in ``uncertain_labels`` (the bundle's, e.g. a postural-transition class) are shown as :data:`UNCERTAIN`;
    ``output_step``: the bundle's output quantisation step (:func:`evidence_floor`)."""
    inner: ActivitySmoother = (HmmSmoother(labels, config, uncertain_labels, output_step) if config.method == "hmm"
                               else Smoother(labels, config))
    return _ShowUncertain(inner, frozenset(uncertain_labels)) if uncertain_labels else inner
