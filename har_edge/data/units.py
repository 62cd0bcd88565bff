"""Physical units of sensor channels and series columns, and conversion between them.

Accelerometer channels are in ``g`` or ``m/s^2``; gyroscope channels in ``rad/s`` or ``deg/s``.
Forecast series declare theirs too (``degC``, ``hPa``, ``m/s``, ``IDR``, ``IDR/USD``, ...): a unit
not listed here is refused, so a column's unit is never a guess. Only multiplicative conversions
exist (no °F ↔ °C offsets).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from har_edge.errors import DataError

__all__ = ["STANDARD_GRAVITY_MS2", "KNOWN_UNITS", "normalise_unit_name", "unit_quantity", "unit_scale", "convert_units"]

STANDARD_GRAVITY_MS2 = 9.80665

# unit -> (quantity, factor to the base unit of that quantity); base units: g, rad/s.
_UNITS: dict[str, tuple[str, float]] = {
    "g": ("acceleration", 1.0),
    "m/s^2": ("acceleration", 1.0 / STANDARD_GRAVITY_MS2),
    "mg": ("acceleration", 1e-3),
    "rad/s": ("angular_rate", 1.0),
    "deg/s": ("angular_rate", math.pi / 180.0),
    # series columns (forecasting); base units: degC, hPa, m/s, mm, h, ug/m^3, %, 1 and one per currency
    "degC": ("temperature", 1.0),
    "K": ("temperature_kelvin", 1.0),
    "hPa": ("pressure", 1.0),
    "Pa": ("pressure", 0.01),
    "kPa": ("pressure", 10.0),
    "m/s": ("speed", 1.0),
    "km/h": ("speed", 1.0 / 3.6),
    "mm": ("length", 1.0),
    "h": ("duration", 1.0),
    "ug/m^3": ("concentration", 1.0),
    "%": ("fraction", 1.0),
    "1": ("count", 1.0),
    "IDR": ("currency_idr", 1.0),
    "USD": ("currency_usd", 1.0),
    "EUR": ("currency_eur", 1.0),
    "IDR/USD": ("rate_idr_usd", 1.0),
    "USD/EUR": ("rate_usd_eur", 1.0),
    "IDR/EUR": ("rate_idr_eur", 1.0),
    "shares": ("count_shares", 1.0),
}
_ALIASES = {"m/s2": "m/s^2", "m/s²": "m/s^2", "ms2": "m/s^2", "ms^-2": "m/s^2", "dps": "deg/s", "°/s": "deg/s",
            "°C": "degC", "C": "degC", "celsius": "degC", "µg/m^3": "ug/m^3", "µg/m³": "ug/m^3", "ug/m3": "ug/m^3",
            "hpa": "hPa", "mbar": "hPa", "count": "1", "": "1"}

KNOWN_UNITS = tuple(_UNITS)


def normalise_unit_name(unit: str) -> str:
    """Return the canonical spelling of ``unit`` (e.g. ``"m/s2"`` → ``"m/s^2"``)."""
    key = unit.strip()
    key = _ALIASES.get(key, key)
    if key not in _UNITS:
        raise DataError(f"unknown unit {unit!r}; expected one of {', '.join(KNOWN_UNITS)}")
    return key


def unit_quantity(unit: str) -> str:
    """What ``unit`` measures: ``"acceleration"`` or ``"angular_rate"``."""
    return _UNITS[normalise_unit_name(unit)][0]


def unit_scale(from_unit: str, to_unit: str) -> float:
    """Multiplicative factor that converts values in ``from_unit`` to ``to_unit``."""
    q_from, f_from = _UNITS[normalise_unit_name(from_unit)]
    q_to, f_to = _UNITS[normalise_unit_name(to_unit)]
    if q_from != q_to:
        raise DataError(f"cannot convert {from_unit!r} ({q_from}) to {to_unit!r} ({q_to})")
    return f_from / f_to


def convert_units(
    values: NDArray[np.floating], from_units: tuple[str, ...] | list[str], to_units: tuple[str, ...] | list[str]
) -> NDArray[np.float32]:
    """Convert ``values`` of shape ``(n, c)`` column by column; returns float32 ``(n, c)``."""
    if len(from_units) != len(to_units) or values.shape[-1] != len(from_units):
        raise DataError(
            f"unit lists do not match the data: {values.shape[-1]} columns, "
            f"{len(from_units)} source units, {len(to_units)} target units"
        )
    scale = np.array([unit_scale(a, b) for a, b in zip(from_units, to_units)], dtype=np.float64)
    return (np.asarray(values, dtype=np.float64) * scale).astype(np.float32)
