"""Score a stream's classifications against a labelled recording (streaming accuracy)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from har_edge.data.recording import UNLABELLED, Recording
from har_edge.data.windowing import label_windows
from har_edge.evaluation.metrics import classification_metrics

__all__ = ["window_truth", "score_stream", "activity_segments", "fold_short_segments"]


def window_truth(recording: Recording, window_end_s: Sequence[float], window_samples: int, *, t0_s: float = 0.0) -> np.ndarray:
    """Majority label of each window ending at ``window_end_s`` (UNLABELLED where no label has > 50 %)."""
    if recording.labels is None:
        return np.full(len(window_end_s), UNLABELLED)
    ends = np.round((np.asarray(window_end_s) - t0_s) * recording.sample_rate_hz).astype(np.int64)
    out = np.full(len(ends), UNLABELLED, dtype=np.int64)
    for i, e in enumerate(ends):
        s = e - window_samples + 1
        if s >= 0 and e < recording.n_samples:
            out[i] = label_windows(recording.labels[s : e + 1], window_samples, window_samples, policy="majority")[0]
    return out


def score_stream(
    activities: Sequence[str], truth: np.ndarray, label_names: Sequence[str], *, uncertain: str = "uncertain"
) -> dict[str, Any]:
    """Accuracy / macro-F1 of streamed activities on windows whose truth is one of ``label_names``.

    ``uncertain`` outputs count as errors (and are reported separately).
    """
    names = list(label_names)
    keep = (truth >= 0) & (truth < len(names))
    # anything not a model label (i.e. "uncertain") is an extra column: an error for every class
    pred = np.array([names.index(a) if a in names else len(names) for a in activities], dtype=np.int64)
    y, p = truth[keep], pred[keep]
    if len(y) == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "windows_scored": 0, "windows_total": int(len(truth)), "uncertain": 0}
    m = classification_metrics(y, p, [*names, uncertain])
    return {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "windows_scored": int(len(y)),
            "windows_total": int(len(truth)), "uncertain": int((p == len(names)).sum()), "confusion_matrix": m["confusion_matrix"]}


def activity_segments(times_s: Sequence[float], activities: Sequence[str]) -> list[tuple[float, float, str]]:
    """Collapse a per-window activity sequence into ``(start_s, end_s, activity)`` runs."""
    out: list[tuple[float, float, str]] = []
    for t, a in zip(times_s, activities):
        if out and out[-1][2] == a:
            out[-1] = (out[-1][0], t, a)
        else:
            out.append((t if not out else out[-1][1], t, a))
    return out


def fold_short_segments(segments: Sequence[tuple[float, float, str]], min_s: float
                        ) -> list[tuple[float, float, str, list[tuple[float, float, str]]]]:
    """Fold runs shorter than ``min_s`` into the row before them (leading ones into the first row), for display.

    Returns ``(start_s, end_s, activity, folded)`` rows; ``folded`` lists the short runs a row absorbed,
    so a timeline can say what it merged. Two rows of one activity with only short runs between them
    become one row. Without any run of ``min_s`` or more, the runs are returned unchanged.
    """
    rows: list[tuple[float, float, str, list[tuple[float, float, str]]]] = []
    lead: list[tuple[float, float, str]] = []
    for s, e, a in segments:
        if e - s < min_s:
            if rows:
                rows[-1] = (rows[-1][0], e, rows[-1][2], [*rows[-1][3], (s, e, a)])
            else:
                lead.append((s, e, a))
        elif rows and rows[-1][2] == a:
            rows[-1] = (rows[-1][0], e, a, rows[-1][3])
        else:
            rows.append((lead[0][0] if lead else s, e, a, lead))
            lead = []
    return rows if rows else [(s, e, a, []) for s, e, a in lead]
