"""Sensor sources: where samples come from before the streaming classifier sees them.

Every source declares ``channel_names``, ``units`` (as they arrive, no conversion: the
classifier converts with :mod:`har_edge.data.units`), ``nominal_rate_hz`` and ``stats``, and
yields :class:`~har_edge.runtime.samples.SampleChunk` objects from ``chunks()``. Bad input
(unparsable rows, NaN, malformed messages, failed bus reads) is counted in ``stats`` with a
reason, logged rate-limited and skipped; it never ends the stream. Timestamps pass through as
they arrive: the stream classifier is the one place that drops repeated or backwards ones. Open one with :func:`open_source`::

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

``stats.reasons`` keys and the counter each one belongs to are listed in :mod:`har_edge.runtime.counters`
(one vocabulary for every source and the stream): a message or line from which no sample could be read is
one ``bad_messages`` (``invalid_json``, ``json_too_deep``, ``too_large``, ``invalid_message``,
``no_samples``, ...); a rejected sample is one ``bad_samples`` (``wrong_field_count``, ``non_numeric``,
``non_finite``, ``missing_field``, ``invalid_sample``, Sensor Logger ``invalid_entry``, ...,
``i2c_read_error``) on every input path; good samples lost because the device fell behind are
``missed_samples`` (``queue_overflow``, ``overrun``). Lines and payloads are limited in size (1 MiB) and JSON
nesting (16 levels), decoded as UTF-8 with replacement, and never end the stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

from har_edge.errors import ConfigError
from har_edge.redaction import redact, register_url_password
from har_edge.runtime.csv_replay import CsvReplaySource
from har_edge.runtime.live_sources import MqttSource, StdinSource
from har_edge.runtime.sample_formats import parse_json_samples, parse_sensor_logger
from har_edge.runtime.samples import SampleChunk, SourceStats
from har_edge.runtime.source_base import (
    ACC_CHANNELS,
    ACCEPTED_SPECS,
    DEFAULT_CHANNELS,
    DEFAULT_CHUNK_SAMPLES,
    GYRO_CHANNELS,
    _parse_speed,
)

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


# --------------------------------------------------------------------------- factory

_OPTIONS = {
    "csv": {"columns", "axis_map"},
    "stdin": {"stream", "columns", "axis_map", "max_latency_s", "nominal_rate_hz", "max_line_chars"},
    "mqtt": {
        "qos", "client_id", "keepalive_s", "payload_format", "axis_map", "max_latency_s",
        "pair_tolerance_s", "nominal_rate_hz", "max_payload_bytes",
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
        raise ConfigError(f"source spec {type(spec).__name__} is not a string; expected one of: {'; '.join(ACCEPTED_SPECS)}")
    text = spec.strip()
    register_url_password(text)  # before any error can quote the spec
    kind = (
        "csv" if text.startswith("csv:") else "stdin" if text in ("stdin", "-")
        else "mqtt" if re.match(r"^(mqtts?|wss?)://", text) else "i2c" if text.startswith("i2c:") else None
    )
    if kind is None:
        raise ConfigError(f"unknown source spec {redact(spec)!r}; expected one of: {'; '.join(ACCEPTED_SPECS)}")
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
        raise ConfigError(f"bad I2C spec {redact(spec)!r}; expected i2c:mpu6050[@bus[:addr]] or i2c:adxl345[@bus[:addr]]")
    from har_edge.runtime.i2c import open_i2c_source

    bus = opts.pop("bus", int(match["bus"]) if match["bus"] else 1)
    address = int(match["addr"], 0) if match["addr"] else None
    return open_i2c_source(match["chip"].lower(), bus, address, **common, **opts)
