"""Sensor sources: where samples come from before the streaming classifier sees them.

Every source declares ``channel_names``, ``units`` (as they arrive, no conversion: the
classifier converts with :mod:`har_edge.data.units`), ``nominal_rate_hz`` and ``stats``, and
yields :class:`~har_edge.runtime.samples.SampleChunk` objects from ``chunks()``. Bad input
(unparsable rows, NaN, repeated or backwards timestamps, malformed messages, failed bus
reads) is counted in ``stats`` with a reason, logged rate-limited and skipped; it never ends
the stream. Open one with :func:`open_source`::

    csv:PATH                         replay a recording (speed=1.0 real time, k, or "max")
    stdin                            CSV or JSON lines from a text stream (default sys.stdin)
    mqtt://[user:pass@]host[:port]/topic   subscribe (also mqtts://, ws://, wss://)
    i2c:mpu6050[@bus[:addr]]         poll an MPU-6050 (default bus 1, 0x68)
    i2c:adxl345[@bus[:addr]]         poll an ADXL345 (default bus 1, 0x53)

CSV schema: a header ``timestamp,acc_x,acc_y,acc_z[,gyro_x,gyro_y,gyro_z][,label]``;
timestamp in s, acceleration in g, angular rate in rad/s unless ``units=`` says otherwise.
Other header names are mapped with ``columns={"acc_x": "ax", ...}`` (canonical → file name).

JSON sample schema (stdin lines and MQTT payloads)::

    {"t": 12.34, "acc": [x, y, z], "gyro": [x, y, z]}          # nested; "timestamp" = "t"
    {"timestamp": 12.34, "acc_x": x, "acc_y": y, ..., "gyro_z": z}   # flat channel names
    {"samples": [<sample>, <sample>, ...]}                        # batch of either form

``t`` is in seconds; values are in the source's declared ``units``; extra keys (``label``)
are ignored. Each JSON sample must carry every declared channel: the default channels are
the six ``acc_*``/``gyro_*`` ones, so accelerometer-only input needs
``channel_names=ACC_CHANNELS``.

Sensor Logger (Kelvin Choi's iOS/Android app, HTTP push / MQTT publish) messages
``{"messageId", "sessionId", "deviceId", "payload": [{"name", "time", "values": {x,y,z}}]}``
are decoded by :func:`parse_sensor_logger` (see there for the mapping). Its units are
m/s^2 and rad/s; an MQTT source converts them to its declared units.

``axis_map={"acc_x": "-acc_y", "acc_y": "acc_x"}`` remaps or flips axes of a differently
mounted sensor (target ← [sign] source channel; unlisted channels pass through).

``stats.reasons`` keys: ``wrong_field_count``, ``non_numeric``, ``non_finite``,
``duplicate_timestamp``, ``non_increasing_timestamp``, ``missing_field``, ``invalid_sample``
(bad samples); ``invalid_json``, ``invalid_message``, ``no_samples`` (bad messages; every
MQTT message that yields nothing counts as one); Sensor Logger: ``invalid_entry``,
``accelerometer_without_gravity``, ``missing_gyroscope``, ``unpaired_gyroscope``; live
sources: ``queue_overflow``, ``i2c_read_error``, ``overrun``.
"""

from __future__ import annotations

import io
import json
import logging
import math
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, TextIO, TypeVar, runtime_checkable
from urllib.parse import unquote, urlsplit

import numpy as np
from numpy.typing import NDArray

from har_edge.data.units import normalise_unit_name, unit_scale
from har_edge.errors import BackendNotAvailable, ConfigError, DataError, SourceError
from har_edge.runtime.samples import SampleChunk, SourceStats

__all__ = [
    "ACC_CHANNELS",
    "GYRO_CHANNELS",
    "DEFAULT_CHANNELS",
    "DEFAULT_CHUNK_SAMPLES",
    "Source",
    "open_source",
    "CsvReplaySource",
    "StdinSource",
    "MqttSource",
    "parse_json_samples",
    "parse_sensor_logger",
]

logger = logging.getLogger(__name__)

ACC_CHANNELS = ("acc_x", "acc_y", "acc_z")
GYRO_CHANNELS = ("gyro_x", "gyro_y", "gyro_z")
DEFAULT_CHANNELS = ACC_CHANNELS + GYRO_CHANNELS
DEFAULT_CHUNK_SAMPLES = 32
ACCEPTED_SPECS = (
    "csv:PATH",
    "stdin",
    "mqtt://[user:pass@]host[:port]/topic (or mqtts://, ws://, wss://)",
    "i2c:mpu6050[@bus[:addr]]",
    "i2c:adxl345[@bus[:addr]]",
)
_BLOCK_BYTES = 4_000_000  # CSV lines read and parsed per numpy call
_Array = NDArray[np.float64]
_S = TypeVar("_S", bound="_SourceBase")


@runtime_checkable
class Source(Protocol):
    """What the streaming classifier consumes; ``chunks()`` ends with the data or at ``close()``."""

    channel_names: tuple[str, ...]
    units: tuple[str, ...]
    nominal_rate_hz: float | None
    stats: SourceStats

    def chunks(self) -> Iterator[SampleChunk]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Source: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class _BadInput(DataError):
    """One rejected sample or message; ``reason`` is the counter key in ``SourceStats``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


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


class _BadInputLog:
    """Logs the first ``first`` bad inputs of a source, then one line per ``every`` more."""

    def __init__(self, source: str, first: int = 5, every: int = 1000) -> None:
        self._source, self._first, self._every, self._n = source, first, every, 0

    def __call__(self, reason: str, detail: str, n: int = 1) -> None:
        before, self._n = self._n, self._n + n
        if before < self._first or before // self._every != self._n // self._every:
            logger.warning(
                "%s: skipped %d bad input(s) (%s): %s [%d so far; logging the first %d, then every %dth]",
                self._source, n, reason, detail[:200], self._n, self._first, self._every,
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

    def _count_bad(self, reason: str, detail: str, n: int = 1, *, message: bool = False) -> None:
        if n <= 0:
            return
        with self._stats_lock:
            if message:
                self.stats.bad_messages += n
            else:
                self.stats.bad_samples += n
            self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + n
        self._bad_log(reason, detail, n)

    def _chunk(self, timestamps_s: _Array, values: _Array) -> SampleChunk:
        if self._axis is not None:
            values = self._axis.apply(values)
        with self._stats_lock:
            self.stats.samples += len(timestamps_s)
        return SampleChunk(timestamps_s, values, self.channel_names, self.units)

    def _keep_increasing(self, t: _Array, last_t: float) -> NDArray[np.bool_]:
        """Mask of samples whose timestamp exceeds every earlier one (others counted bad)."""
        prev = np.maximum.accumulate(np.concatenate(([last_t], t[:-1])))
        keep = t > prev
        if not keep.all():
            dup = t == prev
            self._count_bad("duplicate_timestamp", f"t={t[dup][:3].tolist()}", int(dup.sum()))
            back = ~keep & ~dup
            self._count_bad(
                "non_increasing_timestamp", f"t={t[back][:3].tolist()} after {prev[back][:1].tolist()}",
                int(back.sum()),
            )
        return keep

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


# --------------------------------------------------------------------------- CSV replay


def _split_header(line: str) -> list[str]:
    return [h.strip().strip('"').strip() for h in line.strip().split(",")]


def _column_plan(
    header: list[str],
    channel_names: Sequence[str] | None,
    columns: Mapping[str, str] | None,
    where: str,
) -> tuple[tuple[str, ...], int, list[int], int | None]:
    """Pick ``(channel_names, timestamp index, channel indices, label index)`` from a header."""
    columns = dict(columns or {})
    found = {name: i for i, name in enumerate(header)}
    if len(found) != len(header):
        raise SourceError(f"{where}: duplicate column names in header {','.join(header)}")

    def col(canonical: str) -> str:
        return columns.get(canonical, canonical)

    wanted: tuple[str, ...]
    if channel_names is None:
        wanted = DEFAULT_CHANNELS if any(col(c) in found for c in GYRO_CHANNELS) else ACC_CHANNELS
    else:
        wanted = _resolve_channels(channel_names, DEFAULT_CHANNELS)
    missing = [col(c) for c in ("timestamp", *wanted) if col(c) not in found]
    if missing:
        raise SourceError(
            f"{where}: missing column(s) {', '.join(missing)}; header found: {','.join(header)} "
            f"(expected timestamp,{','.join(wanted)}[,label]; map other names with columns={{...}})"
        )
    label = found.get(col("label"))
    return wanted, found[col("timestamp")], [found[col(c)] for c in wanted], label


class CsvReplaySource(_SourceBase):
    """Replays a CSV recording; ``speed`` 1.0 = real time, k = k× faster, ``"max"`` = no pacing.

    ``last_labels`` holds the ``(n,)`` label strings of the chunk last yielded when the file
    has a ``label`` column (``None`` otherwise); labels never reach the values.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        speed: float | str = 1.0,
        channel_names: Sequence[str] | None = None,
        units: Sequence[str] | Mapping[str, str] | None = None,
        columns: Mapping[str, str] | None = None,
        axis_map: Mapping[str, str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ) -> None:
        self.path = Path(path)
        self.speed = _parse_speed(speed)
        if not self.path.is_file():
            raise SourceError(f"CSV recording not found: {str(self.path)!r}")
        try:
            with self.path.open(encoding="utf-8-sig", errors="replace") as f:
                header_line, self._header_lineno = "", 0
                while not header_line.strip():
                    header_line = f.readline()
                    self._header_lineno += 1
                    if not header_line:
                        raise SourceError(f"{str(self.path)!r} is empty; expected a header line")
                peek = f.readlines(64_000)
        except OSError as exc:
            raise SourceError(f"cannot read CSV recording {str(self.path)!r}: {exc}") from None
        header = _split_header(header_line)
        try:
            float(header[0])
        except ValueError:
            pass
        else:
            raise SourceError(
                f"{str(self.path)!r} has no header (first line {header_line.strip()[:80]!r}); "
                f"expected a first line like timestamp,{','.join(DEFAULT_CHANNELS)}"
            )
        names, self._t_col, self._ch_cols, self._label_col = _column_plan(
            header, channel_names, columns, repr(str(self.path))
        )
        self._n_fields = len(header)
        self._dirty = False  # the previous block had unparsable lines
        self.last_labels: NDArray[np.str_] | None = None
        super().__init__(
            f"csv:{self.path}",
            names,
            _resolve_units(names, units),
            nominal_rate_hz=self._estimate_rate(peek),
            chunk_samples=chunk_samples,
            axis_map=axis_map,
        )

    def _estimate_rate(self, lines: list[str]) -> float | None:
        times = []
        for line in lines[:500]:
            try:
                times.append(float(line.split(",")[self._t_col]))
            except (ValueError, IndexError):
                continue
        dt = np.diff(np.asarray(times))
        dt = dt[np.isfinite(dt) & (dt > 0)]
        return float(1.0 / np.median(dt)) if dt.size else None

    def _loadtxt(self, lines: list[str]) -> _Array:
        return np.loadtxt(
            io.StringIO("".join(lines)), delimiter=",", usecols=[self._t_col, *self._ch_cols],
            dtype=np.float64, ndmin=2, comments=None,
        )

    def _parse_slow(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        out, idx = [], []
        for i, line in enumerate(lines):
            fields = line.split(",")
            try:
                out.append([float(fields[k]) for k in (self._t_col, *self._ch_cols)])
                idx.append(i)
            except ValueError:
                self._count_bad("non_numeric", f"line {linenos[i]}: {line.strip()!r}")
        return np.asarray(out, dtype=np.float64).reshape(-1, 1 + len(self._ch_cols)), np.asarray(idx, np.intp)

    def _parse_lines(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        """Parse ``(m, 1 + c)`` floats (timestamp first); returns the rows and their indices in ``lines``.

        numpy parses the whole block. A block with unparsable lines (and every block after a
        dirty one) is parsed in pieces of 512 lines; in a failing piece the rows before the one
        numpy's error names are kept, that row is counted bad and parsing resumes after it.
        """
        if not self._dirty:
            try:
                return self._loadtxt(lines), np.arange(len(lines))
            except ValueError:
                self._dirty = True
        parts, dirty = [], False
        for s0 in range(0, len(lines), 512):
            rows, idx = self._parse_piece(lines[s0 : s0 + 512], linenos[s0 : s0 + 512])
            parts.append((rows, idx + s0))
            dirty = dirty or len(idx) < len(lines[s0 : s0 + 512])
        self._dirty = dirty
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _parse_piece(self, lines: list[str], linenos: NDArray[np.intp]) -> tuple[_Array, NDArray[np.intp]]:
        parts = [(np.empty((0, 1 + len(self._ch_cols))), np.empty(0, np.intp))]
        start, skipped = 0, 0
        while start < len(lines):
            if skipped >= 8:  # a badly damaged piece: line by line is cheaper than more retries
                rows, idx = self._parse_slow(lines[start:], linenos[start:])
                parts.append((rows, idx + start))
                break
            try:
                parts.append((self._loadtxt(lines[start:]), np.arange(start, len(lines))))
                break
            except ValueError as exc:
                match = re.search(r"at row (\d+)", str(exc))
                row = start + int(match[1]) if match else -1
            resume = start
            if start <= row < len(lines):
                try:
                    head = self._loadtxt(lines[start:row]) if row > start else None
                except ValueError:
                    head = None
                else:
                    resume = row
                    if head is not None:
                        parts.append((head, np.arange(start, row)))
                    parsed, _ = self._parse_slow(lines[row : row + 1], linenos[row : row + 1])
                    if not len(parsed):  # confirmed bad (and counted): skip it
                        start, skipped = row + 1, skipped + 1
                        continue
            rows, idx = self._parse_slow(lines[resume:], linenos[resume:])
            parts.append((rows, idx + resume))
            break
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _blocks(self) -> Iterator[tuple[_Array, _Array, NDArray[np.str_] | None]]:
        """Yield ``(timestamps (m,), values (m, c), labels (m,) | None)`` of the good rows per block."""
        last_t, lineno, want = -math.inf, self._header_lineno + 1, self._n_fields - 1
        self._dirty = False
        with self.path.open(encoding="utf-8-sig", errors="replace") as f:
            for _ in range(self._header_lineno):
                f.readline()
            while not self.closed:
                lines = f.readlines(_BLOCK_BYTES)
                if not lines:
                    return
                linenos = np.arange(lineno, lineno + len(lines))
                lineno += len(lines)
                counts = np.fromiter((ln.count(",") for ln in lines), np.intp, len(lines))
                if not (counts == want).all():
                    good = np.flatnonzero(counts == want)
                    wrong = [i for i in np.flatnonzero(counts != want) if lines[i].strip()]  # blank: skip
                    for k, i in enumerate(wrong):
                        self._count_bad(
                            "wrong_field_count",
                            f"line {linenos[i]}: {counts[i] + 1} fields, header has {self._n_fields}: "
                            f"{lines[i].strip()!r}",
                            1 if k < 3 else len(wrong) - 3,
                        )
                        if k >= 3:
                            break
                    lines, linenos = [lines[i] for i in good], linenos[good]
                    if not lines:
                        continue
                rows, idx = self._parse_lines(lines, linenos)
                finite = np.isfinite(rows).all(axis=1)
                if not finite.all():
                    where = linenos[idx[~finite][:3]].tolist()
                    self._count_bad("non_finite", f"NaN or inf at lines {where}...", int((~finite).sum()))
                    rows, idx = rows[finite], idx[finite]
                keep = self._keep_increasing(rows[:, 0], last_t)
                rows, idx = rows[keep], idx[keep]
                if not len(rows):
                    continue
                last_t = float(rows[-1, 0])
                labels = None
                if self._label_col is not None:
                    k = self._label_col
                    labels = np.asarray([lines[i].split(",")[k].strip() for i in idx])
                yield np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1:]), labels

    def chunks(self) -> Iterator[SampleChunk]:
        """Yield chunks of at most ``chunk_samples`` rows, each when its last sample is due."""
        if self.closed:
            return
        t0_data = t0_wall = None
        step = self.chunk_samples
        for t, values, labels in self._blocks():
            for start in range(0, len(t), step):
                ts = t[start : start + step]
                if math.isfinite(self.speed):
                    if t0_data is None or t0_wall is None:
                        t0_data, t0_wall = float(ts[0]), time.monotonic()
                    delay = t0_wall + (float(ts[-1]) - t0_data) / self.speed - time.monotonic()
                    if delay > 0 and self._closed.wait(delay):
                        return
                if self.closed:
                    return
                self.last_labels = None if labels is None else labels[start : start + step]
                yield self._chunk(ts, values[start : start + step])
        logger.info("%s: replay finished: %s", self.name, self.stats.as_dict())


# --------------------------------------------------------------------------- JSON & Sensor Logger


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadInput("non_numeric", f"{what}={value!r} is not a number")
    out = float(value)
    if not math.isfinite(out):
        raise _BadInput("non_finite", f"{what}={value!r}")
    return out


def _json_sample(obj: Any, channel_names: tuple[str, ...]) -> list[float]:
    """``[t, v_1, ..., v_c]`` from one JSON sample (nested or flat form)."""
    if not isinstance(obj, dict):
        raise _BadInput("invalid_sample", f"expected an object, got {type(obj).__name__}")
    key = "t" if "t" in obj else "timestamp"
    if key not in obj:
        raise _BadInput("missing_field", f"no 't' or 'timestamp' in sample with keys {sorted(obj)[:8]}")
    out = [_number(obj[key], key)]
    for name in channel_names:
        if name in obj:
            out.append(_number(obj[name], name))
            continue
        group, _, axis = name.partition("_")
        vec = obj.get(group)
        if isinstance(vec, list) and len(vec) == 3 and axis in ("x", "y", "z"):
            out.append(_number(vec["xyz".index(axis)], name))
        elif isinstance(vec, dict) and axis in vec:
            out.append(_number(vec[axis], name))
        else:
            hint = " (accelerometer-only input needs channel_names=ACC_CHANNELS)" if group == "gyro" else ""
            raise _BadInput("missing_field", f"sample lacks {name!r} (or {group!r}: [x, y, z]){hint}")
    return out


def _loads(payload: str | bytes | bytearray) -> Any:
    try:
        return json.loads(payload)
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise _BadInput("invalid_json", f"{exc} in {payload[:60]!r}") from None


def parse_json_samples(
    message: Any, channel_names: Sequence[str] = DEFAULT_CHANNELS
) -> tuple[_Array, _Array, dict[str, int]]:
    """Decode one message of the JSON sample schema (single sample or ``{"samples": [...]}``).

    Args:
        message: decoded JSON, or its ``str``/``bytes`` text.
        channel_names: channels every sample must carry, in output column order.

    Returns:
        ``(timestamps_s (n,), values (n, c), rejected)`` where ``rejected`` maps reason → count
        of samples dropped from a batch.

    Raises:
        DataError: the message as a whole is not JSON or not of this schema.
    """
    names = tuple(channel_names)
    if isinstance(message, (str, bytes, bytearray)):
        message = _loads(message)
    if isinstance(message, dict) and "samples" in message:
        items = message["samples"]
        if not isinstance(items, list):
            raise _BadInput("invalid_message", f"'samples' is {type(items).__name__}, expected a list")
    elif isinstance(message, dict):
        items = [message]
    else:
        raise _BadInput("invalid_message", f"expected a JSON object, got {type(message).__name__}")
    rows: list[list[float]] = []
    rejected: dict[str, int] = {}
    for item in items:
        try:
            rows.append(_json_sample(item, names))
        except _BadInput as exc:
            if len(items) == 1:
                raise
            rejected[exc.reason] = rejected.get(exc.reason, 0) + 1
    arr = np.asarray(rows, dtype=np.float64).reshape(-1, len(names) + 1)
    return arr[:, 0].copy(), arr[:, 1:].copy(), rejected


_SENSOR_LOGGER_XYZ = ("totalacceleration", "accelerometer", "gravity", "gyroscope")


def _time_ns(value: Any) -> int | float:
    """Sensor Logger ``time`` (epoch ns; an int, or a numeric string in exports)."""
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise _BadInput("invalid_entry", f"time={value!r:.40} is not a number") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _number(value, "time")


def _xyz_columns(names: tuple[str, ...]) -> list[tuple[str, int]]:
    """``(group, axis index)`` per channel; ConfigError for names other than acc_*/gyro_*."""
    out = []
    for n in names:
        group, _, axis = n.partition("_")
        if group not in ("acc", "gyro") or axis not in ("x", "y", "z"):
            raise ConfigError(f"Sensor Logger input has no channel {n!r}; expected names from {DEFAULT_CHANNELS}")
        out.append((group, "xyz".index(axis)))
    return out


def parse_sensor_logger(
    message: Any, channel_names: Sequence[str] = DEFAULT_CHANNELS, *, pair_tolerance_s: float = 0.05
) -> tuple[_Array, _Array, dict[str, int]]:
    """Decode one Sensor Logger push message into samples in m/s^2 and rad/s.

    Format (awesome-sensor-logger PUSHING.md / UNITS.md): ``{"messageId", "sessionId",
    "deviceId", "payload": [{"name": ..., "time": <UTC epoch ns>, "values": {"x", "y", "z"}}]}``.
    ``accelerometer`` excludes gravity, ``totalacceleration`` (Android) includes it, ``gravity``
    is the gravity vector, all m/s^2; ``gyroscope`` is rad/s. Mapping chosen here:

    * acceleration with gravity = ``totalacceleration`` when the message has it, else
      ``accelerometer`` + ``gravity`` linearly interpolated to the accelerometer times;
      ``accelerometer`` alone is rejected (reason ``accelerometer_without_gravity``);
    * each acceleration sample takes the gyroscope reading nearest in time, dropped
      (``unpaired_gyroscope``) when none is within ``pair_tolerance_s``;
    * timestamps are ``time / 1e9`` s; other sensors (location, ...) are ignored.

    iOS reports acceleration and gravity with the opposite sign to Android unless the app's
    "Standardise Units & Frames" is on; flip with ``axis_map`` if the model needs it.

    Returns:
        ``(timestamps_s (n,), values (n, c) in channel_names order, rejected reason → count)``.

    Raises:
        DataError: not JSON, or not an object with a ``payload`` list.
    """
    names = tuple(channel_names)
    plan = _xyz_columns(names)
    if isinstance(message, (str, bytes, bytearray)):
        message = _loads(message)
    if not isinstance(message, dict) or not isinstance(message.get("payload"), list):
        raise _BadInput("invalid_message", "expected a Sensor Logger object with a 'payload' list")
    rejected: dict[str, int] = {}
    series: dict[str, list[list[Any]]] = {k: [] for k in _SENSOR_LOGGER_XYZ}
    for entry in message["payload"]:
        try:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise _BadInput("invalid_entry", "payload entry without a 'name'")
            sensor = entry["name"].lower()
            if sensor not in series:
                continue
            t_raw, vals = entry.get("time"), entry.get("values")
            t_ns = _time_ns(t_raw)
            if not isinstance(vals, dict):
                raise _BadInput("invalid_entry", f"{sensor}: 'values' must be an object, got {vals!r:.40}")
            series[sensor].append([t_ns, *(_number(vals.get(a), f"{sensor}.{a}") for a in "xyz")])
        except (_BadInput, ValueError) as exc:
            reason = exc.reason if isinstance(exc, _BadInput) else "invalid_entry"
            rejected[reason] = rejected.get(reason, 0) + 1
    base = min((row[0] for rows in series.values() for row in rows), default=0)
    arrays = {  # times relative to the earliest entry, so ns integers keep their precision
        k: np.asarray([[(r[0] - base) * 1e-9, *r[1:]] for r in v], dtype=np.float64).reshape(-1, 4)
        for k, v in series.items()
    }
    for a in arrays.values():
        a[:] = a[np.argsort(a[:, 0], kind="stable")]
    if len(arrays["totalacceleration"]):
        acc = arrays["totalacceleration"]
    elif len(arrays["accelerometer"]) and len(arrays["gravity"]):
        acc, grav = arrays["accelerometer"].copy(), arrays["gravity"]
        for k in (1, 2, 3):
            acc[:, k] += np.interp(acc[:, 0], grav[:, 0], grav[:, k])
    else:
        if len(arrays["accelerometer"]):
            rejected["accelerometer_without_gravity"] = len(arrays["accelerometer"])
        return np.empty(0), np.empty((0, len(names))), rejected
    gyro = None
    if any(group == "gyro" for group, _ in plan):
        g = arrays["gyroscope"]
        if not len(g):
            rejected["missing_gyroscope"] = len(acc)
            return np.empty(0), np.empty((0, len(names))), rejected
        hi = np.minimum(np.searchsorted(g[:, 0], acc[:, 0]), len(g) - 1)
        lo = np.maximum(hi - 1, 0)
        near = np.where(np.abs(g[lo, 0] - acc[:, 0]) <= np.abs(g[hi, 0] - acc[:, 0]), lo, hi)
        ok = np.abs(g[near, 0] - acc[:, 0]) <= pair_tolerance_s
        if not ok.all():
            rejected["unpaired_gyroscope"] = int((~ok).sum())
        acc, gyro = acc[ok], g[near[ok]]
    columns = [(acc if group == "acc" else gyro)[:, 1 + axis] for group, axis in plan]  # type: ignore[index]
    return acc[:, 0] + base * 1e-9, np.column_stack(columns).reshape(len(acc), len(names)), rejected


# --------------------------------------------------------------------------- push sources

_PENDING_ROWS = 100_000  # samples buffered between producer and chunks() before back-pressure / drops
_MESSAGE_REASONS = ("invalid_json", "invalid_message")  # a whole line / message is unusable


class _PushSource(_SourceBase):
    """A producer (reader thread or paho callback) offers ``[t, v_1..v_c]`` rows; ``chunks()``
    drops non-increasing timestamps and yields at ``chunk_samples`` rows or ``max_latency_s``."""

    def __init__(self, *args: Any, max_latency_s: float = 0.1, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not max_latency_s > 0:
            raise ConfigError(f"max_latency_s={max_latency_s!r}; expected a positive number of seconds")
        self.max_latency_s = float(max_latency_s)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: list[list[float]] = []
        self._ended = False
        self._error: BaseException | None = None

    def _start(self) -> None:
        """Start producing (thread or network loop)."""

    def _offer(self, rows: list[list[float]], *, block: bool) -> None:
        """Hand rows to ``chunks()``; when it lags, block (a reader) or drop and count (a callback)."""
        while block and len(self._pending) >= _PENDING_ROWS and not self.closed:
            time.sleep(0.01)
        with self._lock:
            if len(self._pending) >= _PENDING_ROWS:
                dropped = True
            else:
                dropped = False
                self._pending.extend(rows)
                if len(self._pending) >= self.chunk_samples:
                    self._wake.set()
        if dropped:
            self._count_bad("queue_overflow", f"consumer too slow; {_PENDING_ROWS} samples waiting", len(rows))

    def _finish(self, error: BaseException | None = None) -> None:
        with self._lock:
            self._ended, self._error = True, error
        self._wake.set()

    def close(self) -> None:
        super().close()
        self._wake.set()

    def chunks(self) -> Iterator[SampleChunk]:
        if self.closed:
            return
        self._start()
        width = 1 + len(self.channel_names)
        buf, last_t, oldest = np.empty((0, width)), -math.inf, 0.0
        while True:
            age = time.monotonic() - oldest
            self._wake.wait(max(self.max_latency_s - age, 0.001) if len(buf) else self.max_latency_s)
            self._wake.clear()
            if self.closed:
                return
            with self._lock:
                rows, self._pending = self._pending, []
                ended, error = self._ended, self._error
            if rows:
                arr = np.asarray(rows, dtype=np.float64).reshape(-1, width)
                arr = arr[self._keep_increasing(arr[:, 0], last_t)]
                if len(arr):
                    oldest = oldest if len(buf) else time.monotonic()
                    buf, last_t = np.concatenate([buf, arr]), float(arr[-1, 0])
            if error is not None:
                raise error
            due = ended or (len(buf) and time.monotonic() - oldest >= self.max_latency_s)
            full = len(buf) if due else len(buf) - len(buf) % self.chunk_samples
            for s in range(0, full, self.chunk_samples):
                part = buf[s : min(s + self.chunk_samples, full)]
                yield self._chunk(part[:, 0].copy(), part[:, 1:].copy())
            if full:
                buf, oldest = buf[full:], time.monotonic()
            if ended:
                return


class StdinSource(_PushSource):
    """CSV or JSON lines (auto-detected per line by a leading ``{``) from a text stream.

    CSV lines follow a header if the first CSV line is one (same rules as ``csv:``), else the
    default layout ``timestamp,acc_x,acc_y,acc_z[,gyro_x,gyro_y,gyro_z][,label]``.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        channel_names: Sequence[str] | None = None,
        units: Sequence[str] | Mapping[str, str] | None = None,
        columns: Mapping[str, str] | None = None,
        axis_map: Mapping[str, str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        max_latency_s: float = 0.1,
        nominal_rate_hz: float | None = None,
    ) -> None:
        names = _resolve_channels(channel_names, DEFAULT_CHANNELS)
        super().__init__(
            "stdin", names, _resolve_units(names, units), nominal_rate_hz=nominal_rate_hz,
            chunk_samples=chunk_samples, axis_map=axis_map, max_latency_s=max_latency_s,
        )
        self._stream = stream
        self._columns = columns
        self._layout: tuple[int, list[int], int] | None = None  # t index, channel indices, n fields
        self._seen_csv = False
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="har-edge-stdin", daemon=True)
            self._thread.start()

    def _csv_row(self, line: str) -> list[float] | None:
        fields = [f.strip() for f in line.split(",")]
        if not self._seen_csv:
            self._seen_csv = True
            try:
                float(fields[0])
            except ValueError:  # a header
                _, t, cols, _ = _column_plan(_split_header(line), self.channel_names, self._columns, "stdin")
                self._layout = (t, cols, len(fields))
                return None
        if self._layout is not None:
            t_col, cols, n = self._layout
            if len(fields) != n:
                raise _BadInput("wrong_field_count", f"{len(fields)} fields, header has {n}: {line!r}")
        else:
            n = len(fields)
            if n not in (4, 5, 7, 8):
                raise _BadInput("wrong_field_count", f"{n} fields, expected 4 or 7 (+label): {line!r}")
            layout = DEFAULT_CHANNELS if n >= 7 else ACC_CHANNELS
            missing = [c for c in self.channel_names if c not in layout]
            if missing:
                raise _BadInput("missing_field", f"line lacks {missing}: {line!r}")
            t_col, cols = 0, [1 + layout.index(c) for c in self.channel_names]
        try:
            row = [float(fields[t_col]), *(float(fields[k]) for k in cols)]
        except ValueError:
            raise _BadInput("non_numeric", repr(line)) from None
        if not all(math.isfinite(x) for x in row):
            raise _BadInput("non_finite", repr(line))
        return row

    def _read(self) -> None:
        stream = self._stream if self._stream is not None else sys.stdin
        try:
            for raw in stream:
                if self.closed:
                    break
                line = raw.strip()
                if not line:
                    continue
                try:
                    if line.startswith("{"):
                        t, v, rejected = parse_json_samples(line, self.channel_names)
                        for reason, n in rejected.items():
                            self._count_bad(reason, f"in JSON batch {line[:80]!r}", n)
                        self._offer(np.column_stack([t, v]).tolist(), block=True)
                    else:
                        row = self._csv_row(line)
                        if row is not None:
                            self._offer([row], block=True)
                except _BadInput as exc:
                    self._count_bad(exc.reason, str(exc), message=exc.reason in _MESSAGE_REASONS)
        except SourceError as exc:
            self._finish(exc)
        except Exception as exc:  # the stream itself failed
            logger.exception("stdin: reading failed")
            self._finish(SourceError(f"reading stdin failed: {exc}"))
        else:
            self._finish()


class MqttSource(_PushSource):
    """Subscribes to an MQTT topic (paho-mqtt 2.x) and yields the samples it receives.

    Payloads: the JSON sample schema, or Sensor Logger messages (``payload_format="auto"``
    tells them apart by a ``payload`` list). JSON samples are taken to be in the declared
    ``units``; Sensor Logger values are converted from m/s^2 / rad/s into them (declared
    default: g and rad/s; m/s^2 and rad/s when ``payload_format="sensor_logger"``). paho
    reconnects and re-subscribes after a broker loss; ``close()`` disconnects.
    """

    def __init__(
        self,
        host: str,
        topic: str,
        *,
        port: int = 1883,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        transport: Literal["tcp", "websockets"] = "tcp",
        qos: int = 0,
        client_id: str = "",
        keepalive_s: int = 30,
        payload_format: str = "auto",
        channel_names: Sequence[str] | None = None,
        units: Sequence[str] | Mapping[str, str] | None = None,
        axis_map: Mapping[str, str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        max_latency_s: float = 0.1,
        pair_tolerance_s: float = 0.05,
        nominal_rate_hz: float | None = None,
    ) -> None:
        if payload_format not in ("auto", "json", "sensor_logger"):
            raise ConfigError(f"payload_format={payload_format!r}; expected 'auto', 'json' or 'sensor_logger'")
        if qos not in (0, 1, 2):
            raise ConfigError(f"qos={qos!r}; expected 0, 1 or 2")
        names = _resolve_channels(channel_names, DEFAULT_CHANNELS)
        if units is None and payload_format == "sensor_logger":
            units = {"acc": "m/s^2", "gyro": "rad/s"}
        super().__init__(
            f"mqtt:{host}:{port}/{topic}", names, _resolve_units(names, units),
            nominal_rate_hz=nominal_rate_hz, chunk_samples=chunk_samples, axis_map=axis_map,
            max_latency_s=max_latency_s,
        )
        if payload_format == "sensor_logger":
            _xyz_columns(names)  # reject channels Sensor Logger cannot give
        sl_units = {"acc": "m/s^2", "gyro": "rad/s"}  # Sensor Logger's; converted to self.units
        groups = [c.split("_")[0] for c in names]
        self._sl_scale = np.array(
            [unit_scale(sl_units[g], u) if g in sl_units else 1.0 for g, u in zip(groups, self.units)]
        )
        self.topic, self.qos, self.payload_format = topic, qos, payload_format
        self.pair_tolerance_s = pair_tolerance_s
        self._subscribed = threading.Event()
        try:
            from paho.mqtt.client import Client
            from paho.mqtt.enums import CallbackAPIVersion
        except ImportError:
            raise BackendNotAvailable('MQTT input needs paho-mqtt: pip install "har-edge[device]"') from None
        self._client = Client(CallbackAPIVersion.VERSION2, client_id=client_id, transport=transport)
        if username is not None:
            self._client.username_pw_set(username, password)
        if tls:
            self._client.tls_set()
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._host, self._port, self._keepalive_s = host, port, keepalive_s
        self._started = False

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> MqttSource:
        """``mqtt[s]://[user:pass@]host[:port]/topic`` (``ws``/``wss`` = websockets); ``#`` may be literal."""
        scheme, _, rest = url.partition("://")
        netloc, _, topic = rest.partition("/")
        defaults = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}
        if scheme not in defaults:
            raise ConfigError(f"MQTT URL {url!r}: scheme must be one of {sorted(defaults)}")
        parts = urlsplit(f"//{netloc}")
        try:
            port = parts.port or defaults[scheme]
        except ValueError:
            raise ConfigError(f"MQTT URL {url!r}: bad port") from None
        topic = unquote(topic)
        if not parts.hostname or not topic:
            raise ConfigError(f"MQTT URL {url!r} needs a host and a topic: {ACCEPTED_SPECS[2]}")
        return cls(
            parts.hostname, topic, port=port, username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None, tls=scheme in ("mqtts", "wss"),
            transport="websockets" if scheme.startswith("ws") else "tcp", **kwargs,
        )

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._client.connect_async(self._host, self._port, keepalive=self._keepalive_s)
            self._client.loop_start()

    def wait_subscribed(self, timeout_s: float = 5.0) -> bool:
        """Connect (if not yet) and wait until the subscription is acknowledged."""
        self._start()
        return self._subscribed.wait(timeout_s)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            logger.warning("%s: broker refused connection: %s", self.name, reason_code)
            return
        logger.info("%s: connected, subscribing", self.name)
        client.subscribe(self.topic, qos=self.qos)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        if any(rc.is_failure for rc in reason_codes):
            logger.warning("%s: subscription refused: %s", self.name, reason_codes)
        else:
            self._subscribed.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._subscribed.clear()
        if not self.closed:
            logger.warning("%s: disconnected (%s); paho will reconnect", self.name, reason_code)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            obj = _loads(msg.payload)
            if self.payload_format == "sensor_logger" or (
                self.payload_format == "auto" and isinstance(obj, dict) and "payload" in obj
            ):
                t, v, rejected = parse_sensor_logger(obj, self.channel_names, pair_tolerance_s=self.pair_tolerance_s)
                v = v * self._sl_scale
            else:
                t, v, rejected = parse_json_samples(obj, self.channel_names)
            for reason, n in rejected.items():
                self._count_bad(reason, f"in a message on {msg.topic}", n)
            if len(t):
                self._offer(np.column_stack([t, v]).tolist(), block=False)  # never block paho's thread
            elif not rejected:
                self._count_bad("no_samples", f"message on {msg.topic} had no usable samples", message=True)
        except (_BadInput, ConfigError) as exc:
            reason = exc.reason if isinstance(exc, _BadInput) else "unsupported_channels"
            self._count_bad(reason, f"message on {msg.topic}: {exc}", message=True)
        except Exception as exc:  # never let an exception escape into paho's network loop
            logger.exception("%s: failed to handle a message", self.name)
            self._count_bad("internal_error", repr(exc), message=True)

    def close(self) -> None:
        if not self.closed and self._started:
            self._client.disconnect()
            self._client.loop_stop()
        super().close()


# --------------------------------------------------------------------------- factory

_OPTIONS = {
    "csv": {"columns", "axis_map"},
    "stdin": {"stream", "columns", "axis_map", "max_latency_s", "nominal_rate_hz"},
    "mqtt": {
        "qos", "client_id", "keepalive_s", "payload_format", "axis_map", "max_latency_s",
        "pair_tolerance_s", "nominal_rate_hz",
    },
    "i2c": {"bus", "sample_rate_hz", "accel_range_g", "gyro_range_dps", "range_g", "axis_map",
            "max_latency_s", "reinit_after"},
}
_I2C_SPEC = re.compile(r"^i2c:(?P<chip>[a-z0-9]+)(?:@(?P<bus>\d+)(?::(?P<addr>0x[0-9a-f]+|\d+))?)?$", re.I)


def open_source(
    spec: str,
    *,
    speed: float | str = 1.0,
    channel_names: Sequence[str] | None = None,
    units: Sequence[str] | Mapping[str, str] | None = None,
    chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    **opts: Any,
) -> Source:
    """Open the source named by ``spec`` (see the module docstring for the accepted forms).

    Args:
        spec: ``csv:PATH``, ``stdin``, ``mqtt[s]://...``, ``i2c:mpu6050[@bus[:addr]]``, ...
        speed: CSV replay pace: 1.0 real time, k times faster, ``"max"`` unpaced.
        channel_names: channels to produce (default: acc + gyro where the input has them).
        units: units of those channels as they arrive (sequence, or mapping by channel/"acc"/"gyro").
        chunk_samples: most samples per yielded chunk.
        **opts: per-kind options, e.g. ``columns``, ``axis_map``, ``stream``, ``qos``, ``bus``.

    Raises:
        ConfigError: unknown spec or option; SourceError: the source cannot be opened.
    """
    if not isinstance(spec, str):
        raise ConfigError(f"source spec {spec!r} is not a string; expected one of: {'; '.join(ACCEPTED_SPECS)}")
    text = spec.strip()
    kind = (
        "csv" if text.startswith("csv:") else "stdin" if text in ("stdin", "-")
        else "mqtt" if re.match(r"^(mqtts?|wss?)://", text) else "i2c" if text.startswith("i2c:") else None
    )
    if kind is None:
        raise ConfigError(f"unknown source spec {spec!r}; expected one of: {'; '.join(ACCEPTED_SPECS)}")
    unknown = sorted(set(opts) - _OPTIONS[kind])
    if unknown:
        raise ConfigError(f"option(s) {unknown} do not apply to {kind} sources; accepted: {sorted(_OPTIONS[kind])}")
    if kind != "csv" and _parse_speed(speed) != 1.0:
        raise ConfigError(f"speed={speed!r} only applies to csv: replay, not to {kind} sources")
    common: dict[str, Any] = {"channel_names": channel_names, "units": units, "chunk_samples": chunk_samples}
    if kind == "csv":
        if not text[4:]:
            raise ConfigError(f"source spec {spec!r} lacks a path: csv:PATH")
        return CsvReplaySource(text[4:], speed=speed, **common, **opts)
    if kind == "stdin":
        return StdinSource(**common, **opts)
    if kind == "mqtt":
        return MqttSource.from_url(text, **common, **opts)
    match = _I2C_SPEC.match(text)
    if match is None:
        raise ConfigError(f"bad I2C spec {spec!r}; expected i2c:mpu6050[@bus[:addr]] or i2c:adxl345[@bus[:addr]]")
    from har_edge.runtime.i2c import open_i2c_source

    bus = opts.pop("bus", int(match["bus"]) if match["bus"] else 1)
    address = int(match["addr"], 0) if match["addr"] else None
    return open_i2c_source(match["chip"].lower(), bus, address, **common, **opts)
