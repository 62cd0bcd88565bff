"""Plausibility hints for recorded input: do the units and the timestamps look right?

An accelerometer that includes gravity reads about 1 g in magnitude on average, whatever it does (the
median of ``|acc|`` over seconds of walking or sitting is ~1.0–1.2 g, up to ~2 g jogging with a watch). A median of
~9.8 "g" means m/s² declared as g; ~0.1 means g declared as m/s²; ~0 means the gravity was removed
(a phone's "linear acceleration"). Timestamps are seconds: a median step of 20 "s" means milliseconds.
``har-edge record`` shows these as warnings while recording; training on recordings turns a unit hint
into an error. (A device-side check for ``har-edge run`` may replace these functions; keep the messages.)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["GRAVITY_RANGE_G", "gravity_hint", "timestamp_hint", "rate_hint"]

GRAVITY_RANGE_G = (0.35, 3.5)  # plausible median |acc| (g) with gravity: ~1 g, ~2 g jogging with a watch; units errors are x10


def gravity_hint(acc_g: NDArray[np.floating], *, declared: str = "g") -> str | None:
    """A message when the median ``|acc|`` of ``acc_g`` ``(n, 3)`` (converted to g from ``declared``) is not ~1 g."""
    if len(acc_g) == 0:
        return None
    median = float(np.median(np.linalg.norm(np.asarray(acc_g, dtype=np.float64), axis=1)))
    lo, hi = GRAVITY_RANGE_G
    if lo <= median <= hi:
        return None
    guess = ""
    if 6.0 <= median <= 16.0:
        guess = "; it looks like m/s^2 declared as g (declare the units m/s^2)"
    elif 0.06 <= median <= 0.16:
        guess = "; it looks like g declared as m/s^2 (declare the units g)"
    elif 600 <= median <= 1600:
        guess = "; it looks like milli-g declared as g (declare the units mg)"
    elif median < 0.3:
        guess = "; gravity seems to be missing (a 'linear acceleration' sensor?): record acceleration including gravity"
    return f"median |acc| is {median:.3g} g (declared {declared}); an accelerometer with gravity reads about 1 g{guess}"


def timestamp_hint(median_step_s: float) -> str | None:
    """A message when timestamps (read as seconds) step by an implausible amount per sample."""
    if not np.isfinite(median_step_s) or median_step_s <= 0:
        return "timestamps do not increase"
    if 1.0 <= median_step_s < 1000.0:
        return f"timestamps step by {median_step_s:.4g} per sample; they look like milliseconds (they must be seconds)"
    if median_step_s >= 1000.0:
        return f"timestamps step by {median_step_s:.4g} per sample; they look like micro- or nanoseconds (they must be seconds)"
    if median_step_s < 1e-4:
        return f"timestamps step by {median_step_s:.3g} s per sample (> 10 kHz); are they in seconds?"
    return None


def rate_hint(measured_hz: float, expected_hz: float | None, *, tolerance: float = 0.1) -> str | None:
    """A message when the rate measured from timestamps differs from the expected one by more than ``tolerance``."""
    if expected_hz is None or not expected_hz > 0 or not np.isfinite(measured_hz):
        return None
    if abs(measured_hz - expected_hz) > tolerance * expected_hz:
        return (f"timestamps give {measured_hz:.1f} Hz but {expected_hz:g} Hz was expected: samples are missing, "
                "or the sensor runs at another rate")
    return None
