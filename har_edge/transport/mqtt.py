"""Publish activities to an MQTT broker without losing messages across outages or restarts.

Data flow::

    publish*() --put--> Outbox (SQLite) --sender thread, oldest first--> paho --> broker
                            ^                                               |
                            +------- delete row on PUBACK (on_publish) <----+

* ``publish*()`` only writes to the :class:`~har_edge.transport.outbox.Outbox`: it never blocks
  on the network and never fails because the broker is down.
* One sender thread drains the outbox in row order while connected, at most ``max_inflight``
  unacknowledged; a row is deleted on the broker's PUBACK (QoS 0: once handed to the socket).
* On every (re)connect ``on_connect`` drops paho's own copies of unacknowledged messages
  (``Client.drop_out_messages()``) and the sender re-sends the outbox from the oldest row, as
  after a process restart. One ordered stream: a message may arrive twice, never after a newer
  one, so subscribers drop ``seq <= last_seen``. The sender checks the connection and calls
  ``Client.publish`` under ``_send_lock``, which ``on_connect``/``on_disconnect`` also take, so no
  message of an old connection can overtake the re-sent rows on a new one.
* ``on_publish`` only enqueues the ``mid``; the sender owns the ``mid -> row`` map (paho calls
  ``on_publish`` holding its message lock: locking there around ``Client.publish`` deadlocks).
* Status: retained ``online`` on connect; ``offline`` from the last will or :meth:`close`.
  Home Assistant discovery is published on connect and when HA announces ``online``.
* With discovery on (``MqttConfig.clear_activity_on_start``), the outbox starts with a zero-length
  retained message on the activity topic: it deletes the previous run's retained state, so Home
  Assistant shows "unknown" until this run's first classification. Subscribers skip empty payloads.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from har_edge.errors import ConfigError, TransportError
from har_edge.transport import payloads
from har_edge.transport.base import SequencedPublisher, check_qos, check_topic
from har_edge.transport.config import MqttConfig, config_warnings
from har_edge.transport.discovery import discovery_messages
from har_edge.transport.outbox import Outbox, OutboxRow
from har_edge.transport.paho_client import (
    apply_credentials_and_tls,
    drop_paho_copies,
    guarded,
    held,
    load_paho,
)

if TYPE_CHECKING:
    from paho.mqtt.client import Client, ConnectFlags, DisconnectFlags, MQTTMessage
    from paho.mqtt.reasoncodes import ReasonCode

__all__ = ["MqttPublisher", "PublisherStats"]

logger = logging.getLogger(__name__)

# paho's own log lines go here at DEBUG; this module reports connection trouble itself
# (paho 2.2 logs ERROR for every dropped connection and after every clean disconnect).
_PAHO_LOGGER = logging.getLogger(f"{__name__}.paho")
_POLL_S = 0.5  # longest sender sleep without a wake-up (safety net)
_PAHO_EXTRA_INFLIGHT = 8  # room in paho's window for status/discovery messages


@dataclass(frozen=True)
class PublisherStats:
    """Counters of one :class:`MqttPublisher` (since it was created, except ``queued`` and ``dropped``).

    Attributes:
        published: Messages accepted by ``publish*()`` into the outbox.
        acked: Messages the broker acknowledged (QoS 0: written to the connection).
        queued: Messages in the outbox now, in flight included (also older runs' leftovers).
        dropped: Messages the outbox dropped at its bound (oldest unsent first), since the outbox file was
            created: with ``seq`` persisted too, every seq is delivered, queued, or counted here.
        reconnects: Successful connections after the first.
        rejected: Messages the broker refused (MQTT 5 failure reason) or paho could not encode.
    """

    published: int
    acked: int
    queued: int
    dropped: int
    reconnects: int
    rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict (for :func:`payloads.stats_payload`)."""
        return asdict(self)


class MqttPublisher(SequencedPublisher):
    """Store-and-forward MQTT publisher (paho-mqtt 2.x, MQTT 3.1.1, threaded loop).

    The constructor returns at once: it connects in the background and keeps retrying with
    exponential back-off, so a broker that is down at start is not an error.

    Args:
        config: Broker, topics, outbox and discovery settings.
        labels: The model's labels, for the Home Assistant ``enum`` sensor options.
        state_dir: Directory for the default outbox file (``outbox-<device_id>.sqlite3``) when
            ``config.outbox_path`` is ``None``; with neither, the outbox is in memory: unsent
            messages are lost at exit and ``seq`` restarts at 1 (use one on a device).
        sw_version: Reported to Home Assistant; defaults to the installed har-edge version.
        discovery_configs: Home Assistant ``(topic, config)`` pairs to announce instead of the activity
            sensors (a forecaster's, from :func:`~har_edge.transport.discovery.forecast_discovery_messages`).

    Raises:
        BackendNotAvailable: paho-mqtt 2.x is not installed.
        ConfigError: Bad labels, or TLS files that cannot be loaded.
        TransportError: The outbox file cannot be opened.

    Example::

        cfg = parse_broker_url("mqtt://broker.local", base=MqttConfig(device_id="kitchen"))
        with MqttPublisher(cfg, labels=manifest.labels, state_dir="/var/lib/har-edge") as pub:
            pub.publish_activity(state)
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        labels: Sequence[str] = (),
        state_dir: str | os.PathLike[str] | None = None,
        sw_version: str | None = None,
        discovery_configs: Sequence[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__(config)
        mqtt = load_paho()
        for warning in config_warnings(config):
            logger.warning("MQTT: %s", warning)
        self._mqtt = mqtt
        activity_publisher = discovery_configs is None  # a classifier's (a forecaster brings its own configs)
        if discovery_configs is None:
            discovery_configs = discovery_messages(config, labels, sw_version=sw_version)
        configs = list(discovery_configs) if config.discovery else []
        self._discovery = [(topic, payloads.encode(body)) for topic, body in configs]
        self._status_topic = config.topic("status")
        self._acks: queue.SimpleQueue[tuple[int, bool]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._connected_event = threading.Event()
        self._close_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._send_lock = threading.Lock()  # connection state vs. Client.publish of outbox rows
        self._batch_lock = threading.Lock()
        self._batch: list[tuple[str, bytes, int, bool]] | None = None
        self._batch_seqs: dict[str, int] = {}  # seq values assigned in the open batch, committed with it
        # sender thread only: mid -> row id, highest row id handed to paho, their connection
        self._inflight: dict[int, int] = {}
        self._cursor = self._sent_generation = 0
        self._connected = self._closed = self._finished = False
        self._published = self._acked = self._rejected = self._connect_failures = 0
        self._connects = 0  # successful connects; bumped under _send_lock, names the connection
        self._connect_error: str | None = None  # why the latest attempt failed; None once connected
        self._refused = False  # this attempt got a failure CONNACK (already reported)
        self._paho_error: str | None = None  # paho's last ERROR log line: why a socket died

        client = self._build_client(mqtt)
        path = config.outbox_file(state_dir)
        if path is None:
            logger.warning("no outbox_path or state_dir: in-memory outbox, lost at exit; seq restarts at 1")
        self._outbox = Outbox(path if path is not None else ":memory:", max_messages=config.outbox_max_messages)
        if config.clears_activity_on_start and activity_publisher:
            # a zero-length retained message deletes the previous run's retained activity, after any of its
            # messages still in the outbox and before the new ones: nobody sees a stale activity as current
            self._outbox.put(config.topic("activity"), b"", config.qos, True)
            self._published += 1
        self._client = client
        try:
            client.connect_async(config.host, config.port, keepalive=config.keepalive_s)
        except ValueError as exc:
            self._outbox.close()
            raise ConfigError(f"host={config.host!r} port={config.port!r} rejected by paho: {exc}") from exc
        client.loop_start()
        self._sender = threading.Thread(
            target=self._run_sender, name=f"har-edge-mqtt-sender-{config.device_id}", daemon=True
        )
        self._sender.start()

    def _build_client(self, mqtt: ModuleType) -> Client:
        cfg = self.config
        client: Client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=cfg.effective_client_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        client.on_log = self._on_log
        client.will_set(self._status_topic, payloads.STATUS_OFFLINE, qos=1, retain=True)
        apply_credentials_and_tls(client, cfg)
        # paho annotates the delays as int but computes with them as seconds; floats work.
        client.reconnect_delay_set(
            min_delay=cfg.reconnect_min_delay_s,  # type: ignore[arg-type]
            max_delay=cfg.reconnect_max_delay_s,  # type: ignore[arg-type]
        )
        client.max_inflight_messages_set(cfg.max_inflight + _PAHO_EXTRA_INFLIGHT)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    # -- public API ----------------------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, *, qos: int | None = None, retain: bool = False) -> None:
        """Queue a message in the outbox (sent when connected); never blocks on the network.

        ``payload`` may be ``str`` (UTF-8 encoded); ``qos=None`` means ``config.qos``.

        Raises:
            ConfigError: Invalid topic or QoS.
            TransportError: The publisher is closed or the outbox cannot be written.
        """
        check_topic(topic)
        level = check_qos(self.config.qos if qos is None else qos)
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        if self._closed:
            raise TransportError(f"publish to {topic!r} after close()")
        with self._batch_lock:
            if self._batch is not None:
                self._batch.append((topic, data, level, retain))
                return
        self._outbox.put(topic, data, level, retain)
        with self._count_lock:
            self._published += 1
        self._wake.set()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Queue everything published inside the block in one outbox transaction, at its end.

        Much faster for bursts (one classified chunk's messages); order is kept. The ``seq`` values the
        block assigns are committed in the same transaction, so a process killed inside a block leaves
        neither its messages nor a gap in ``seq`` behind. Nested blocks (and other threads' publishes
        meanwhile) join the outer one.
        """
        with self._batch_lock:
            outer = self._batch is None
            if outer:
                self._batch, self._batch_seqs = [], {}
        if not outer:
            yield
            return
        try:
            yield
        finally:
            with self._batch_lock:
                pending, self._batch = self._batch or [], None
                seqs, self._batch_seqs = self._batch_seqs, {}
            if pending or seqs:
                self._outbox.put_many(pending, seqs=seqs)
                with self._count_lock:
                    self._published += len(pending)
                self._wake.set()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until the outbox is empty (all acknowledged); ``False`` on timeout."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        self._wake.set()
        with self._idle:
            while len(self._outbox) > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._outbox.closed:
                    return False
                self._idle.wait(min(remaining, 0.05))
        return True

    def wait_connected(self, timeout_s: float = 10.0) -> bool:
        """Wait until connected to the broker; ``False`` on timeout."""
        return self._connected_event.wait(max(0.0, timeout_s))

    @property
    def connected(self) -> bool:
        """Whether the broker connection is currently up."""
        return self._connected

    @property
    def last_connect_error(self) -> str | None:
        """Why the latest connection attempt failed (e.g. bad credentials, certificate verify
        failed); ``None`` before the first failure and after a successful connect."""
        return self._connect_error

    @property
    def outbox(self) -> Outbox:
        """The underlying outbox (read-only use: ``len()``, ``dropped``)."""
        return self._outbox

    @property
    def stats(self) -> PublisherStats:
        """A snapshot of the publisher's counters."""
        return PublisherStats(
            published=self._published,
            acked=self._acked,
            queued=len(self._outbox),
            dropped=self._outbox.dropped,
            reconnects=max(0, self._connects - 1),
            rejected=self._rejected,
        )

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush for up to ``timeout_s``, publish retained ``offline`` and disconnect cleanly.

        Messages still unacknowledged stay in the outbox file and are sent by the next
        publisher that opens it. Idempotent.
        """
        with self._close_lock:
            if self._finished:
                return
            self._finished = True
            self._closed = True
            deadline = time.monotonic() + max(0.0, timeout_s)
            self.flush(timeout_s)
            self._stop.set()
            self._wake.set()
            self._sender.join(timeout=max(1.0, deadline - time.monotonic()))
            if self._connected:
                try:
                    info = self._client.publish(self._status_topic, payloads.STATUS_OFFLINE, qos=1, retain=True)
                    info.wait_for_publish(timeout=max(0.5, deadline - time.monotonic()))
                except (ValueError, RuntimeError) as exc:
                    logger.warning("could not publish 'offline' to %s: %s", self._status_topic, exc)
            self._client.disconnect()
            self._client.loop_stop()
            if len(self._outbox):
                where = "lost" if self._outbox.path == ":memory:" else f"kept in {self._outbox.path}"
                logger.warning("%d message(s) unacknowledged at close: %s", len(self._outbox), where)
            self._outbox.close()

    # -- SequencedPublisher hooks --------------------------------------------------------------

    def _next_seq(self, stream: str) -> int:
        """The next seq of ``stream``, reserved in the open batch (committed with its messages)."""
        if self._closed:
            raise TransportError(f"publish on the {stream!r} stream after close()")
        with self._batch_lock:
            if self._batch is None:  # not inside a batch: commit it on its own
                return self._outbox.next_seq(stream)
            value = self._batch_seqs.get(stream)
            value = (self._outbox.current_seq(stream) if value is None else value) + 1
            self._batch_seqs[stream] = value
            return value

    def _publish_sequenced(self, kind: str, body: Mapping[str, Any], *, retain: bool, topic: str | None = None) -> int:
        with self.batch():  # seq and message reach the outbox in one transaction
            return super()._publish_sequenced(kind, body, retain=retain, topic=topic)

    def _transport_counters(self) -> dict[str, float]:
        return {**self.stats.as_dict(), "connected": int(self._connected)}

    # -- sender thread -------------------------------------------------------------------------

    def _run_sender(self) -> None:
        interval = self.config.stats_interval_s
        next_stats = time.monotonic() + interval if interval > 0 else math.inf
        while not self._stop.is_set():
            self._wake.wait(min(_POLL_S, max(0.0, next_stats - time.monotonic())))
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self._drain_acks()
                if time.monotonic() >= next_stats and not self._closed:
                    next_stats = time.monotonic() + interval
                    self.publish_stats()
                self._pump()
            except Exception:  # noqa: BLE001 - the sender must survive anything
                logger.exception("MQTT sender failed; retrying in 1 s")
                self._stop.wait(1.0)
        try:
            self._drain_acks()
        except Exception:  # noqa: BLE001
            logger.exception("MQTT sender failed while stopping")

    def _drain_acks(self) -> None:
        """Delete the rows whose PUBACK arrived; wake :meth:`flush` waiters."""
        done: list[int] = []
        while True:
            try:
                mid, failed = self._acks.get_nowait()
            except queue.Empty:
                break
            row_id = self._inflight.pop(mid, None)
            if row_id is None:
                continue  # status / discovery message, not from the outbox
            if failed:
                logger.error("broker refused outbox message %d; dropping it", row_id)
                self._rejected += 1
            else:
                self._acked += 1
            done.append(row_id)
        if done:
            self._outbox.ack_many(done)
        with self._idle:
            self._idle.notify_all()

    def _pump(self) -> None:
        """Hand the oldest unsent rows to paho while connected and the window has room."""
        while not self._stop.is_set():
            with self._send_lock:
                if not self._connected:
                    return
                if self._sent_generation != self._connects:
                    # New connection: paho's copies were dropped in on_connect; start over
                    # from the oldest unacknowledged row.
                    self._drain_acks()
                    self._inflight.clear()
                    self._cursor = self._outbox.sent_through = 0
                    self._sent_generation = self._connects
                room = self.config.max_inflight - len(self._inflight)
                if room <= 0:
                    return
                rows = self._outbox.peek(room, after_id=self._cursor)
                if not rows:
                    return
                for row in rows:
                    if not self._send(row):
                        return

    def _send(self, row: OutboxRow) -> bool:
        """Publish one row; ``False`` means "stop for now, retry from this row later"."""
        mqtt = self._mqtt
        # in flight from here on: the outbox bound must not drop (and count) a row the broker may be receiving
        self._outbox.sent_through = row.id
        try:
            info = self._client.publish(row.topic, row.payload, qos=row.qos, retain=row.retain)
        except ValueError as exc:  # can never be sent (e.g. a bad topic in an old outbox file)
            logger.error("dropping outbox message %d on %r: %s", row.id, row.topic, exc)
            self._outbox.ack(row.id)
            self._rejected += 1
            self._cursor = row.id
            return True
        if row.qos == 0:
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._outbox.sent_through = self._cursor
                return False  # paho does not queue QoS 0 while disconnected
            self._outbox.ack(row.id)
            self._acked += 1
        elif info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # NO_CONN (connection just died): the row is re-sent after the next connect.
            self._inflight[info.mid] = row.id
        else:
            logger.warning("paho did not queue outbox message %d: %s; retrying", row.id, mqtt.error_string(info.rc))
            self._outbox.sent_through = self._cursor
            return False
        self._cursor = row.id
        return True

    # -- paho callbacks (network thread; @guarded: an exception would kill paho's loop) ------

    def _publish_discovery(self, client: Client) -> None:
        for topic, body in self._discovery:
            client.publish(topic, body, qos=1, retain=True)

    @guarded
    def _on_connect(
        self, client: Client, userdata: Any, flags: ConnectFlags, reason_code: ReasonCode, properties: Any
    ) -> None:
        cfg = self.config
        if reason_code.is_failure:
            self._refused = True
            self._connect_problem(f"refused the connection: {reason_code}")
            return
        with held(self._send_lock):
            stale = drop_paho_copies(client)  # the sender re-sends them from the outbox
            self._connects += 1
            self._connected = True
        self._connect_failures = 0
        self._connect_error = self._paho_error = None
        logger.info(
            "connected to MQTT broker %s:%d as %r (connect #%d, %d queued, %d paho copies dropped)",
            *(cfg.host, cfg.port, cfg.effective_client_id, self._connects, len(self._outbox), stale),
        )
        client.publish(self._status_topic, payloads.STATUS_ONLINE, qos=1, retain=True)
        if self._discovery:
            client.subscribe(cfg.discovery_status_topic, qos=1)
            self._publish_discovery(client)
        # after 'online' and discovery are queued (paho sends them when this callback returns, before anything
        # a waiting thread publishes next); wait_connected() does not mean the broker has them yet
        self._connected_event.set()
        self._wake.set()

    def _connect_problem(self, what: str) -> None:
        """Record and log a failed attempt: WARNING when the reason changes, DEBUG for repeats."""
        self._connect_failures += 1
        level = logging.WARNING if what != self._connect_error else logging.DEBUG
        self._connect_error = what
        msg = "MQTT broker %s:%d: %s (attempt %d); retrying, messages stay in the outbox"
        logger.log(level, msg, self.config.host, self.config.port, what, self._connect_failures)

    @guarded
    def _on_connect_fail(self, client: Client, userdata: Any) -> None:
        # paho calls this inside its ``except OSError`` around the (TLS) connect: name the cause.
        exc = sys.exc_info()[1]
        what = f"cannot connect: {exc}" if exc is not None else "cannot connect"
        if isinstance(exc, ssl.SSLCertVerificationError):
            what += " (check tls_ca_path and that the broker certificate names this host)"
        self._connect_problem(what)

    @guarded
    def _on_disconnect(
        self, client: Client, userdata: Any, flags: DisconnectFlags, reason_code: ReasonCode, properties: Any
    ) -> None:
        with held(self._send_lock):
            was_connected, self._connected = self._connected, False
        self._connected_event.clear()
        detail = f"{reason_code}: {self._paho_error}" if self._paho_error else str(reason_code)
        self._paho_error = None
        refused, self._refused = self._refused, False
        if not self._closed and not was_connected:
            if not refused:  # e.g. the broker rejected our TLS client certificate after the handshake
                self._connect_problem(f"connection closed before CONNACK ({detail})")
            return
        level, what = (logging.INFO, "closed") if self._closed else (logging.WARNING, "lost; reconnecting")
        logger.log(level, "MQTT connection to %s:%d %s (%s)", self.config.host, self.config.port, what, detail)

    @guarded
    def _on_publish(self, client: Client, userdata: Any, mid: int, reason_code: ReasonCode, properties: Any) -> None:
        self._acks.put((mid, bool(reason_code.is_failure)))
        self._wake.set()

    @guarded
    def _on_message(self, client: Client, userdata: Any, message: MQTTMessage) -> None:
        if (
            message.topic == self.config.discovery_status_topic
            and not message.retain  # a retained birth is old news: we published on connect
            and message.payload.strip().lower() == payloads.STATUS_ONLINE.encode()
        ):
            logger.info("Home Assistant is online; re-publishing discovery configs")
            self._publish_discovery(client)

    def _on_log(self, client: Client, userdata: Any, level: int, buf: str) -> None:
        if level == self._mqtt.MQTT_LOG_ERR:
            self._paho_error = buf
        _PAHO_LOGGER.debug("%s", buf)
