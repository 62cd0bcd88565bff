"""Physical plausibility of sensor values: each channel has a valid range from its unit and the sensor.

A value outside it cannot come from a working accelerometer or gyroscope (a corrupted message, a bit flip,
a unit mix-up by orders of magnitude), and one such value — finite but absurd, say 1e30 g — would push the
causal filters so far that every later window is garbage. The stream drops such samples and counts them
(``bad_samples``, reason ``implausible_value``).

Defaults cover every common MEMS part at its widest range: ±16 g of acceleration (MPU-6050, ADXL345, phones)
and ±35 rad/s of angular rate (±2000 °/s). Ranges are configurable per quantity and per channel, in g and
rad/s; they are converted to whatever unit the channel is fed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from har_edge.data.units import unit_quantity, unit_scale
from har_edge.errors import ConfigError, DataError

__all__ = ["PlausibilityLimits"]


@dataclass(frozen=True)
class PlausibilityLimits:
    """Largest plausible ``|value|`` per quantity (``acc_max_g``, ``gyro_max_rad_s``) or per channel
    (``channels={"acc_z": 4.0}``, in g or rad/s by the channel's quantity); ``enabled=False`` turns the check off."""

    acc_max_g: float = 16.0
    gyro_max_rad_s: float = 35.0
    channels: Mapping[str, float] = field(default_factory=dict)
    enabled: bool = True

    def __post_init__(self) -> None:
        for name, value in (("acc_max_g", self.acc_max_g), ("gyro_max_rad_s", self.gyro_max_rad_s),
                            *((f"channels[{k!r}]", v) for k, v in dict(self.channels).items())):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"plausibility {name}={value!r}; expected a positive number")

    def bounds(self, names: Sequence[str], units: Sequence[str]) -> NDArray[np.float64]:
        """``(c,)`` largest plausible ``|value|`` of each channel in its unit (``inf``: unchecked)."""
        out = np.full(len(names), np.inf)
        if not self.enabled:
            return out
        base = {"acceleration": ("g", self.acc_max_g), "angular_rate": ("rad/s", self.gyro_max_rad_s)}
        for i, (name, unit) in enumerate(zip(names, units)):
            try:
                quantity = unit_quantity(unit)
            except (DataError, KeyError):
                continue
            base_unit, limit = base[quantity]
            out[i] = float(self.channels.get(name, limit)) * unit_scale(base_unit, unit)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> PlausibilityLimits:
        """From a ``[plausibility]`` TOML table (keys as the fields)."""
        unknown = sorted(set(d) - {"acc_max_g", "gyro_max_rad_s", "channels", "enabled"})
        if unknown:
            raise ConfigError(f"[plausibility]: unknown key(s) {unknown}; allowed: acc_max_g, gyro_max_rad_s, channels, enabled")
        return cls(**d)  # type: ignore[arg-type]
