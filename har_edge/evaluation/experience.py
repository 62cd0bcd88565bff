"""What the user sees: the latest published activity at every labelled sample, scored against the labels.

A device publishes an activity at the time of each classification (the source time of its window's
last sample); a dashboard then shows that activity until the next one. :func:`shown_per_sample`
turns the publications into the activity shown at every sample, and :func:`score_recording`
compares it with the per-sample labels of one recording:

- **state accuracy**: samples labelled with one of the ``activities`` whose shown activity equals the
  label (per class, and over all of them); a sample before the first publication shows nothing (wrong);
- **transitions**: samples labelled with a postural transition (``STAND_TO_SIT`` …) whose shown
  activity is the posture left, the posture reached or ``uncertain``;
- **detection delay**: per labelled activity segment (a maximal run of one activity label), the time
  from its first sample until the shown activity first equals it, within the segment; 0 if it is
  already shown at the start; *never shown* if it is not shown before the segment ends;
- **flicker**: changes of the published activity, and changes of the label between consecutive
  labelled segments (unlabelled gaps are skipped, transitions count), each per hour; also the shown
  changes made at a labelled sample per labelled hour, and the share made in unlabelled time (where
  the data set says nothing about what the person did); the shown changes per hour by where they fall
  (:data:`CHANGE_CONTEXTS`: during an activity, a transition, or unlabelled time before the first label,
  between labels or after the last label).

:func:`summarise` adds up :class:`ExperienceCounts` of many recordings into the figures. Pure NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from numpy.typing import NDArray

from har_edge.data.activities import transition_postures
from har_edge.data.recording import UNLABELLED
from har_edge.data.windowing import labelled_runs
from har_edge.errors import DataError

__all__ = ["NOTHING_SHOWN", "CHANGE_CONTEXTS", "ExperienceCounts", "change_contexts", "transition_postures", "shown_per_sample", "label_changes",
           "score_recording", "summarise"]

NOTHING_SHOWN = ""
"""The shown activity before the first publication of a recording."""

CHANGE_CONTEXTS = ("activity", "transition", "unlabelled before the first label", "unlabelled between labels",
                   "unlabelled after the last label")
"""Where a shown change can fall: at a sample labelled with an activity, with a transition, or unlabelled."""


def shown_per_sample(sample_times_s: NDArray[np.float64], publish_times_s: Sequence[float],
                     activities: Sequence[str]) -> NDArray[np.str_]:
    """The activity on display at each sample ``(n,)``: the latest publication at or before it.

    ``publish_times_s`` must not decrease; samples before the first publication get :data:`NOTHING_SHOWN`.
    """
    t_pub = np.asarray(publish_times_s, dtype=np.float64)
    if t_pub.shape != (len(activities),):
        raise DataError(f"{t_pub.shape[0]} publication times for {len(activities)} activities")
    if t_pub.size and np.any(np.diff(t_pub) < 0):
        raise DataError("publication times go back in time; expected them in the order they were published")
    names = np.asarray([NOTHING_SHOWN, *activities])
    idx = np.searchsorted(t_pub, np.asarray(sample_times_s, dtype=np.float64), side="right")  # 0: nothing yet
    return names[idx]


def label_changes(labels: NDArray[np.integer]) -> int:
    """How often the label changes between consecutive labelled segments (unlabelled gaps skipped)."""
    runs = [lab for lab, _, _ in labelled_runs(np.asarray(labels)) if lab != UNLABELLED]
    return int(sum(a != b for a, b in zip(runs, runs[1:])))


@dataclass
class ExperienceCounts:
    """Sums over recordings; :func:`summarise` turns them into figures."""

    state_samples: dict[str, int] = field(default_factory=dict)  # labelled samples per activity
    state_correct: dict[str, int] = field(default_factory=dict)  # ... of which the shown activity was right
    shown_during: dict[str, dict[str, int]] = field(default_factory=dict)  # label -> shown activity -> samples
    transition_samples: int = 0
    transition_ok: int = 0  # shown: the posture left, the posture reached or uncertain
    transition_s: float = 0.0
    delays_s: list[float] = field(default_factory=list)  # one per segment that was shown
    delays_by_class: dict[str, list[float]] = field(default_factory=dict)
    never_shown: dict[str, int] = field(default_factory=dict)  # segments per activity never shown
    segments: int = 0
    shown_changes: int = 0
    shown_changes_by_context: dict[str, int] = field(default_factory=dict)  # CHANGE_CONTEXTS -> changes
    label_changes: int = 0
    duration_s: float = 0.0
    labelled_s: float = 0.0

    @property
    def shown_changes_labelled(self) -> int:
        """The shown changes made at a labelled sample (an activity or a transition)."""
        return self.shown_changes_by_context.get("activity", 0) + self.shown_changes_by_context.get("transition", 0)

    def add(self, other: "ExperienceCounts") -> None:
        for mine, theirs in ((self.state_samples, other.state_samples), (self.state_correct, other.state_correct),
                             (self.never_shown, other.never_shown), (self.shown_changes_by_context, other.shown_changes_by_context)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        for lab, row in other.shown_during.items():
            mine_row = self.shown_during.setdefault(lab, {})
            for k, v in row.items():
                mine_row[k] = mine_row.get(k, 0) + v
        for k, vs in other.delays_by_class.items():
            self.delays_by_class.setdefault(k, []).extend(vs)
        self.delays_s += other.delays_s
        self.transition_samples += other.transition_samples
        self.transition_ok += other.transition_ok
        self.transition_s += other.transition_s
        self.segments += other.segments
        self.shown_changes += other.shown_changes
        self.label_changes += other.label_changes
        self.duration_s += other.duration_s
        self.labelled_s += other.labelled_s


def change_contexts(labels: NDArray[np.integer], at: NDArray[np.int64], scored_idx: set[int]) -> dict[str, int]:
    """How many of the changes at sample indices ``at`` ``(k,)`` fall in each of :data:`CHANGE_CONTEXTS`."""
    labelled = np.flatnonzero(labels != UNLABELLED)
    first, last = (int(labelled[0]), int(labelled[-1])) if labelled.size else (labels.shape[0], -1)
    out = dict.fromkeys(CHANGE_CONTEXTS, 0)
    for i in at.tolist():
        lab = int(labels[i])
        if lab != UNLABELLED:
            key = "activity" if lab in scored_idx else "transition"
        else:
            key = ("unlabelled before the first label" if i < first else
                   "unlabelled after the last label" if i > last else "unlabelled between labels")
        out[key] += 1
    return out


def score_recording(labels: NDArray[np.integer], label_names: Sequence[str], sample_rate_hz: float,
                    publish_times_s: Sequence[float], activities: Sequence[str], *, scored: Sequence[str],
                    uncertain: str = "uncertain", t0_s: float = 0.0) -> ExperienceCounts:
    """Score one recording's publications against its per-sample ``labels`` ``(n,)`` (indices into ``label_names``).

    Sample ``i`` is at ``t0_s + i / sample_rate_hz``. ``scored``: the activities whose labelled time is
    scored (e.g. the six basic activities); labels named like ``STAND_TO_SIT`` are transitions.
    """
    labels = np.asarray(labels)
    names = list(label_names)
    n = labels.shape[0]
    times = t0_s + np.arange(n) / sample_rate_hz
    shown = shown_per_sample(times, publish_times_s, activities)
    lab_name = np.asarray(names + [NOTHING_SHOWN])[np.where(labels == UNLABELLED, len(names), labels)]
    changed = [i + 1 for i, (a, b) in enumerate(zip(activities, activities[1:])) if a != b]
    at = np.clip(np.round((np.asarray(publish_times_s, dtype=np.float64)[changed] - t0_s) * sample_rate_hz).astype(np.int64), 0, n - 1) \
        if changed and n else np.zeros(0, np.int64)
    out = ExperienceCounts(duration_s=n / sample_rate_hz, label_changes=label_changes(labels), shown_changes=len(changed),
                           labelled_s=float((labels != UNLABELLED).sum() / sample_rate_hz))
    for act in scored:
        mask = lab_name == act
        out.state_samples[act] = int(mask.sum())
        out.state_correct[act] = int((shown[mask] == act).sum())
        values, n_samples = np.unique(shown[mask], return_counts=True)
        out.shown_during[act] = {str(v) or "(nothing yet)": int(c) for v, c in zip(values, n_samples)}
    for trans, (left, reached) in transition_postures(names).items():
        mask = lab_name == trans
        out.transition_samples += int(mask.sum())
        out.transition_ok += int(np.isin(shown[mask], [left, reached, uncertain]).sum())
    out.transition_s = out.transition_samples / sample_rate_hz
    scored_idx = {names.index(a) for a in scored if a in names}
    out.shown_changes_by_context = change_contexts(labels, at, scored_idx)
    for lab, start, stop in labelled_runs(labels):
        if lab not in scored_idx:
            continue
        act = names[lab]
        out.segments += 1
        hit = np.flatnonzero(shown[start:stop] == act)
        if hit.size:
            delay = float(hit[0] / sample_rate_hz)
            out.delays_s.append(delay)
            out.delays_by_class.setdefault(act, []).append(delay)
        else:
            out.never_shown[act] = out.never_shown.get(act, 0) + 1
    return out


def _ratio(a: float, b: float) -> float:
    return round(a / b, 4) if b else 0.0


def summarise(counts: ExperienceCounts) -> dict[str, Any]:
    """The figures: state accuracy (overall, per class, worst class), transitions, delays, changes per hour."""
    total = sum(counts.state_samples.values())
    per_class = {k: _ratio(counts.state_correct.get(k, 0), v) for k, v in counts.state_samples.items()}
    hours = counts.duration_s / 3600
    d = np.asarray(counts.delays_s, dtype=np.float64)
    return {
        "state_accuracy": _ratio(sum(counts.state_correct.values()), total),
        "state_accuracy_per_class": per_class,
        "worst_class": min(per_class, key=lambda k: per_class[k]) if per_class else None,
        "worst_class_accuracy": min(per_class.values()) if per_class else 0.0,
        "shown_during": {lab: {k: _ratio(v, counts.state_samples[lab]) for k, v in sorted(row.items(), key=lambda kv: -kv[1])}
                         for lab, row in counts.shown_during.items()},
        "transition_ok": _ratio(counts.transition_ok, counts.transition_samples),
        "transition_minutes": round(counts.transition_s / 60, 2),
        "delay_median_s": round(float(np.median(d)), 3) if d.size else None,
        "delay_p90_s": round(float(np.percentile(d, 90)), 3) if d.size else None,
        "delay_median_s_per_class": {k: round(float(np.median(v)), 3) for k, v in sorted(counts.delays_by_class.items())},
        "segments": counts.segments,
        "never_shown": sum(counts.never_shown.values()),
        "never_shown_per_class": dict(sorted(counts.never_shown.items())),
        "shown_changes_per_hour": round(counts.shown_changes / hours, 1) if hours else 0.0,
        "label_changes_per_hour": round(counts.label_changes / hours, 1) if hours else 0.0,
        "flicker_ratio": _ratio(counts.shown_changes, counts.label_changes),
        "shown_changes_per_labelled_hour": round(counts.shown_changes_labelled / (counts.labelled_s / 3600), 1) if counts.labelled_s else 0.0,
        "shown_changes_in_unlabelled_time": round(1 - counts.shown_changes_labelled / counts.shown_changes, 4) if counts.shown_changes else 0.0,
        "unlabelled_time": round(1 - counts.labelled_s / counts.duration_s, 4) if counts.duration_s else 0.0,
        "shown_changes_per_hour_by_context": {k: round(counts.shown_changes_by_context.get(k, 0) / hours, 1) if hours else 0.0
                                              for k in CHANGE_CONTEXTS},
        "hours": round(hours, 4),
    }
