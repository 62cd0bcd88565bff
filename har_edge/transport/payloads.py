"""JSON payloads published by har-edge; pure functions, no I/O.

Every JSON payload carries ``"schema_version": 1``. The status topic is the exception: it holds
the plain strings ``online`` / ``offline``, which is what Home Assistant availability expects.

Activity state (topic ``<prefix>/<device>/activity``)::

    {"schema_version": 1, "device_id": "kitchen", "activity": "walking", "confidence": 0.91,
     "probabilities": {"walking": 0.91, "sitting": 0.09}, "timestamp": 1700000000.5,
     "seq": 42, "model_hash": "3f2a...", "window_end_s": 12.5}

``timestamp`` is the Unix time (seconds) of the last sample in the window; ``seq`` is assigned by
the publisher, increases by one per message on a topic and survives restarts, so subscribers can
drop duplicates with ``seq <= last_seen``.

>>> p = activity_payload(device_id="d", activity="walk", confidence=0.9,
...                      probabilities={"walk": 0.9, "sit": 0.1}, timestamp=1.5, model_hash="ab")
>>> decode(encode(p)) == p
True
>>> encode({"b": 1, "a": [1.5]})
b'{"b":1,"a":[1.5]}'
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from typing import Any

from har_edge.errors import DataError

__all__ = [
    "SCHEMA_VERSION",
    "STATUS_ONLINE",
    "STATUS_OFFLINE",
    "UNCERTAIN",
    "EVENT_TYPES",
    "STREAM_EVENT_TYPES",
    "activity_payload",
    "event_payload",
    "stream_event_payload",
    "stats_payload",
    "status_payload",
    "forecast_payload",
    "NO_SKILL_WARNING",
    "stamp",
    "encode",
    "decode",
]

SCHEMA_VERSION = 1
STATUS_ONLINE = "online"
STATUS_OFFLINE = "offline"
UNCERTAIN = "uncertain"
"""Activity label published when no class is confident enough."""
EVENT_TYPES = ("start", "end")
STREAM_EVENT_TYPES = ("gap", "clock_epoch")
"""Events of the stream itself on the event topic: the source's clock jumped forward (``gap``) or back."""

_PROB_DIGITS = 6


def _finite(name: str, value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}={value!r} but expected a number") from exc
    if not math.isfinite(number):
        raise DataError(f"{name}={value!r} but expected a finite number")
    return number


def _label(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise DataError(f"{name}={value!r} but expected a non-empty string")
    return value


def _seq(seq: int | None) -> int | None:
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise DataError(f"seq={seq!r} but expected an integer >= 0")
    return seq


def activity_payload(
    *,
    device_id: str,
    activity: str,
    confidence: float,
    probabilities: Mapping[str, float],
    timestamp: float,
    model_hash: str,
    seq: int | None = None,
    window_end_s: float | None = None,
) -> dict[str, Any]:
    """Build an activity state payload.

    Args:
        device_id: Publishing device.
        activity: Winning label, or :data:`UNCERTAIN`.
        confidence: Score of ``activity`` in ``[0, 1]``.
        probabilities: Score per label (NumPy scalars are fine), rounded to 6 digits.
        timestamp: Unix time in seconds of the window's last sample.
        model_hash: Identifies the model bundle that produced the scores.
        seq: Sequence number; leave ``None`` to let the publisher assign it.
        window_end_s: Stream-relative end of the window, if known.

    Raises:
        DataError: A value is missing, non-finite or out of range.
    """
    conf = _finite("confidence", confidence)
    if not 0.0 <= conf <= 1.0:
        raise DataError(f"confidence={confidence!r} but expected a value in [0, 1]")
    probs = {
        _label("probabilities key", str(k)): round(_finite(f"probabilities[{k!r}]", v), _PROB_DIGITS)
        for k, v in probabilities.items()
    }
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "device_id": _label("device_id", device_id),
        "activity": _label("activity", activity),
        "confidence": round(conf, _PROB_DIGITS),
        "probabilities": probs,
        "timestamp": _finite("timestamp", timestamp),
        "model_hash": _label("model_hash", model_hash),
    }
    if seq is not None:
        payload["seq"] = _seq(seq)
    if window_end_s is not None:
        payload["window_end_s"] = _finite("window_end_s", window_end_s)
    return payload


def event_payload(
    *,
    device_id: str,
    event_type: str,
    activity: str,
    timestamp: float,
    duration_s: float | None = None,
    seq: int | None = None,
) -> dict[str, Any]:
    """Build an activity ``start`` / ``end`` event payload (key ``"type"``).

    Args:
        device_id: Publishing device.
        event_type: ``"start"`` or ``"end"``.
        activity: The activity that started or ended.
        timestamp: Unix time in seconds of the transition.
        duration_s: How long the activity lasted; required for ``"end"``, refused for ``"start"``.
        seq: Sequence number; leave ``None`` to let the publisher assign it.

    Raises:
        DataError: Unknown ``event_type``, a missing/negative ``duration_s``, or a bad value.
    """
    if event_type not in EVENT_TYPES:
        raise DataError(f"event_type={event_type!r} but expected one of {EVENT_TYPES}")
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "device_id": _label("device_id", device_id),
        "type": event_type,
        "activity": _label("activity", activity),
        "timestamp": _finite("timestamp", timestamp),
    }
    if event_type == "end":
        if duration_s is None:
            raise DataError("event_type='end' but duration_s is None; expected the activity duration")
        duration = _finite("duration_s", duration_s)
        if duration < 0:
            raise DataError(f"duration_s={duration_s!r} but expected >= 0")
        payload["duration_s"] = duration
    elif duration_s is not None:
        raise DataError(f"event_type='start' but duration_s={duration_s!r}; only 'end' has a duration")
    if seq is not None:
        payload["seq"] = _seq(seq)
    return payload


NO_SKILL_WARNING = ("no skill: on its backtest this model is not better than repeating the last value (the random walk); "
                    "not a useful forecast")


def forecast_payload(
    *,
    device_id: str,
    target: str,
    values: "list[float] | Any",
    unit: str,
    issued_at: float,
    step_s: float,
    model_hash: str,
    skill_vs_naive: float,
    seq: int | None = None,
    digits: int = 6,
) -> dict[str, Any]:
    """Build a forecast payload (topic ``<prefix>/<device>/forecast/<target>``, retained).

    ``values[i]`` is the forecast for ``issued_at + (i + 1) * step_s``; ``issued_at`` is the Unix time of
    the last observation the forecast starts from. ``skill_vs_naive`` (1 − MAE/MAE_naive on the bundle's
    backtest) travels with every message; at or below 0 the payload says ``"useful": false`` and carries
    a ``warning``.

    Raises:
        DataError: an empty or non-finite value, a non-positive step, or a bad name.
    """
    vals = [round(_finite(f"values[{i}]", v), digits) for i, v in enumerate(values)]
    if not vals:
        raise DataError("values is empty; expected one forecast per horizon step")
    step = _finite("step_s", step_s)
    if step <= 0:
        raise DataError(f"step_s={step_s!r} but expected > 0")
    skill = _finite("skill_vs_naive", skill_vs_naive)
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "device_id": _label("device_id", device_id),
        "target": _label("target", target),
        "values": vals,
        "unit": _label("unit", unit),
        "issued_at": _finite("issued_at", issued_at),
        "step_s": step,
        "horizon": len(vals),
        "model_hash": _label("model_hash", model_hash),
        "skill_vs_naive": round(skill, 6),
        "useful": skill > 0,
    }
    if skill <= 0:
        payload["warning"] = NO_SKILL_WARNING
    if seq is not None:
        payload["seq"] = _seq(seq)
    return payload


def stream_event_payload(*, device_id: str, event_type: str, timestamp: float, jump_s: float,
                         seq: int | None = None) -> dict[str, Any]:
    """Build a stream event (``gap`` / ``clock_epoch``): the source's clock jumped by ``jump_s`` seconds; the
    stream restarted its windows and filters at ``timestamp`` (Unix time of the first sample after the jump).

    Raises:
        DataError: Unknown ``event_type`` or a non-finite value.
    """
    if event_type not in STREAM_EVENT_TYPES:
        raise DataError(f"event_type={event_type!r} but expected one of {STREAM_EVENT_TYPES}")
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "device_id": _label("device_id", device_id),
        "type": event_type,
        "timestamp": _finite("timestamp", timestamp),
        "jump_s": round(_finite("jump_s", jump_s), 6),
    }
    if seq is not None:
        payload["seq"] = _seq(seq)
    return payload


def stats_payload(
    *, device_id: str, counters: Mapping[str, float], timestamp: float, reasons: Mapping[str, int] | None = None
) -> dict[str, Any]:
    """Build a stats payload: ``{schema_version, device_id, timestamp, counters[, reasons]}``.

    ``reasons`` breaks the rejection counters down by cause (one vocabulary for every source, see
    :mod:`har_edge.runtime.counters`).

    Raises:
        DataError: A counter is not a finite number, or a reason count not a non-negative integer.
    """
    values: dict[str, float] = {}
    for name, value in counters.items():
        if isinstance(value, numbers.Integral):
            values[str(name)] = int(value)
        else:
            values[str(name)] = _finite(f"counters[{name!r}]", value)
    payload: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "device_id": _label("device_id", device_id),
        "timestamp": _finite("timestamp", timestamp),
        "counters": values,
    }
    if reasons is not None:
        bad = {k: v for k, v in reasons.items() if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0}
        if bad:
            raise DataError(f"reasons {bad!r} but expected counts (integers >= 0)")
        payload["reasons"] = {str(k): int(v) for k, v in sorted(reasons.items())}
    return payload


def status_payload(online: bool) -> bytes:
    """Return the plain status payload, ``b"online"`` or ``b"offline"``."""
    return (STATUS_ONLINE if online else STATUS_OFFLINE).encode("ascii")


def stamp(payload: Mapping[str, Any], *, seq: int, device_id: str) -> dict[str, Any]:
    """Copy ``payload`` with the publisher's ``seq`` and ``device_id`` filled in.

    ``schema_version`` is added when missing; an existing ``seq`` is replaced.

    Raises:
        DataError: ``payload`` names a different device than the publisher's.
    """
    other = payload.get("device_id")
    if other is not None and other != device_id:
        raise DataError(f"payload device_id={other!r} but this publisher is device_id={device_id!r}")
    out: dict[str, Any] = {
        "schema_version": payload.get("schema_version", SCHEMA_VERSION),
        "device_id": device_id,
    }
    out.update(payload)
    out["device_id"] = device_id
    out["seq"] = _seq(seq)
    return out


def encode(payload: Mapping[str, Any]) -> bytes:
    """Serialise to compact UTF-8 JSON (no spaces; NaN/inf refused).

    Raises:
        DataError: The payload holds a non-finite float or a non-JSON type.
    """
    try:
        return json.dumps(payload, separators=(",", ":"), allow_nan=False, ensure_ascii=False).encode(
            "utf-8"
        )
    except (TypeError, ValueError) as exc:
        raise DataError(f"payload cannot be encoded as JSON: {exc}") from exc


def decode(data: bytes | str) -> dict[str, Any]:
    """Parse a JSON object payload (the inverse of :func:`encode`).

    Raises:
        DataError: ``data`` is not JSON or not a JSON object.
    """
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"payload is not JSON: {data[:80]!r}") from exc
    if not isinstance(value, dict):
        raise DataError(f"payload is JSON {type(value).__name__} but expected an object: {data[:80]!r}")
    return value
