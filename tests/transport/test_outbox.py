"""The SQLite outbox: FIFO order, bound with drop-oldest, persistence, thread safety."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from har_edge.errors import ConfigError, TransportError
from har_edge.transport.outbox import Outbox


def test_fifo_order_peek_and_ack(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        ids = [box.put("t/a", b"%d" % i, qos=1, retain=i == 2) for i in range(5)]
        assert ids == sorted(ids) and len(set(ids)) == 5
        assert len(box) == 5
        rows = box.peek(3)
        assert [r.payload for r in rows] == [b"0", b"1", b"2"]
        assert rows[2].retain and not rows[0].retain and rows[0].qos == 1 and rows[0].topic == "t/a"
        assert [r.payload for r in box.peek(10, after_id=ids[2])] == [b"3", b"4"]
        assert box.ack(ids[1]) is True
        assert box.ack(ids[1]) is False  # already gone
        assert [r.payload for r in box.peek(10)] == [b"0", b"2", b"3", b"4"]
        assert box.delete_through(ids[3]) == 3
        assert [r.payload for r in box.peek(10)] == [b"4"]
        assert box.ack_many([ids[4], 999]) == 1
        assert len(box) == 0 and box.peek(10) == []


def test_bounded_drops_oldest_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="har_edge.transport.outbox"):
        with Outbox(tmp_path / "o.db", max_messages=3) as box:
            for i in range(7):
                box.put("t", b"%d" % i)
            assert len(box) == 3
            assert box.dropped == 4
            assert [r.payload for r in box.peek(10)] == [b"4", b"5", b"6"]
    warnings = [r for r in caplog.records if "full" in r.getMessage()]
    assert len(warnings) == 1, "drops are logged once, not once per message"
    assert "max_messages=3" in warnings[0].getMessage()


def test_pending_messages_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.sqlite3"  # parent directory is created
    with Outbox(path) as box:
        first = [box.put("t", b"%d" % i) for i in range(4)]
        box.ack(first[0])
    with Outbox(path) as box:
        assert len(box) == 3
        assert [r.payload for r in box.peek(10)] == [b"1", b"2", b"3"]
        box.delete_through(first[-1])
        assert len(box) == 0
        # ids keep increasing after the table was emptied (AUTOINCREMENT), so order holds
        assert box.put("t", b"new") > first[-1]


def test_sequence_counters_persist_per_stream(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        assert [box.next_seq("activity") for _ in range(3)] == [1, 2, 3]
        assert box.next_seq("event") == 1
    with Outbox(path) as box:
        assert box.next_seq("activity") == 4
        assert box.next_seq("event") == 2


def test_uses_wal_journal(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        box.put("t", b"x")
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            conn.close()


def test_concurrent_puts_and_acks_from_threads(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as box:
        errors: list[BaseException] = []

        def producer(n: int) -> None:
            try:
                for i in range(50):
                    box.put(f"t/{n}", b"%d" % i)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(box) == 200
        rows = box.peek(1000)
        assert len({r.id for r in rows}) == 200
        for n in range(4):  # each producer's messages stay in its own order
            assert [r.payload for r in rows if r.topic == f"t/{n}"] == [b"%d" % i for i in range(50)]
        acker = threading.Thread(target=box.ack_many, args=([r.id for r in rows[:100]],))
        acker.start()
        acker.join()
        assert len(box) == 100


def test_in_memory_outbox() -> None:
    with Outbox(":memory:", max_messages=2) as box:
        box.put("t", b"a")
        assert len(box) == 1


def test_closed_outbox_raises_transport_error(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.close()
    box.close()  # idempotent
    assert box.closed
    with pytest.raises(TransportError, match="closed"):
        box.put("t", b"x")
    with pytest.raises(TransportError, match="closed"):
        box.peek()


def test_not_a_database_raises_transport_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(TransportError, match="garbage.db"):
        Outbox(path)


def test_bad_arguments_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_messages=0"):
        Outbox(tmp_path / "o.db", max_messages=0)
    with Outbox(tmp_path / "o.db") as box, pytest.raises(ConfigError, match="qos=5"):
        box.put("t", b"x", qos=5)
