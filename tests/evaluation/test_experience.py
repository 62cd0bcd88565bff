"""The state-level scorer (what the user sees) on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from har_edge.data.recording import UNLABELLED
from har_edge.errors import DataError
from har_edge.evaluation.experience import (NOTHING_SHOWN, ExperienceCounts, label_changes, score_recording,
                                            shown_per_sample, summarise, transition_postures)

U = UNLABELLED
NAMES = ("WALKING", "SITTING", "STANDING", "STAND_TO_SIT")  # 0, 1, 2, 3 (a transition)
SCORED = ("WALKING", "SITTING", "STANDING")


def test_transition_postures_from_names() -> None:
    got = transition_postures(["WALKING", "STAND_TO_SIT", "SIT_TO_LIE", "LIE_TO_STAND", "RUN_TO_WALK", "SIT_TO"])
    assert got == {"STAND_TO_SIT": ("STANDING", "SITTING"), "SIT_TO_LIE": ("SITTING", "LAYING"),
                   "LIE_TO_STAND": ("LAYING", "STANDING")}


def test_shown_per_sample_holds_the_latest_publication() -> None:
    shown = shown_per_sample(np.arange(6.0), [1.0, 3.0, 3.0, 4.5], ["a", "b", "c", "d"])
    # t=0: nothing yet; t=1,2: a; t=3: the later of the two at 3.0 (c); t=4: c; t=5: d
    assert shown.tolist() == [NOTHING_SHOWN, "a", "a", "c", "c", "d"]
    assert shown_per_sample(np.arange(2.0), [], []).tolist() == [NOTHING_SHOWN, NOTHING_SHOWN]
    with pytest.raises(DataError, match="back in time"):
        shown_per_sample(np.arange(3.0), [2.0, 1.0], ["a", "b"])
    with pytest.raises(DataError, match="publication times"):
        shown_per_sample(np.arange(3.0), [1.0], ["a", "b"])


def test_label_changes_skip_gaps_and_count_transitions() -> None:
    # W W - W S2S S S - S : runs W, (gap), W, S2S, S, (gap), S -> labelled runs W W S2S S S -> 2 changes
    assert label_changes(np.array([0, 0, U, 0, 3, 1, 1, U, 1])) == 2
    assert label_changes(np.array([U, U])) == 0


def test_score_recording_by_hand() -> None:
    # 1 Hz, 12 samples: WALKING 0-3, gap 4, STANDING 5-6, STAND_TO_SIT 7-8, SITTING 9-11
    labels = np.array([0, 0, 0, 0, U, 2, 2, 3, 3, 1, 1, 1])
    times = [1.0, 3.0, 6.0, 8.0, 10.0]
    shown = ["WALKING", "SITTING", "STANDING", "uncertain", "SITTING"]
    # shown per sample: -, W, W, S, S, S, St, St, u, u, Si, Si
    c = score_recording(labels, NAMES, 1.0, times, shown, scored=SCORED)
    assert c.state_samples == {"WALKING": 4, "SITTING": 3, "STANDING": 2}
    assert c.state_correct == {"WALKING": 2, "SITTING": 2, "STANDING": 1}
    assert (c.transition_samples, c.transition_ok) == (2, 2)  # STANDING (left) at 7, uncertain at 8
    assert c.delays_by_class == {"WALKING": [1.0], "STANDING": [1.0], "SITTING": [1.0]}
    assert c.never_shown == {} and c.segments == 3
    assert (c.shown_changes, c.label_changes, c.duration_s) == (4, 3, 12.0)
    # changes published at t=3 (sample 3, WALKING), 6 (STANDING), 8 (STAND_TO_SIT), 10 (SITTING): all labelled
    assert (c.shown_changes_labelled, c.labelled_s) == (4, 11.0)
    s = summarise(c)
    assert s["state_accuracy"] == pytest.approx(round(5 / 9, 4))
    assert s["state_accuracy_per_class"] == {"WALKING": 0.5, "SITTING": round(2 / 3, 4), "STANDING": 0.5}
    assert s["worst_class_accuracy"] == 0.5 and s["transition_ok"] == 1.0
    assert s["delay_median_s"] == 1.0 and s["delay_p90_s"] == 1.0
    assert s["shown_changes_per_hour"] == pytest.approx(4 / (12 / 3600), rel=1e-3)
    assert s["flicker_ratio"] == round(4 / 3, 4)
    assert s["shown_changes_per_labelled_hour"] == pytest.approx(4 / (11 / 3600), rel=1e-3)
    assert s["shown_changes_in_unlabelled_time"] == 0.0 and s["unlabelled_time"] == round(1 / 12, 4)


def test_delay_zero_when_already_shown_and_never_shown_segments() -> None:
    labels = np.array([2, 2, 3, 1, 1, U, 0, 0])  # STANDING, STAND_TO_SIT, SITTING, gap, WALKING
    # SITTING is shown from t=2 (during the transition): delay 0 at its start; WALKING is never shown
    c = score_recording(labels, NAMES, 2.0, [0.0, 1.0], ["STANDING", "SITTING"], scored=SCORED)
    assert c.delays_by_class == {"STANDING": [0.0], "SITTING": [0.0]}
    assert c.never_shown == {"WALKING": 1}
    assert c.transition_ok == 1  # the reached posture
    assert (c.shown_changes, c.shown_changes_labelled) == (1, 1)  # at t=1 s: sample 2, STAND_TO_SIT
    gap = score_recording(labels, NAMES, 2.0, [0.0, 2.5], ["STANDING", "WALKING"], scored=SCORED)
    assert (gap.shown_changes, gap.shown_changes_labelled) == (1, 0)  # at t=2.5 s: sample 5, unlabelled
    total = ExperienceCounts()
    total.add(c)
    total.add(c)
    s = summarise(total)
    assert s["never_shown"] == 2 and s["segments"] == 6 and s["delay_median_s"] == 0.0
    assert s["state_accuracy_per_class"]["WALKING"] == 0.0 and s["worst_class"] == "WALKING"


def test_shown_changes_by_where_they_fall() -> None:
    # 1 Hz: gap 0-1, WALKING 2-3, gap 4, STAND_TO_SIT 5, SITTING 6-7, gap 8-9
    labels = np.array([U, U, 0, 0, U, 3, 1, 1, U, U])
    times = [0.0, 1.0, 3.0, 4.0, 5.0, 7.0, 9.0]
    shown = ["LAYING", "STANDING", "WALKING", "STANDING", "uncertain", "SITTING", "WALKING"]
    c = score_recording(labels, NAMES, 1.0, times, shown, scored=SCORED)
    # changes at samples 1 (before the first label), 3 (activity), 4 (between labels), 5 (transition),
    # 7 (activity), 9 (after the last label)
    assert c.shown_changes == 6
    assert c.shown_changes_by_context == {"activity": 2, "transition": 1, "unlabelled before the first label": 1,
                                          "unlabelled between labels": 1, "unlabelled after the last label": 1}
    total = ExperienceCounts()
    total.add(c)
    total.add(c)
    by = summarise(total)["shown_changes_per_hour_by_context"]
    assert by["activity"] == pytest.approx(4 / (20 / 3600), rel=1e-3)
    assert sum(by.values()) == pytest.approx(summarise(total)["shown_changes_per_hour"], rel=1e-3)
