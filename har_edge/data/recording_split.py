"""Train / validation / test split of recorded data by person, session or time block — never by window.

Every window belongs to a *group*: its person (``split_by = "person"``), its session (one recording,
``"session"``) or a block of ``split_block_s`` seconds of one recording (``"time"``: for one person with one
session per activity, e.g. personalisation). Whole groups go to one split, so no two windows of different
splits overlap in time. Recordings whose sidecar says ``split = "test"`` are the test set (like Edge
Impulse's test category); without such marks the config's ``test_groups`` or an automatic choice decides.

The automatic choice is seeded and stratified: for each label (fewest groups first) about
:data:`HOLD_OUT_FRACTION` of the groups that have it (at least one) are held out, never the last group of a
label still in training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from har_edge.data.recording import Recording, WindowSet
from har_edge.errors import DataError

__all__ = ["HOLD_OUT_FRACTION", "MIN_TRAIN_WINDOWS", "GroupedWindows", "cut_blocks", "choose_held_out", "split_groups"]

log = logging.getLogger(__name__)

HOLD_OUT_FRACTION = 0.2
MIN_TRAIN_WINDOWS = 10  # per label: fewer is "a class with too little data"


@dataclass(frozen=True)
class GroupedWindows:
    """Windows with ``group (n,)`` (group name per window) and the sidecars' marks ``marked_test (n,)``,
    ``marked_train (n,)`` (never chosen for test)."""

    windows: WindowSet
    group: NDArray[np.str_]
    marked_test: NDArray[np.bool_]
    split_by: str
    persons: tuple[str, ...]
    marked_train: NDArray[np.bool_] | None = None


def cut_blocks(rec: Recording, block_samples: int) -> list[Recording]:
    """``rec`` cut into consecutive pieces of ``block_samples`` (the last may be shorter)."""
    out = []
    for k, s in enumerate(range(0, rec.n_samples, block_samples)):
        e = min(s + block_samples, rec.n_samples)
        out.append(Recording(rec.signals[s:e], rec.channel_names, rec.units, rec.sample_rate_hz,
                             None if rec.labels is None else rec.labels[s:e], rec.label_names, rec.subject,
                             f"{rec.name} block {k + 1}"))
    return out


def choose_held_out(groups: list[str], labels_of: dict[str, set[int]], *, fraction: float, seed: int) -> set[str]:
    """Seeded, label-stratified choice of ``groups`` to hold out; never the last group of a label."""
    rng = np.random.default_rng(seed)
    order = [groups[i] for i in rng.permutation(len(groups))]
    remaining = {lab: sum(lab in labels_of[g] for g in groups) for g in groups for lab in labels_of[g]}
    chosen: set[str] = set()
    for lab in sorted(remaining, key=lambda lab: (remaining[lab], lab)):
        have = [g for g in order if lab in labels_of[g]]
        target = max(1, int(round(fraction * len(have))))
        taken = sum(g in chosen for g in have)
        for g in have:
            if taken >= target:
                break
            if g in chosen or any(remaining[other] <= 1 for other in labels_of[g]):
                continue
            chosen.add(g)
            taken += 1
            for other in labels_of[g]:
                remaining[other] -= 1
    return chosen


def _named(groups: set[str], names: tuple[str, ...], what: str, split_by: str) -> set[str]:
    unknown = sorted(set(names) - groups)
    if unknown:
        raise DataError(f"data.{what} names {unknown}, which are not {split_by}s of the recordings; "
                        f"{split_by}s: {sorted(groups)[:20]}")
    return set(names)


def split_groups(gw: GroupedWindows, *, test_groups: tuple[str, ...], validation_groups: tuple[str, ...],
                 seed: int, validation_fraction: float = HOLD_OUT_FRACTION
                 ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.bool_], str]:
    """Masks ``(train, validation, test)`` over ``gw.windows`` and a one-line description of the split.

    ``validation_fraction`` 0: no validation groups (all that is not test trains; the validation mask is empty).
    """
    by = gw.split_by
    unit = {"person": "person(s)", "session": "session(s)"}.get(by, "block(s)")
    if by == "person" and len(gw.persons) < 2:
        raise DataError(f"the recordings are of one person only ({gw.persons[0]}): a split by person needs several "
                        "people; use [data] split_by = \"session\" or \"time\" (or fine-tune a trained model with "
                        "[train] init_from)")
    y = gw.windows.y
    pool = sorted(set(gw.group[~gw.marked_test].tolist()))
    labels_of = {g: set(np.unique(y[(gw.group == g) & ~gw.marked_test]).tolist()) for g in pool}
    if gw.marked_test.any():
        if test_groups:
            raise DataError("recordings are marked split = \"test\" in their sidecars and data.test_groups is set; use one")
        test = set()
        test_mask = gw.marked_test.copy()
        test_what = f"{len(set(gw.group[gw.marked_test].tolist()))} {unit} of recordings marked test"
    else:
        kept = set() if gw.marked_train is None else set(gw.group[gw.marked_train].tolist())  # split = "train"
        candidates = [g for g in pool if g not in kept]
        test = _named(set(pool), test_groups, "test_groups", by) if test_groups else \
            choose_held_out(candidates, {g: labels_of[g] for g in candidates}, fraction=HOLD_OUT_FRACTION, seed=seed)
        test_mask = np.isin(gw.group, sorted(test))
        test_what = f"{len(test)} {unit}" + ("" if test_groups else " (automatic)")
    rest = [g for g in pool if g not in test]
    if validation_groups:
        val = _named(set(rest), validation_groups, "validation_groups", by)
    elif validation_fraction > 0:
        val = choose_held_out(rest, {g: labels_of[g] for g in rest}, fraction=validation_fraction, seed=seed + 1)
    else:
        val = set()
    val_mask = np.isin(gw.group, sorted(val)) & ~test_mask
    train_mask = ~test_mask & ~val_mask
    n_train = len(rest) - len(val)
    for name, mask, n in (("train", train_mask, n_train), ("validation", val_mask, len(val)), ("test", test_mask, None)):
        if not mask.any() and not (name == "validation" and validation_fraction == 0 and not validation_groups):
            raise DataError(f"the {name} split is empty: {len(pool)} {unit} to split ({', '.join(pool[:8])}); a split by "
                            f"{by} needs at least 3 (train, validation, test) — record more, mark test recordings with "
                            "`har-edge record --split test`, or use another [data] split_by")
    _check_classes(gw.windows, train_mask, val_mask, test_mask)
    desc = (f"split by {by}: train {n_train} {unit} / validation {len(val)} / test {test_what}; "
            f"windows {int(train_mask.sum())} / {int(val_mask.sum())} / {int(test_mask.sum())}")
    return train_mask, val_mask, test_mask, desc


def _check_classes(ws: WindowSet, train: NDArray[np.bool_], val: NDArray[np.bool_], test: NDArray[np.bool_]) -> None:
    """A label with too little training data, or seen only in test, is an error (naming the label)."""
    per_window_s = ws.window_samples / ws.sample_rate_hz
    for i, name in enumerate(ws.label_names):
        n_train = int((ws.y[train] == i).sum())
        if n_train < MIN_TRAIN_WINDOWS:
            where = f"{int((ws.y == i).sum())} window(s) of it in all splits"
            raise DataError(f"label {name!r} has too little training data: {n_train} training window(s) ({where}); "
                            f"need at least {MIN_TRAIN_WINDOWS} windows of {per_window_s:g} s — record more of it, or "
                            "leave it out with [data] labels = [...]")
        for split, mask in (("validation", val), ("test", test)):
            if mask.any() and not (ws.y[mask] == i).any():  # an empty validation split is asked for, not a gap
                log.warning("label %r has no %s window: its %s accuracy is not measured", name, split, split)
