"""Shared pieces of the sensor sources: channel constants, unit/channel resolution, axis map,
rate-limited bad-input logging and :class:`_SourceBase` (stats, close flag, context management).

The public names are re-exported by :mod:`har_edge.runtime.sources`, which documents the
source specs and schemas.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from har_edge.data.csv_format import ACC_CHANNELS, DEFAULT_CHANNELS, GYRO_CHANNELS
from har_edge.data.units import normalise_unit_name, unit_scale
from har_edge.errors import ConfigError, DataError
from har_edge.runtime.samples import SampleChunk, SourceStats

__all__ = [
    "ACC_CHANNELS",
    "GYRO_CHANNELS",
    "DEFAULT_CHANNELS",
    "DEFAULT_CHUNK_SAMPLES",
    "ACCEPTED_SPECS",
]

# Every source module logs under the name it had before the split, so logging
# configuration (and caplog filters) keyed on ``har_edge.runtime.sources`` still apply.
logger = logging.getLogger("har_edge.runtime.sources")

DEFAULT_CHUNK_SAMPLES = 32
ACCEPTED_SPECS = (
    "csv:PATH",
    "stdin",
    "mqtt://[user:pass@]host[:port]/topic (or mqtts://, ws://, wss://)",
    "i2c:mpu6050[@bus[:addr]]",
    "i2c:adxl345[@bus[:addr]]",
)
_Array = NDArray[np.float64]
_S = TypeVar("_S", bound="_SourceBase")


# --------------------------------------------------------------------------- shared pieces


def _default_unit(channel: str) -> str:
    if channel.startswith("acc"):
        return "g"
    if channel.startswith("gyro"):
        return "rad/s"
    raise ConfigError(f"no default unit for channel {channel!r}; pass units= for it")


def _resolve_units(
    channel_names: Sequence[str], units: Sequence[str] | Mapping[str, str] | None
) -> tuple[str, ...]:
    """Units per channel from a sequence, a mapping (channel or "acc"/"gyro" prefix) or defaults."""
    try:
        if units is None:
            return tuple(_default_unit(c) for c in channel_names)
        if isinstance(units, Mapping):
            out = []
            for c in channel_names:
                u = units.get(c, units.get(c.split("_")[0]))
                out.append(normalise_unit_name(u) if u is not None else _default_unit(c))
            return tuple(out)
        if isinstance(units, str) or len(units) != len(channel_names):
            raise ConfigError(f"units={units!r} must give one unit per channel of {tuple(channel_names)}")
        return tuple(normalise_unit_name(u) for u in units)
    except DataError as exc:
        raise ConfigError(str(exc)) from None


def _resolve_channels(channel_names: Sequence[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    names = default if channel_names is None else tuple(channel_names)
    if not names or isinstance(channel_names, str) or len(set(names)) != len(names):
        raise ConfigError(f"channel_names={channel_names!r}: expected distinct names like {DEFAULT_CHANNELS}")
    return names


def _parse_speed(speed: float | str) -> float:
    if isinstance(speed, str) and speed.strip().lower() in ("max", "inf"):
        return math.inf
    try:
        value = float(speed)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0:
        raise ConfigError(f"speed={speed!r}; expected a positive number (1.0 = real time) or 'max'")
    return value


class _AxisMap:
    """``out[:, i] = scale[i] * values[:, index[i]]`` from ``{"acc_x": "-acc_y", ...}``."""

    def __init__(self, axis_map: Mapping[str, str], channel_names: tuple[str, ...], units: tuple[str, ...]):
        self.index = np.arange(len(channel_names))
        self.scale = np.ones(len(channel_names))
        for dst, src in axis_map.items():
            text = str(src).replace(" ", "")
            name = text.lstrip("+-")
            if dst not in channel_names or name not in channel_names:
                raise ConfigError(
                    f"axis_map entry {dst!r}: {src!r} names an unknown channel; channels are {channel_names}"
                )
            i, j = channel_names.index(dst), channel_names.index(name)
            try:
                factor = unit_scale(units[j], units[i])
            except DataError as exc:
                raise ConfigError(f"axis_map entry {dst!r}: {src!r}: {exc}") from None
            self.index[i] = j
            self.scale[i] = (-factor) if text.startswith("-") else factor

    def apply(self, values: _Array) -> _Array:
        return values[:, self.index] * self.scale


def one_line(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters with every non-printable character escaped: one log line, always."""
    cut = text[:limit]
    if cut.isprintable():
        return cut
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in cut)


class _BadInputLog:
    """Logs the first ``first`` bad inputs of a source, then one line per ``every`` more (never a traceback)."""

    def __init__(self, source: str, first: int = 5, every: int = 1000) -> None:
        self._source, self._first, self._every, self._n = source, first, every, 0
        self._lock = threading.Lock()

    def __call__(self, reason: str, detail: str, n: int = 1) -> None:
        with self._lock:
            before, self._n = self._n, self._n + n
            total = self._n
        if before < self._first or before // self._every != total // self._every:
            logger.warning(
                "%s: skipped %d bad input(s) (%s): %s [%d so far; logging the first %d, then every %dth]",
                self._source, n, reason, one_line(detail), total, self._first, self._every,
            )


class _SourceBase:
    """Stats, axis map, close flag and context management shared by every source."""

    def __init__(
        self,
        name: str,
        channel_names: tuple[str, ...],
        units: tuple[str, ...],
        *,
        nominal_rate_hz: float | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        axis_map: Mapping[str, str] | None = None,
    ) -> None:
        if isinstance(chunk_samples, bool) or not isinstance(chunk_samples, int) or chunk_samples < 1:
            raise ConfigError(f"chunk_samples={chunk_samples!r}; expected a positive integer")
        self.name = name
        self.channel_names = channel_names
        self.units = units
        self.nominal_rate_hz = nominal_rate_hz
        self.chunk_samples = chunk_samples
        self.stats = SourceStats()
        self._axis = _AxisMap(axis_map, channel_names, units) if axis_map else None
        self._stats_lock = threading.Lock()
        self._closed = threading.Event()
        self._bad_log = _BadInputLog(name)

    def _count_bad(self, reason: str, detail: str, n: int = 1) -> None:
        """Count ``n`` rejected inputs (the reason decides the counter, :mod:`har_edge.runtime.counters`) and log one line."""
        if n <= 0:
            return
        with self._stats_lock:
            self.stats.count(reason, n)
        self._bad_log(reason, detail, n)

    def _chunk(self, timestamps_s: _Array, values: _Array) -> SampleChunk:
        if self._axis is not None:
            values = self._axis.apply(values)
        with self._stats_lock:
            self.stats.samples += len(timestamps_s)
        return SampleChunk(timestamps_s, values, self.channel_names, self.units)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the source; a running ``chunks()`` ends at its next step."""
        self._closed.set()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} channels={self.channel_names} units={self.units}>"
