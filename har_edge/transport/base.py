"""The publisher interface shared by the MQTT and in-memory transports.

:class:`Publisher` is the minimal protocol (raw topic + bytes). :class:`ActivityPublisher` adds
the har-edge messages; :class:`SequencedPublisher` implements them once on top of
``publish`` so every backend stamps ``seq`` and picks topics the same way.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

from har_edge.errors import ConfigError
from har_edge.transport import payloads
from har_edge.transport.config import MqttConfig

__all__ = [
    "Message",
    "Publisher",
    "ActivityPublisher",
    "SequencedPublisher",
    "check_topic",
    "check_qos",
]


@dataclass(frozen=True)
class Message:
    """One published message."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@runtime_checkable
class Publisher(Protocol):
    """Anything that can publish bytes to a topic and be closed."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue ``payload`` for ``topic``; must not block on the network."""
        ...

    def close(self) -> None:
        """Release resources; publishing afterwards raises :class:`TransportError`."""
        ...


@runtime_checkable
class ActivityPublisher(Publisher, Protocol):
    """A :class:`Publisher` that also knows the har-edge topics and sequence numbers."""

    def publish_activity(self, state: Mapping[str, Any]) -> int:
        """Publish an activity state (see :func:`payloads.activity_payload`); return its seq."""
        ...

    def publish_event(self, event: Mapping[str, Any]) -> int:
        """Publish a start/end event (see :func:`payloads.event_payload`); return its seq."""
        ...

    def publish_stats(self, counters: Mapping[str, float] | None = None, *,
                      reasons: Mapping[str, int] | None = None) -> None:
        """Publish a stats message with ``counters`` plus the transport's own counters (and a ``reasons`` breakdown)."""
        ...


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid topic to publish to.

    Raises:
        ConfigError: Empty, too long, or containing a wildcard (``+``, ``#``) or NUL.
    """
    if not isinstance(topic, str) or not topic:
        raise ConfigError(f"topic={topic!r} but expected a non-empty string")
    if any(c in topic for c in "+#\0"):
        raise ConfigError(f"topic={topic!r} but a publish topic may not contain '+', '#' or NUL")
    if len(topic.encode("utf-8")) > 65535:
        raise ConfigError(f"topic of {len(topic)} characters but MQTT allows at most 65535 bytes")
    return topic


def check_qos(qos: int) -> int:
    """Return ``qos`` if it is 0, 1 or 2, else raise :class:`ConfigError`."""
    if isinstance(qos, bool) or qos not in (0, 1, 2):
        raise ConfigError(f"qos={qos!r} but expected 0, 1 or 2")
    return qos


_P = TypeVar("_P", bound="SequencedPublisher")


class SequencedPublisher(ABC):
    """Implements the :class:`ActivityPublisher` methods on top of :meth:`publish`.

    Subclasses provide :meth:`publish`, :meth:`close` and :meth:`_next_seq`; they may extend
    :meth:`_transport_counters`. Seq assignment and the publish that follows happen under one
    lock, so messages enter the queue in seq order even with several producer threads.
    """

    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self._seq_lock = threading.Lock()

    @abstractmethod
    def publish(self, topic: str, payload: bytes, *, qos: int | None = None, retain: bool = False) -> None:
        """Queue ``payload`` for ``topic`` (``qos=None`` means ``config.qos``)."""

    @abstractmethod
    def close(self) -> None:
        """Release resources."""

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def _next_seq(self, stream: str) -> int:
        """Return the next sequence number of ``stream`` ("activity" or "event")."""

    def _transport_counters(self) -> dict[str, float]:
        """Counters the transport adds to every stats message."""
        return {}

    def _publish_sequenced(self, kind: str, body: Mapping[str, Any], *, retain: bool, topic: str | None = None) -> int:
        """Stamp ``body`` with the next seq of stream ``kind`` and publish it (to ``config.topic(kind)`` by default)."""
        if not isinstance(body, Mapping):
            raise ConfigError(f"{kind} payload is {type(body).__name__} but expected a mapping")
        topic = self.config.topic(kind) if topic is None else topic
        with self._seq_lock:
            seq = self._next_seq(kind)
            data = payloads.encode(payloads.stamp(body, seq=seq, device_id=self.config.device_id))
            self.publish(topic, data, qos=self.config.qos, retain=retain)
        return seq

    def publish_activity(self, state: Mapping[str, Any]) -> int:
        """Publish an activity state to ``<prefix>/<device>/activity``; return the assigned seq.

        ``state`` is usually :func:`payloads.activity_payload` output with ``seq=None``; the
        publisher fills in ``seq`` and ``device_id``. Retained: the topic holds the current state, so
        a subscriber (Home Assistant after a restart, a dashboard) gets it at once; the outbox delivers
        in order, so after an outage the retained message is still the newest state.
        """
        return self._publish_sequenced("activity", state, retain=True)

    def publish_event(self, event: Mapping[str, Any]) -> int:
        """Publish a start/end event to ``<prefix>/<device>/event`` (not retained); return the assigned seq."""
        return self._publish_sequenced("event", event, retain=False)

    def publish_forecast(self, forecast: Mapping[str, Any]) -> int:
        """Publish a forecast (:func:`payloads.forecast_payload`) to ``<prefix>/<device>/forecast/<target>``.

        Retained (the topic holds the current forecast) at ``config.qos``; ``seq`` counts per target.
        """
        if not isinstance(forecast, Mapping) or "target" not in forecast:
            raise ConfigError("forecast payload must be a mapping with a 'target' (see payloads.forecast_payload)")
        target = str(forecast["target"])
        return self._publish_sequenced(f"forecast/{target}", forecast, retain=True, topic=self.config.forecast_topic(target))

    def publish_stats(self, counters: Mapping[str, float] | None = None, *,
                      reasons: Mapping[str, int] | None = None) -> None:
        """Publish ``counters`` merged over the transport counters (and ``reasons``) to ``<prefix>/<device>/stats``."""
        merged: dict[str, float] = {**self._transport_counters(), **(counters or {})}
        body = payloads.stats_payload(device_id=self.config.device_id, counters=merged, timestamp=time.time(),
                                      reasons=reasons)
        self.publish(self.config.topic("stats"), payloads.encode(body), qos=self.config.qos, retain=False)
