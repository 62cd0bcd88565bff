"""Live (push) sources: a producer thread or network callback offers rows, ``chunks()`` yields
them. :class:`_PushSource` is the shared base (also of the I2C source), with
:class:`StdinSource` (CSV / JSON lines) and :class:`MqttSource` (paho-mqtt, imported lazily).
"""

from __future__ import annotations

import io
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Literal, TextIO
from urllib.parse import unquote, urlsplit

import numpy as np

from har_edge.data.units import unit_scale
from har_edge.redaction import redact, register_secret, register_url_password
from har_edge.errors import BackendNotAvailable, ConfigError, DataError, RecordError, SourceError
from har_edge.data.csv_format import CsvLayout, split_header
from har_edge.runtime.sample_formats import (
    MAX_MESSAGE_BYTES,
    _xyz_columns,
    decode_json,
    parse_json_samples,
    parse_sensor_logger,
)
from har_edge.runtime.samples import SampleChunk
from har_edge.runtime.source_base import (
    ACC_CHANNELS,
    ACCEPTED_SPECS,
    DEFAULT_CHANNELS,
    DEFAULT_CHUNK_SAMPLES,
    _resolve_channels,
    _resolve_units,
    _SourceBase,
    one_line,
)

__all__ = ["StdinSource", "MqttSource"]

_HEADER_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .()/^-]*$")  # a column name, e.g. acc_x, "time (s)"

# Every source module logs under the name it had before the split, so logging
# configuration (and caplog filters) keyed on ``har_edge.runtime.sources`` still apply.
logger = logging.getLogger("har_edge.runtime.sources")

_PENDING_ROWS = 100_000  # samples buffered between producer and chunks() before back-pressure / drops


class _PushSource(_SourceBase):
    """A producer (reader thread or paho callback) offers ``[t, v_1..v_c]`` rows; ``chunks()``
    yields them at ``chunk_samples`` rows or ``max_latency_s`` (timestamps are checked downstream,
    once, by the stream classifier)."""

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
        buf, oldest = np.empty((0, width)), 0.0
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
                oldest = oldest if len(buf) else time.monotonic()
                buf = np.concatenate([buf, arr])
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
    """CSV or JSON lines (a line starting with ``{`` or ``[`` is JSON, any other CSV) from a text or binary stream.

    CSV lines follow a header if the first CSV line is one (same rules as ``csv:``), else the
    default layout ``timestamp,acc_x,acc_y,acc_z[,gyro_x,gyro_y,gyro_z][,label]``. Text is decoded
    with replacement (a binary stream as UTF-8; ``sys.stdin`` and other text streams are switched to
    ``errors="replace"``), a line longer than ``max_line_chars`` is skipped and counted ``too_large``,
    and nothing on a line ends the stream.
    """

    def __init__(
        self,
        stream: TextIO | BinaryIO | None = None,
        *,
        channel_names: Sequence[str] | None = None,
        units: Sequence[str] | Mapping[str, str] | None = None,
        columns: Mapping[str, str] | None = None,
        axis_map: Mapping[str, str] | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
        max_latency_s: float = 0.1,
        nominal_rate_hz: float | None = None,
        max_line_chars: int = MAX_MESSAGE_BYTES,
    ) -> None:
        names = _resolve_channels(channel_names, DEFAULT_CHANNELS)
        super().__init__(
            "stdin", names, _resolve_units(names, units), nominal_rate_hz=nominal_rate_hz,
            chunk_samples=chunk_samples, axis_map=axis_map, max_latency_s=max_latency_s,
        )
        if isinstance(max_line_chars, bool) or not isinstance(max_line_chars, int) or max_line_chars < 64:
            raise ConfigError(f"max_line_chars={max_line_chars!r}; expected an integer >= 64")
        self._stream = stream
        self._columns = columns
        self.max_line_chars = max_line_chars
        self._layout: CsvLayout | None = None  # from a header line, if the first CSV line is one
        self._default_layouts: dict[int, CsvLayout] = {}  # headerless input, by number of fields
        self._seen_csv = False
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._read, name="har-edge-stdin", daemon=True)
            self._thread.start()

    def _csv_row(self, line: str, lineno: int) -> list[float] | None:
        """One CSV line through the project's CSV layout (:mod:`har_edge.data.csv_format`); None for the header."""
        if not self._seen_csv:
            try:
                float(line.split(",")[0])
            except ValueError:
                fields = split_header(line)
                if not all(_HEADER_FIELD.match(f) for f in fields):  # garbage, not a header: count it, keep looking
                    raise RecordError("wrong_field_count" if len(fields) < 2 else "non_numeric",
                                      f"line {lineno} is neither a header nor a sample: {line[:120]!r}") from None
                self._seen_csv = True
                try:
                    self._layout = CsvLayout.from_header(fields, channel_names=self.channel_names,
                                                         columns=self._columns, where="stdin")
                except DataError as exc:
                    raise SourceError(str(exc)) from None
                return None
            self._seen_csv = True
        if self._layout is not None:
            return self._layout.parse_line(line, lineno)
        n = line.count(",") + 1  # headerless: the default layout, told apart by the number of fields
        if n not in (4, 5, 7, 8):
            raise RecordError("wrong_field_count", f"line {lineno} has {n} fields; expected 4 or 7 (+label): {line[:120]!r}")
        channels = DEFAULT_CHANNELS if n >= 7 else ACC_CHANNELS
        missing = [c for c in self.channel_names if c not in channels]
        if missing:
            raise RecordError("missing_field", f"line {lineno} lacks {missing}: {line[:120]!r}")
        if n not in self._default_layouts:
            header = ("timestamp", *channels, *(("label",) if n in (5, 8) else ()))
            self._default_layouts[n] = CsvLayout.from_header(header, channel_names=self.channel_names)
        return self._default_layouts[n].parse_line(line, lineno)

    def _lines(self) -> Iterator[tuple[str, bool]]:
        """``(line, too_long)`` from the stream, decoded with replacement, at most ``max_line_chars`` read per line."""
        stream: Any = self._stream if self._stream is not None else sys.stdin
        if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):
            stream = io.TextIOWrapper(stream, encoding="utf-8", errors="replace")
        elif isinstance(stream, io.TextIOWrapper) and stream.errors != "replace":
            stream.reconfigure(errors="replace")
        limit = self.max_line_chars
        readline = getattr(stream, "readline", None)
        if readline is None:  # a plain iterable of lines
            for line in stream:
                yield (line, False) if len(line) <= limit else ("", True)
            return
        while True:
            line = readline(limit + 1)
            if not line:
                return
            if len(line) <= limit or line.endswith("\n"):
                yield line, False
                continue
            while line and not line.endswith("\n"):  # skip the rest of an over-long line, piece by piece
                line = readline(1 << 16)
            yield "", True

    def _read(self) -> None:
        try:
            for lineno, (raw, too_long) in enumerate(self._lines(), start=1):
                if self.closed:
                    break
                self._handle_line(raw, lineno, too_long=too_long)
        except SourceError as exc:
            self._finish(exc)
        except Exception as exc:  # the stream itself failed (not a bad line): end it, one log line
            logger.error("stdin: reading failed: %s: %s", type(exc).__name__, one_line(str(exc)))
            self._finish(SourceError(f"reading stdin failed: {exc}"))
        else:
            self._finish()

    def _handle_line(self, raw: str, lineno: int, *, too_long: bool = False) -> None:
        """One line: its samples offered, or its rejection counted (a JSON line starts with ``{`` or ``[``).

        Raises:
            SourceError: only for a header line that lacks the configured columns (a configuration error).
        """
        if too_long:
            self._count_bad("too_large", f"line {lineno} is longer than {self.max_line_chars} characters")
            return
        line = raw.strip()
        if not line:
            return
        try:
            if line[0] in "{[":
                t, v, rejected = parse_json_samples(decode_json(line, max_bytes=4 * self.max_line_chars),
                                                    self.channel_names, decoded=True)
                for reason, n in rejected.items():
                    self._count_bad(reason, f"line {lineno}: in a JSON batch {line[:80]!r}", n)
                if len(t):
                    self._offer(np.column_stack([t, v]).tolist(), block=True)
                elif not rejected:
                    self._count_bad("no_samples", f"line {lineno}: JSON without samples: {line[:80]!r}")
            else:
                row = self._csv_row(line, lineno)
                if row is not None:
                    self._offer([row], block=True)
        except RecordError as exc:
            self._count_bad(exc.reason, str(exc) if str(exc).startswith("line") else f"line {lineno}: {exc}")


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
        max_payload_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        register_secret(password)
        if isinstance(max_payload_bytes, bool) or not isinstance(max_payload_bytes, int) or max_payload_bytes < 64:
            raise ConfigError(f"max_payload_bytes={max_payload_bytes!r}; expected an integer >= 64")
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
        self.max_payload_bytes = max_payload_bytes
        if password is not None and not tls:
            logger.warning("%s: a password over plain %s is sent unencrypted; use mqtts:// (or wss://)",
                           self.name, "ws://" if transport == "websockets" else "mqtt://")
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
        """``mqtt[s]://[user:pass@]host[:port]/topic`` (``ws``/``wss`` = websockets); ``#`` may be literal.

        Errors name the URL with its password masked.
        """
        register_url_password(url)
        shown = redact(url)
        scheme, _, rest = url.partition("://")
        netloc, _, topic = rest.partition("/")
        defaults = {"mqtt": 1883, "mqtts": 8883, "ws": 80, "wss": 443}
        if scheme not in defaults:
            raise ConfigError(f"MQTT URL {shown!r}: scheme must be one of {sorted(defaults)}")
        try:
            parts = urlsplit(f"//{netloc}")
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as exc:
            raise ConfigError(f"MQTT URL {shown!r}: {exc} (percent-encode reserved characters in user and password)") from None
        port = parts.port or defaults[scheme]
        topic = unquote(topic)
        if not parts.hostname or not topic:
            raise ConfigError(f"MQTT URL {shown!r} needs a host and a topic: {ACCEPTED_SPECS[2]}")
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
        """Decode one payload; every failure is counted under its reason with one log line (paho's thread never sees it)."""
        topic = one_line(str(getattr(msg, "topic", "?")), 80)
        try:
            obj = decode_json(msg.payload, max_bytes=self.max_payload_bytes)
            if self.payload_format == "sensor_logger" or (
                self.payload_format == "auto" and isinstance(obj, dict) and "payload" in obj
            ):
                t, v, rejected = parse_sensor_logger(obj, self.channel_names, pair_tolerance_s=self.pair_tolerance_s,
                                                     decoded=True)
                v = v * self._sl_scale
            else:
                t, v, rejected = parse_json_samples(obj, self.channel_names, decoded=True)
            for reason, n in rejected.items():
                self._count_bad(reason, f"in a message on {topic}", n)
            if len(t):
                self._offer(np.column_stack([t, v]).tolist(), block=False)  # never block paho's thread
            elif not rejected:
                self._count_bad("no_samples", f"message on {topic} had no usable samples")
        except (RecordError, ConfigError) as exc:
            reason = exc.reason if isinstance(exc, RecordError) else "unsupported_channels"
            self._count_bad(reason, f"message on {topic}: {exc}")
        except Exception as exc:  # never let an exception escape into paho's network loop (nor log a traceback)
            self._count_bad("internal_error", f"message on {topic}: {type(exc).__name__}: {exc}")

    def close(self) -> None:
        if not self.closed and self._started:
            self._client.disconnect()
            self._client.loop_stop()
        super().close()
