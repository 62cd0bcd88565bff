"""Smoothing of per-window predictions and activity start/end events."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import ConfigError

__all__ = ["UNCERTAIN", "SmoothingConfig", "Smoother", "ActivityEvent", "ActivityTracker"]

UNCERTAIN = "uncertain"


@dataclass(frozen=True)
class SmoothingConfig:
    """``method``: ``none`` | ``mean`` (moving average of the last ``window`` probability vectors)
    | ``vote`` (an activity needs ``votes`` of the last ``window`` raw predictions)
    | ``hmm`` (:class:`~har_edge.runtime.decoding.HmmSmoother`: an online HMM filter that changes the
    activity with ``switch_probability`` per classification, evidence raised to ``evidence_weight``;
    ``structure = "postural"``: a posture changes only through the bundle's transition class, other
    routes get ``forbidden_probability``).
    ``leave_transition_probability`` (``hmm``; 0: ``switch_probability``): the probability per classification of
    leaving a transition class (the bundle's uncertain labels: a postural transition lasts seconds, an activity
    minutes), so the filter follows a transition into the posture it reaches without the delay that keeps
    flicker down elsewhere.
    Below ``confidence_floor`` the activity is :data:`UNCERTAIN`.

    The defaults (mean of the last 2, no floor) were chosen on the validation subjects' raw
    recordings by ``benchmarks/smoothing_tuning.py`` (fewest activity changes per hour within 1 point
    of the best validation accuracy); a floor of 0.4 cost nothing there if ``uncertain`` is wanted."""

    method: Literal["none", "mean", "vote", "hmm"] = "mean"
    window: int = 2
    votes: int = 2
    confidence_floor: float = 0.0
    switch_probability: float = 0.05
    evidence_weight: float = 1.0
    structure: Literal["free", "postural"] = "free"
    forbidden_probability: float = 1e-6
    leave_transition_probability: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in ("none", "mean", "vote", "hmm"):
            raise ConfigError(f"smoothing method {self.method!r}; expected 'none', 'mean', 'vote' or 'hmm'")
        if not 0 < self.switch_probability <= 1 or not 0 < self.evidence_weight <= 10:
            raise ConfigError(f"smoothing switch_probability={self.switch_probability}, evidence_weight={self.evidence_weight}; "
                              "expected 0 < switch_probability <= 1 and 0 < evidence_weight <= 10")
        if self.structure not in ("free", "postural") or not 0 <= self.forbidden_probability <= self.switch_probability:
            raise ConfigError(f"smoothing structure={self.structure!r}, forbidden_probability={self.forbidden_probability}; "
                              "expected 'free' or 'postural' and 0 <= forbidden_probability <= switch_probability")
        if not 0 <= self.leave_transition_probability <= 1:
            raise ConfigError(f"smoothing leave_transition_probability={self.leave_transition_probability}; "
                              "expected 0 <= leave_transition_probability <= 1 (0: switch_probability)")
        if self.window < 1 or not 1 <= self.votes <= self.window:
            raise ConfigError(f"smoothing window={self.window}, votes={self.votes}; need 1 <= votes <= window")
        if not 0 <= self.confidence_floor < 1:
            raise ConfigError(f"confidence_floor={self.confidence_floor}; expected 0 <= floor < 1")


class Smoother:
    """Turns raw probability vectors ``(k,)`` into a smoothed activity and confidence."""

    def __init__(self, labels: tuple[str, ...], config: SmoothingConfig = SmoothingConfig()) -> None:
        self.labels = labels
        self.config = config
        self._history: deque[NDArray[np.float32]] = deque(maxlen=config.window)

    def reset(self) -> None:
        self._history.clear()

    def update(self, probabilities: NDArray[np.float32]) -> tuple[str, float, NDArray[np.float32]]:
        """Returns ``(activity, confidence, smoothed probabilities (k,))``."""
        cfg = self.config
        self._history.append(np.asarray(probabilities, dtype=np.float32))
        if cfg.method == "none":
            smoothed = self._history[-1]
        else:
            smoothed = np.mean(self._history, axis=0).astype(np.float32)
        i = int(np.argmax(smoothed))
        conf = float(smoothed[i])
        if cfg.method == "vote":
            votes = np.bincount([int(np.argmax(p)) for p in self._history], minlength=len(self.labels))
            i = int(np.argmax(votes))
            if votes[i] < min(cfg.votes, len(self._history)):
                return UNCERTAIN, conf, smoothed
            conf = float(smoothed[i])
        if conf < cfg.confidence_floor:
            return UNCERTAIN, conf, smoothed
        return self.labels[i], conf, smoothed


@dataclass(frozen=True)
class ActivityEvent:
    """``type`` is ``start`` or ``end``; ``duration_s`` is set on ``end``."""

    type: str
    activity: str
    timestamp: float
    duration_s: float | None = None


class ActivityTracker:
    """Emits an ``end`` event for the old activity and a ``start`` for the new when it changes."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.since: float | None = None

    def update(self, activity: str, timestamp: float) -> list[ActivityEvent]:
        if activity == self.current:
            return []
        events = []
        if self.current is not None and self.since is not None:
            events.append(ActivityEvent("end", self.current, timestamp, round(timestamp - self.since, 3)))
        events.append(ActivityEvent("start", activity, timestamp))
        self.current, self.since = activity, timestamp
        return events

    def finish(self, timestamp: float) -> list[ActivityEvent]:
        """Close the running activity (end of stream)."""
        if self.current is None or self.since is None:
            return []
        ev = [ActivityEvent("end", self.current, timestamp, round(timestamp - self.since, 3))]
        self.current = self.since = None
        return ev
