"""The scorer behind the streaming-accuracy figures, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from har_edge.data.recording import UNLABELLED, Recording
from har_edge.evaluation.stream_scoring import activity_segments, score_stream, window_truth

U = UNLABELLED


def _rec(labels: list[int]) -> Recording:
    n = len(labels)
    return Recording(np.zeros((n, 1), np.float32), ("acc_x",), ("g",), 1.0, np.asarray(labels, np.int16), ("a", "b"))


def test_window_truth_majority_ties_unlabelled_and_edges() -> None:
    rec = _rec([0, 0, 0, 0, 1, 1, 1, 1, U, U, U, U])  # 1 Hz: sample i at t = i s
    ends = [3, 5, 7, 9, 11, 2, 12, 4.6]
    truth = window_truth(rec, ends, 4)
    # [0..3] all a; [2..5] a,a,b,b: a tie, no label has more than half -> unlabelled; [4..7] all b;
    # [6..9] b,b,-,-: b has exactly half -> unlabelled (unlabelled samples never win either);
    # [8..11] unlabelled; a window starting before the recording or ending after it -> unlabelled;
    # t=4.6 rounds to sample 5 -> [2..5] again
    assert truth.tolist() == [0, U, 1, U, U, U, U, U]
    assert window_truth(_rec([0, 1, 1, 1, 0]), [3, 4], 4).tolist() == [1, 1]  # 3 of 4 is a majority
    assert window_truth(_rec([1, 1, 1, 1]), [3.0], 4, t0_s=0.0).tolist() == [1]
    no_labels = Recording(np.zeros((4, 1), np.float32), ("acc_x",), ("g",), 1.0)
    assert window_truth(no_labels, [3], 4).tolist() == [U]


def test_score_stream_counts_uncertain_as_error_and_skips_non_classes() -> None:
    names = ("a", "b")
    activities = ["a", "b", "uncertain", "b", "a", "a"]
    truth = np.array([0, U, 1, 1, 0, 2])  # 2: a label that is not a model class (a transition): not scored
    s = score_stream(activities, truth, names)
    assert s["windows_scored"] == 4 and s["windows_total"] == 6 and s["uncertain"] == 1
    assert s["accuracy"] == pytest.approx(3 / 4)
    # per class: a precision 1 recall 1 (F1 1); b precision 1 recall 1/2 (F1 2/3); macro over true classes
    assert s["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert s["confusion_matrix"] == [[2, 0, 0], [0, 1, 1], [0, 0, 0]]


def test_score_stream_with_nothing_to_score() -> None:
    s = score_stream(["a", "b"], np.array([U, U]), ("a", "b"))
    assert s == {"accuracy": 0.0, "macro_f1": 0.0, "windows_scored": 0, "windows_total": 2, "uncertain": 0}


def test_activity_segments_collapse_runs() -> None:
    segs = activity_segments([1, 2, 3, 4, 5], ["a", "a", "b", "b", "a"])
    assert segs == [(1, 2, "a"), (2, 4, "b"), (4, 5, "a")]
    assert activity_segments([], []) == []
    assert activity_segments([7.5], ["b"]) == [(7.5, 7.5, "b")]


def test_fold_short_segments_says_what_it_folded() -> None:
    from har_edge.evaluation.stream_scoring import fold_short_segments

    segs = [(0.0, 1.0, "uncertain"), (1.0, 6.0, "walk"), (6.0, 7.0, "sit"), (7.0, 20.0, "walk"), (20.0, 21.5, "stand"),
            (21.5, 30.0, "sit")]
    rows = fold_short_segments(segs, 2.0)
    assert rows == [(0.0, 21.5, "walk", [(0.0, 1.0, "uncertain"), (6.0, 7.0, "sit"), (20.0, 21.5, "stand")]),
                    (21.5, 30.0, "sit", [])]
    assert sum(len(f) for *_, f in rows) + len(rows) == len(segs) - 1  # walk twice became one row: nothing hidden
    assert fold_short_segments([(0.0, 1.0, "a"), (1.0, 1.5, "b")], 2.0) == [(0.0, 1.0, "a", []), (1.0, 1.5, "b", [])]
