"""``dropped`` counts exactly the messages the outbox threw away: published = delivered + dropped (+ still queued)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from har_edge.transport import payloads
from har_edge.transport.mqtt import MqttPublisher
from har_edge.transport.outbox import Outbox
from tests.fixtures.broker import MosquittoBroker, collect_messages, make_config, state, wait_until

pytestmark = pytest.mark.mqtt


def _seqs(messages: list, topic: str) -> set[int]:
    return {payloads.decode(m.payload)["seq"] for m in messages if m.topic == topic}


def test_dropped_matches_what_never_arrives_when_messages_are_in_flight(
    mosquitto_broker_factory: Callable[..., MosquittoBroker], publishers: Callable[..., MqttPublisher], tmp_path: Path
) -> None:
    """Problem 9: rows already handed to paho were dropped at the bound (and counted) yet still delivered."""
    broker = mosquitto_broker_factory(persistence=True)
    cfg = make_config(broker, "acct", outbox_max_messages=5, max_inflight=5)
    topic = cfg.topic("activity")
    with collect_messages(broker, topic, client_id="acct-sub", clean_session=False) as sub:
        pub = publishers(cfg, state_dir=tmp_path)
        assert pub.wait_connected(5)
        os.kill(broker._proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]  # no PUBACKs: messages stay in flight
        try:
            for n in range(5):
                pub.publish_activity(state("acct", n))
            assert wait_until(lambda: len(pub._inflight) == 5), "the first 5 messages were not handed to paho"
            with pub.batch():
                for n in range(5, 55):
                    pub.publish_activity(state("acct", n))
        finally:
            os.kill(broker._proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
        assert pub.flush(15), pub.stats
        assert sub.wait_for(lambda ms: 55 in _seqs(ms, topic), timeout_s=10)
        received = _seqs(sub.messages, topic)
    stats = pub.stats
    assert stats.published == 55 and stats.queued == 0
    assert len(received) + stats.dropped == 55, (sorted(received), stats)
    assert received == {1, 2, 3, 4, 5} | set(range(51, 56))  # the in-flight ones, then the newest


def test_dropped_is_persisted_with_the_outbox(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path, max_messages=3) as box:
        for n in range(10):
            box.put("t", b"%d" % n)
        assert box.dropped == 7
    with Outbox(path, max_messages=3) as box:
        assert box.dropped == 7  # survives a restart (or a kill: it is written in the same transaction)
        box.put("t", b"x")
        assert box.dropped == 8 and len(box) == 3
