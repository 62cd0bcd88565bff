"""The one windowing implementation, shared by training, export, runtime and forecasting.

A window of ``window_samples`` starts every ``hop_samples``; windows never cross the end of a
recording, and (with the ``pure`` policy, or per-segment windowing) never cross a label boundary.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from har_edge.data.recording import UNLABELLED, Recording, WindowSet
from har_edge.errors import DataError

__all__ = [
    "LabelPolicy",
    "count_windows",
    "window_starts",
    "segment_windows",
    "label_windows",
    "labelled_runs",
    "windows_from_recordings",
]

LabelPolicy = Literal["majority", "pure"]


def _check_sizes(window_samples: int, hop_samples: int) -> None:
    if int(window_samples) != window_samples or window_samples < 1:
        raise DataError(f"window_samples={window_samples}; expected a positive integer")
    if int(hop_samples) != hop_samples or hop_samples < 1:
        raise DataError(f"hop_samples={hop_samples}; expected a positive integer")


def count_windows(n_samples: int, window_samples: int, hop_samples: int) -> int:
    """Number of complete windows in ``n_samples`` samples."""
    _check_sizes(window_samples, hop_samples)
    if n_samples < window_samples:
        return 0
    return (n_samples - window_samples) // hop_samples + 1


def window_starts(n_samples: int, window_samples: int, hop_samples: int) -> NDArray[np.int64]:
    """First-sample index of each complete window, shape ``(count_windows(...),)``."""
    return np.arange(count_windows(n_samples, window_samples, hop_samples), dtype=np.int64) * hop_samples


def segment_windows(signal: NDArray, window_samples: int, hop_samples: int, *, where: str = "signal") -> NDArray:
    """Cut ``signal`` ``(n, c)`` (or ``(n,)``) into windows ``(k, window_samples, c)`` (a view when possible).

    Raises:
        DataError: if the signal is shorter than one window.
    """
    _check_sizes(window_samples, hop_samples)
    n = signal.shape[0]
    if n < window_samples:
        raise DataError(f"{where}: {n} samples is shorter than one window of {window_samples} samples")
    view = sliding_window_view(signal, window_samples, axis=0)[::hop_samples]
    # sliding_window_view puts the window axis last: (k, c, window) -> (k, window, c)
    return np.moveaxis(view, -1, 1) if signal.ndim == 2 else view


def label_windows(
    labels: NDArray, window_samples: int, hop_samples: int, *, policy: LabelPolicy = "majority", min_fraction: float = 0.5
) -> NDArray[np.int64]:
    """One label per window from per-sample ``labels`` ``(n,)``.

    ``majority``: the most frequent label if it covers more than ``min_fraction`` of the window,
    else :data:`UNLABELLED`. ``pure``: the label if every sample has it, else :data:`UNLABELLED`.
    Unlabelled samples never win a majority.
    """
    if policy not in ("majority", "pure"):
        raise DataError(f"label policy {policy!r}; expected 'majority' or 'pure'")
    if labels.shape[0] < window_samples:
        return np.zeros(0, dtype=np.int64)
    wins = segment_windows(np.asarray(labels, dtype=np.int64), window_samples, hop_samples, where="labels")
    first = wins[:, 0]
    if policy == "pure":
        pure = (wins == first[:, None]).all(axis=1)
        return np.where(pure, first, UNLABELLED).astype(np.int64)
    n_classes = int(max(labels.max(initial=0), 0)) + 1
    counts = np.zeros((wins.shape[0], n_classes + 1), dtype=np.int64)
    shifted = np.where(wins < 0, n_classes, wins)  # unlabelled counted in the last column
    for c in range(n_classes + 1):
        counts[:, c] = (shifted == c).sum(axis=1)
    counts[:, n_classes] = 0
    best = counts.argmax(axis=1)
    ok = counts[np.arange(len(best)), best] > min_fraction * window_samples
    return np.where(ok, best, UNLABELLED).astype(np.int64)


def labelled_runs(labels: NDArray) -> list[tuple[int, int, int]]:
    """Contiguous runs of one label: ``[(label, start, stop), ...]`` with ``stop`` exclusive."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [labels.size]])
    return [(int(labels[s]), int(s), int(e)) for s, e in zip(starts, stops)]


def windows_from_recordings(
    recordings: Sequence[Recording],
    window_samples: int,
    hop_samples: int,
    *,
    mode: Literal["per_segment", "continuous"] = "per_segment",
    policy: LabelPolicy = "pure",
    keep_labels: Sequence[int] | None = None,
) -> WindowSet:
    """Window labelled recordings into one :class:`WindowSet`.

    ``per_segment`` (the UCI HAR recipe): windows start at the first sample of each labelled run
    and stay inside it. ``continuous``: windows start at sample 0 of each recording and take a
    label by ``policy``. Windows never cross a recording boundary; unlabelled windows are dropped,
    as are labels not in ``keep_labels`` (when given).

    Returns:
        WindowSet with ``extra["recording"]`` (index into ``recordings``) and ``extra["start"]``.
    """
    if not recordings:
        raise DataError("no recordings to window")
    first = recordings[0]
    xs, ys, subs, rec_idx, starts = [], [], [], [], []
    for r_i, rec in enumerate(recordings):
        if rec.labels is None:
            raise DataError(f"{rec.name}: recording has no labels; cannot make labelled windows")
        if rec.channel_names != first.channel_names or rec.sample_rate_hz != first.sample_rate_hz:
            raise DataError(f"{rec.name}: channels/rate differ from {first.name}; resample or select channels first")
        spans: list[tuple[int | None, int, int]]
        if mode == "per_segment":
            spans = [(lab, s, e) for lab, s, e in labelled_runs(rec.labels) if lab != UNLABELLED]
        elif mode == "continuous":
            spans = [(None, 0, rec.n_samples)]  # no run label: each window gets one by ``policy``
        else:
            raise DataError(f"windowing mode {mode!r}; expected 'per_segment' or 'continuous'")
        for lab, s, e in spans:
            if e - s < window_samples:
                continue
            st = window_starts(e - s, window_samples, hop_samples) + s
            if lab is None:
                y = label_windows(rec.labels[s:e], window_samples, hop_samples, policy=policy)
            else:
                y = np.full(st.shape, lab, dtype=np.int64)
            keep = y != UNLABELLED
            if keep_labels is not None:
                keep &= np.isin(y, np.asarray(list(keep_labels)))
            if not keep.any():
                continue
            w = segment_windows(rec.signals[s:e], window_samples, hop_samples, where=rec.name)
            xs.append(w[keep])
            ys.append(y[keep])
            subs.append(np.full(int(keep.sum()), -1 if rec.subject is None else rec.subject, dtype=np.int64))
            rec_idx.append(np.full(int(keep.sum()), r_i, dtype=np.int64))
            starts.append(st[keep])
    if not xs:
        raise DataError(
            f"no labelled window of {window_samples} samples fits in {len(recordings)} recording(s); "
            "recordings are shorter than a window or carry no usable labels"
        )
    return WindowSet(
        X=np.ascontiguousarray(np.concatenate(xs), dtype=np.float32),
        y=np.concatenate(ys),
        subject=np.concatenate(subs),
        channel_names=first.channel_names,
        units=first.units,
        label_names=first.label_names,
        sample_rate_hz=first.sample_rate_hz,
        extra={"recording": np.concatenate(rec_idx), "start": np.concatenate(starts)},
    )
