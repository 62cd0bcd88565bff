from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from har_edge.data.recording import UNLABELLED, Recording
from har_edge.data.windowing import count_windows, label_windows, labelled_runs, segment_windows, window_starts, windows_from_recordings
from har_edge.errors import DataError


@given(n=st.integers(0, 500), w=st.integers(1, 64), h=st.integers(1, 64))
def test_window_count_and_starts(n: int, w: int, h: int) -> None:
    k = count_windows(n, w, h)
    starts = window_starts(n, w, h)
    assert len(starts) == k
    if k:
        assert starts[-1] + w <= n  # never past the end
        assert starts[-1] + h + w > n  # and no complete window left out
    else:
        assert n < w


@given(n=st.integers(8, 300), c=st.integers(1, 4), w=st.integers(1, 8), h=st.integers(1, 8))
@settings(max_examples=50)
def test_segment_windows_content(n: int, c: int, w: int, h: int) -> None:
    sig = np.arange(n * c, dtype=np.float32).reshape(n, c)
    wins = segment_windows(sig, w, h)
    assert wins.shape == (count_windows(n, w, h), w, c)
    for i in (0, len(wins) - 1):
        np.testing.assert_array_equal(wins[i], sig[i * h : i * h + w])


def test_segment_windows_too_short_names_signal() -> None:
    with pytest.raises(DataError, match="rec.csv: 5 samples is shorter than one window of 8"):
        segment_windows(np.zeros((5, 3)), 8, 4, where="rec.csv")


@pytest.mark.parametrize("w,h", [(0, 1), (4, 0), (2.5, 1)])
def test_bad_sizes(w: float, h: int) -> None:
    with pytest.raises(DataError):
        count_windows(10, w, h)  # type: ignore[arg-type]


@given(labels=st.lists(st.integers(-1, 3), min_size=4, max_size=120), w=st.integers(2, 10), h=st.integers(1, 10))
@settings(max_examples=80)
def test_label_policies(labels: list[int], w: int, h: int) -> None:
    lab = np.array(labels)
    if len(lab) < w:
        return
    pure = label_windows(lab, w, h, policy="pure")
    major = label_windows(lab, w, h, policy="majority")
    for i, s in enumerate(window_starts(len(lab), w, h)):
        win = lab[s : s + w]
        if (win == win[0]).all():
            assert pure[i] == win[0]
        else:
            assert pure[i] == UNLABELLED
        if major[i] != UNLABELLED:
            assert (win == major[i]).sum() > w / 2  # a real majority, never of unlabelled samples
            assert major[i] >= 0


def test_labelled_runs() -> None:
    assert labelled_runs(np.array([0, 0, 1, 1, 1, -1, 0])) == [(0, 0, 2), (1, 2, 5), (-1, 5, 6), (0, 6, 7)]


def _rec(labels: list[int], name: str = "r", subject: int = 1) -> Recording:
    n = len(labels)
    return Recording(np.arange(n, dtype=np.float32)[:, None], ("acc_x",), ("g",), 50.0, np.array(labels, dtype=np.int16), ("a", "b"), subject, name)


def test_per_segment_windows_never_cross_segments_or_recordings() -> None:
    a = _rec([0] * 10 + [1] * 7 + [-1] * 3 + [1] * 4, "a", 1)
    b = _rec([1] * 9, "b", 2)
    ws = windows_from_recordings([a, b], 4, 2, mode="per_segment")
    # segment 0: 10 samples -> 4 windows; segment 1 (7) -> 2; unlabelled skipped; last run (4) -> 1; b: 9 -> 3
    assert len(ws) == 4 + 2 + 1 + 3
    for x, y, r, s in zip(ws.X, ws.y, ws.extra["recording"], ws.extra["start"]):
        rec = [a, b][r]
        np.testing.assert_array_equal(x[:, 0], rec.signals[s : s + 4, 0])
        assert (rec.labels[s : s + 4] == y).all()
    assert ws.subject.tolist().count(2) == 3


def test_continuous_windows_majority() -> None:
    a = _rec([0] * 6 + [1] * 6)
    ws = windows_from_recordings([a], 4, 2, mode="continuous", policy="majority")
    assert ws.y.tolist() == [0, 0, 1, 1]  # the 2/2 tie window (start 4) is dropped
    ws_pure = windows_from_recordings([a], 4, 2, mode="continuous", policy="pure")
    assert ws_pure.y.tolist() == [0, 0, 1, 1]


def test_no_window_fits_raises() -> None:
    with pytest.raises(DataError, match="no labelled window"):
        windows_from_recordings([_rec([0, 0, 0])], 4, 2)
