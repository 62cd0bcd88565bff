"""An in-process publisher for tests: it records messages instead of sending them.

>>> pub = InMemoryPublisher()
>>> pub.publish_activity({"activity": "walking", "confidence": 0.9})
1
>>> pub.decoded("har/har-edge/activity")[0]["seq"]
1
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any

from har_edge.errors import TransportError
from har_edge.transport import payloads
from har_edge.transport.base import Message, SequencedPublisher, check_qos, check_topic
from har_edge.transport.config import MqttConfig

__all__ = ["InMemoryPublisher"]


class InMemoryPublisher(SequencedPublisher):
    """Collects published messages in :attr:`messages` (thread-safe, in order).

    Args:
        config: Supplies ``device_id``, topics and QoS; defaults to ``MqttConfig()``.
    """

    def __init__(self, config: MqttConfig | None = None) -> None:
        super().__init__(config if config is not None else MqttConfig())
        self.messages: list[Message] = []
        self.closed = False
        self._lock = threading.Lock()
        self._seqs: defaultdict[str, int] = defaultdict(int)

    def publish(self, topic: str, payload: bytes, *, qos: int | None = None, retain: bool = False) -> None:
        """Record one message.

        Raises:
            ConfigError: Invalid topic or QoS.
            TransportError: The publisher is closed.
        """
        check_topic(topic)
        level = check_qos(self.config.qos if qos is None else qos)
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        with self._lock:
            if self.closed:
                raise TransportError(f"publish to {topic!r} after close()")
            self.messages.append(Message(topic, data, level, bool(retain)))

    def _next_seq(self, stream: str) -> int:
        with self._lock:
            self._seqs[stream] += 1
            return self._seqs[stream]

    def _transport_counters(self) -> dict[str, float]:
        return {"published": len(self.messages)}

    def on_topic(self, topic: str) -> list[Message]:
        """Messages published to ``topic``, oldest first."""
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def decoded(self, topic: str) -> list[dict[str, Any]]:
        """JSON payloads published to ``topic``, oldest first."""
        return [payloads.decode(m.payload) for m in self.on_topic(topic)]

    def clear(self) -> None:
        """Forget recorded messages (sequence counters keep counting)."""
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        """Refuse further publishes; recorded messages stay readable."""
        self.closed = True

