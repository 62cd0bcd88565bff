"""Decoding of incoming JSON sample records and Sensor Logger messages (see
:mod:`har_edge.runtime.sources` for the schemas; CSV lines are read by :mod:`har_edge.data.csv_format`).

Bad records raise :class:`~har_edge.errors.RecordError` whose ``reason`` is the ``SourceStats``
counter key; batch decoders return per-reason counts of the samples they drop.

Hostile text is bounded before it is parsed (:func:`decode_json`): at most :data:`MAX_MESSAGE_BYTES`
per message, UTF-8 decoded with replacement, nesting at most :data:`MAX_JSON_DEPTH` deep (checked
with numpy before ``json`` recurses), and integers of any length read without ``int`` → ``float``
overflow (more than 20 digits become a float: ``inf`` when too large, counted ``non_finite``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from har_edge.data.csv_format import DEFAULT_CHANNELS
from har_edge.errors import ConfigError, RecordError

__all__ = ["parse_json_samples", "parse_sensor_logger", "decode_json", "MAX_MESSAGE_BYTES", "MAX_JSON_DEPTH"]

_Array = NDArray[np.float64]
MAX_MESSAGE_BYTES = 1 << 20
"""Largest stdin line / MQTT payload read (1 MiB: a batch of ~10,000 samples); longer ones count ``too_large``."""
MAX_JSON_DEPTH = 16
"""Deepest JSON nesting accepted (the schemas need 4); deeper messages count ``json_too_deep``."""
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_INT_DIGITS = 20  # ns epoch times have 19 digits: keep those exact as int


# --------------------------------------------------------------------------- JSON & Sensor Logger


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError("non_numeric", f"{what}={value!r:.60} is not a number")
    try:
        out = float(value)
    except OverflowError:  # an int beyond float range
        raise RecordError("non_finite", f"{what} is an integer of {len(str(abs(value)))} digits, beyond float range") from None
    if not math.isfinite(out):
        raise RecordError("non_finite", f"{what}={value!r:.60}")
    return out


def _json_sample(obj: Any, channel_names: tuple[str, ...]) -> list[float]:
    """``[t, v_1, ..., v_c]`` from one JSON sample (nested or flat form)."""
    if not isinstance(obj, dict):
        raise RecordError("invalid_sample", f"expected an object, got {type(obj).__name__}")
    key = "t" if "t" in obj else "timestamp"
    if key not in obj:
        raise RecordError("missing_field", f"no 't' or 'timestamp' in sample with keys {sorted(obj)[:8]}")
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
            raise RecordError("missing_field", f"sample lacks {name!r} (or {group!r}: [x, y, z]){hint}")
    return out


def _parse_int(digits: str) -> int | float:
    return int(digits) if len(digits) <= _INT_DIGITS else float(digits)


def _json_depth(data: bytes) -> int:
    """Deepest ``[``/``{`` nesting of JSON text (brackets inside strings do not count)."""
    stripped = _STRING.sub(b'""', data) if b'"' in data else data
    codes = np.frombuffer(stripped, dtype=np.uint8)
    step = (np.isin(codes, (0x5B, 0x7B)).astype(np.int32) - np.isin(codes, (0x5D, 0x7D)).astype(np.int32))
    return int(np.cumsum(step).max(initial=0))


def decode_json(payload: str | bytes | bytearray, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Parse one JSON message within the limits above.

    Raises:
        RecordError: ``too_large``, ``json_too_deep`` or ``invalid_json`` (a message-level reason).
    """
    data = payload.encode("utf-8", "replace") if isinstance(payload, str) else bytes(payload)
    if len(data) > max_bytes:
        raise RecordError("too_large", f"message of {len(data)} bytes; the limit is {max_bytes}")
    if data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH and _json_depth(data) > MAX_JSON_DEPTH:
        raise RecordError("json_too_deep", f"JSON nested deeper than {MAX_JSON_DEPTH} levels: {data[:40]!r}")
    text = data.decode("utf-8", "replace").lstrip("\ufeff")
    try:
        return json.loads(text, parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError; RecursionError only as a last resort
        raise RecordError("invalid_json", f"{str(exc)[:80]} in {data[:60]!r}") from None


def parse_json_samples(
    message: Any, channel_names: Sequence[str] = DEFAULT_CHANNELS, *, decoded: bool = False
) -> tuple[_Array, _Array, dict[str, int]]:
    """Decode one message of the JSON sample schema (single sample or ``{"samples": [...]}``).

    Args:
        message: decoded JSON, or its ``str``/``bytes`` text.
        channel_names: channels every sample must carry, in output column order.
        decoded: ``message`` is already decoded JSON (a JSON string value is then not parsed again).

    Returns:
        ``(timestamps_s (n,), values (n, c), rejected)`` where ``rejected`` maps reason → count
        of samples dropped from a batch.

    Raises:
        DataError: the message as a whole is not JSON or not of this schema.
    """
    names = tuple(channel_names)
    if not decoded and isinstance(message, (str, bytes, bytearray)):
        message = decode_json(message)
    if isinstance(message, dict) and "samples" in message:
        items = message["samples"]
        if not isinstance(items, list):
            raise RecordError("invalid_message", f"'samples' is {type(items).__name__}, expected a list")
    elif isinstance(message, dict):
        items = [message]
    else:
        raise RecordError("invalid_message", f"expected a JSON object, got {type(message).__name__}")
    rows: list[list[float]] = []
    rejected: dict[str, int] = {}
    for item in items:
        try:
            rows.append(_json_sample(item, names))
        except RecordError as exc:
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
            value = int(value) if len(value) <= _INT_DIGITS else float(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise RecordError("invalid_entry", f"time={value!r:.40} is not a number") from None
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 1 << 63:
            raise RecordError("non_finite", f"time of {len(str(abs(value)))} digits is beyond any clock")
        return value
    out = _number(value, "time")
    if abs(out) >= 2.0**63:  # ~292 years of nanoseconds either side of 1970
        raise RecordError("non_finite", f"time={out:g} ns is beyond any clock")
    return out


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
    message: Any, channel_names: Sequence[str] = DEFAULT_CHANNELS, *, pair_tolerance_s: float = 0.05,
    decoded: bool = False,
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
    if not decoded and isinstance(message, (str, bytes, bytearray)):
        message = decode_json(message)
    if not isinstance(message, dict) or not isinstance(message.get("payload"), list):
        raise RecordError("invalid_message", "expected a Sensor Logger object with a 'payload' list")
    rejected: dict[str, int] = {}
    series: dict[str, list[list[Any]]] = {k: [] for k in _SENSOR_LOGGER_XYZ}
    for entry in message["payload"]:
        try:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise RecordError("invalid_entry", "payload entry without a 'name'")
            sensor = entry["name"].lower()
            if sensor not in series:
                continue
            t_raw, vals = entry.get("time"), entry.get("values")
            t_ns = _time_ns(t_raw)
            if not isinstance(vals, dict):
                raise RecordError("invalid_entry", f"{sensor}: 'values' must be an object, got {vals!r:.40}")
            series[sensor].append([t_ns, *(_number(vals.get(a), f"{sensor}.{a}") for a in "xyz")])
        except (RecordError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, RecordError) else "invalid_entry"
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
