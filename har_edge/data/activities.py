"""What activity label names mean: postures and postural transitions (``STAND_TO_SIT`` …), by name.

Shared by the offline scoring (:mod:`har_edge.evaluation.experience`) and the runtime's HMM smoother
(:mod:`har_edge.runtime.decoding`), so both read the same names the same way. Postures are the labels
that start with ``SIT``, ``STAND``, ``LAY`` or ``LIE`` (``SITTING``, ``standing``, ``LAYING`` …); a
postural transition is named ``<A>_TO_<B>`` with ``A``, ``B`` in ``STAND``, ``SIT``, ``LIE``.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["POSTURE_NAMES", "posture_of", "transition_postures"]

POSTURE_NAMES = {"STAND": "STANDING", "SIT": "SITTING", "LIE": "LAYING", "LAY": "LAYING"}
"""Posture word → the posture label HAPT (and UCI HAR) use."""


def posture_of(label: str) -> str | None:
    """``"SITTING"``, ``"STANDING"`` or ``"LAYING"`` for a posture label (any case, ``LYING`` too), else None."""
    up = label.upper()
    if up.startswith("LY"):
        return "LAYING"
    return next((name for word, name in POSTURE_NAMES.items() if up.startswith(word) and "_TO_" not in up), None)


def transition_postures(label_names: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{"STAND_TO_SIT": ("STANDING", "SITTING"), ...}`` for the labels named ``<A>_TO_<B>`` (HAPT's transitions)."""
    out = {}
    for name in label_names:
        parts = name.upper().split("_TO_")
        if len(parts) == 2 and all(p in POSTURE_NAMES for p in parts):
            out[name] = (POSTURE_NAMES[parts[0]], POSTURE_NAMES[parts[1]])
    return out
