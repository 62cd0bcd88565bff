"""Is the input plausible? The one check of declared units and timestamp scales, for devices and recordings.

Two physical facts expose a wrong declaration:

* **gravity**: the median magnitude of the total acceleration over a few seconds is about 1 g
  (1.0–1.2 g resting or walking, up to ~2 g jogging with a watch: WISDM's jogging reads 2.01 g; the band
  0.35–3.5 g keeps those and still catches every unit mix-up, which is a factor of ~10 or 1000).
  ~9.8 means m/s², ~1000 mg, ~0.1 g read as m/s²; ~0 means gravity was removed (a "linear acceleration" stream), which no unit fixes.
* **sample interval**: the median interval between timestamps gives a sample rate near the model's
  rate (a tenth to 40×: the stream resamples). 50 Hz in milliseconds reads as 0.05 Hz; microseconds
  and nanoseconds are further off; seconds read as milliseconds look like 50 kHz.

Each check returns a :class:`Finding` (the likely cause and the fix) or ``None``. ``har-edge run`` refuses
or converts by them (:mod:`har_edge.runtime.input_check`), ``har-edge record`` warns, and training on
recordings (:mod:`har_edge.data.recordings`) refuses. :func:`rate_mismatch` is the weaker "samples missing?"
warning of a rate that is plausible but not the one expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from har_edge.data.csv_format import ACC_CHANNELS
from har_edge.data.units import normalise_unit_name, unit_scale
from har_edge.errors import ConfigError

__all__ = ["TIMESTAMP_UNITS", "UNIT_NAMES", "ACC_CHANNELS", "GRAVITY_BAND_G", "RATE_BAND", "Finding", "check_gravity",
           "check_sample_interval",
           "check_rate", "rate_mismatch"]

TIMESTAMP_UNITS: dict[str, float] = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
"""Seconds per timestamp unit."""
GRAVITY_BAND_G = (0.35, 3.5)
RATE_BAND = (0.1, 40.0)  # plausible source rate / model rate
_ACC_UNITS = ("g", "m/s^2", "mg")


@dataclass(frozen=True)
class Finding:
    """One implausibility: ``what`` is ``"acc_unit"``, ``"gravity"`` or ``"timestamp_unit"``.

    ``likely`` is the unit the data look like (``None`` when no unit explains them); ``message``
    names the observation and the likely cause; ``declare`` the ``har-edge run``/``record`` option that
    states the right unit (empty when no unit explains the data).
    """

    what: str
    observed: float
    likely: str | None
    message: str
    declare: str = ""


def check_gravity(acc: NDArray[np.floating], unit: str) -> Finding | None:
    """Check ``acc`` ``(n, 3)`` (x, y, z in ``unit``): median magnitude about 1 g? ``None`` when plausible."""
    a = np.asarray(acc, dtype=np.float64)
    a = a[np.isfinite(a).all(axis=1)]
    if len(a) < 5:
        return None
    declared = normalise_unit_name(unit)
    magnitude_g = float(np.median(np.linalg.norm(a, axis=1))) * unit_scale(declared, "g")
    lo, hi = GRAVITY_BAND_G
    if lo <= magnitude_g <= hi:
        return None
    raw = magnitude_g / unit_scale(declared, "g")  # the magnitude in the numbers as written
    fits = [(abs(math.log(raw * unit_scale(u, "g"))), u) for u in _ACC_UNITS
            if u != declared and lo <= raw * unit_scale(u, "g") <= hi]
    in_g = "" if declared == "g" else f" ({magnitude_g:.3g} g)"
    seen = f"the median acceleration magnitude over the first {len(a)} samples is {raw:.3g} {declared}{in_g}"
    if fits:
        likely = min(fits)[1]
        return Finding("acc_unit", magnitude_g, likely,
                       f"{seen}, but gravity alone is 1 g: the values look like {likely}, not {declared}",
                       f"--units acc={likely} (or [source_options] units = {{acc = \"{likely}\"}})")
    if magnitude_g < lo:
        return Finding("gravity", magnitude_g, None,
                       f"{seen}, but gravity alone is 1 g: gravity seems to be removed (a 'linear acceleration' or "
                       "'user acceleration' stream?). The model needs the total acceleration, gravity included "
                       "(e.g. Android's TYPE_ACCELEROMETER); no unit conversion fixes this")
    return Finding("gravity", magnitude_g, None,
                   f"{seen}: no acceleration unit ({', '.join(_ACC_UNITS)}) brings that to about 1 g. Check the columns "
                   "(--columns) and the sensor's scale")


def check_sample_interval(timestamps: NDArray[np.floating], unit: str, expected_rate_hz: float) -> Finding | None:
    """Check that timestamps ``(n,)`` in ``unit`` give a rate near ``expected_rate_hz``; ``None`` when plausible."""
    if unit not in TIMESTAMP_UNITS:
        raise ConfigError(f"timestamp unit {unit!r}; expected one of {', '.join(TIMESTAMP_UNITS)}")
    t = np.asarray(timestamps, dtype=np.float64)
    dt = np.diff(t[np.isfinite(t)])
    dt = dt[dt > 0]
    if dt.size < 4:
        return None
    rate = 1.0 / (float(np.median(dt)) * TIMESTAMP_UNITS[unit])
    return check_rate(rate, unit, expected_rate_hz,
                      f"the median interval between the first {dt.size + 1} timestamps is {float(np.median(dt)):.4g} {unit} "
                      f"({rate:.4g} Hz)")


def check_rate(rate_hz: float, unit: str, expected_rate_hz: float, seen: str | None = None) -> Finding | None:
    """Is ``rate_hz`` (timestamps read in ``unit``) plausible for a model at ``expected_rate_hz``?"""
    lo, hi = RATE_BAND
    ratio = rate_hz / expected_rate_hz
    if lo <= ratio <= hi or not math.isfinite(ratio) or ratio <= 0:
        return None
    seen = seen or f"the timestamps, read as {UNIT_NAMES[unit]}, give {rate_hz:.4g} Hz"
    fits = []
    for other, seconds in TIMESTAMP_UNITS.items():
        r = rate_hz * TIMESTAMP_UNITS[unit] / seconds
        if other != unit and lo <= r / expected_rate_hz <= hi:
            fits.append((abs(math.log(r / expected_rate_hz)), other, r))
    if fits:
        _, likely, r = min(fits)
        return Finding("timestamp_unit", rate_hz, likely,
                       f"{seen}, but the model expects about {expected_rate_hz:g} Hz: "
                       f"the timestamps look like {UNIT_NAMES[likely]} ({r:.4g} Hz)",
                       f"--timestamp-unit {likely} (or timestamp_unit in the device config)")
    return Finding("timestamp_unit", rate_hz, None,
                   f"{seen}, but the model expects about {expected_rate_hz:g} Hz and no timestamp unit "
                   f"({', '.join(TIMESTAMP_UNITS)}) explains it; check the timestamp column (--columns timestamp=NAME)")


UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


def rate_mismatch(measured_hz: float, expected_hz: float | None, *, tolerance: float = 0.1) -> str | None:
    """A warning when a measured rate differs from the expected one by more than ``tolerance`` (samples lost?)."""
    if expected_hz is None or not expected_hz > 0 or not np.isfinite(measured_hz):
        return None
    if abs(measured_hz - expected_hz) > tolerance * expected_hz:
        return (f"timestamps give {measured_hz:.1f} Hz but {expected_hz:g} Hz was expected: samples are missing, "
                "or the sensor runs at another rate")
    return None
