"""A bounded, persistent FIFO of outgoing MQTT messages in SQLite.

Every message is written here before it is sent and deleted only once the broker has
acknowledged it, so a broker outage or a process restart loses nothing (short of the bound
being exceeded, when the oldest messages are dropped and counted). The same file also keeps the
per-stream sequence counters, so ``seq`` keeps increasing across restarts, and the count of
dropped messages, written in the same transaction as the drop: after any crash, every ``seq`` ever
assigned is either still queued, acknowledged by the broker, or counted in :attr:`Outbox.dropped`.

The bound counts messages waiting to be sent. Messages already handed to the network
(``id <= sent_through``, set by the publisher) are never dropped: the broker may be delivering them,
so dropping (and counting) them would count messages that arrive.

One process should own a file at a time. All methods are thread-safe.

>>> with Outbox(":memory:", max_messages=2) as box:
...     for n in range(3):
...         _ = box.put("t", b"%d" % n)
...     [row.payload for row in box.peek(10)], len(box), box.dropped
([b'1', b'2'], 2, 1)
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from har_edge.errors import ConfigError, TransportError

__all__ = ["Outbox", "OutboxRow"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
_DROP_LOG_EVERY = 1000
_DROPPED_KEY = "__dropped__"  # in the counters table; never a stream name (streams are topic kinds)


@dataclass(frozen=True)
class OutboxRow:
    """One queued message; ``id`` increases with insertion order and is never reused."""

    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    created_s: float


class Outbox:
    """Bounded on-disk FIFO of messages awaiting broker acknowledgement.

    Args:
        path: SQLite file (parent directories are created) or ``":memory:"`` for a
            non-persistent outbox.
        max_messages: Bound on messages waiting to be sent; a :meth:`put` beyond it drops the oldest
            unsent rows and counts them in :attr:`dropped`.

    Raises:
        ConfigError: ``max_messages`` < 1.
        TransportError: The file cannot be opened or is not an outbox database.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_messages: int = 100_000) -> None:
        if isinstance(max_messages, bool) or not isinstance(max_messages, int) or max_messages < 1:
            raise ConfigError(f"max_messages={max_messages!r} but expected an integer >= 1")
        self.path = str(path)
        self.max_messages = max_messages
        self._lock = threading.Lock()
        self._dropped = 0
        self.sent_through = 0  # rows with id <= this were handed to the network (the publisher's cursor)
        self._conn: sqlite3.Connection | None = None
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise TransportError(f"cannot open outbox {self.path!r}: {exc}") from exc
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode = WAL")
                # NORMAL in WAL mode survives process crashes; only a power cut can lose the
                # last few transactions.
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.executescript(_SCHEMA)
            (count,) = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()
            row = conn.execute("SELECT value FROM counters WHERE name = ?", (_DROPPED_KEY,)).fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise TransportError(f"outbox {self.path!r} is not a usable SQLite outbox: {exc}") from exc
        self._conn = conn
        self._count = int(count)
        self._dropped = int(row[0]) if row else 0
        if self._count:
            logger.info("outbox %s holds %d unsent message(s) from a previous run", self.path, self._count)

    # -- internals -----------------------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise TransportError(f"outbox {self.path!r} is closed")
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run one IMMEDIATE transaction; sqlite errors become TransportError."""
        with self._lock:
            conn = self._db()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise TransportError(f"outbox {self.path!r}: {exc}") from exc

    # -- queue ---------------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int:
        """Append a message and return its row id; drops the oldest rows beyond the bound."""
        return self.put_many([(topic, payload, qos, retain)])[-1]

    def put_many(self, messages: Sequence[tuple[str, bytes, int, bool]], *, seqs: Mapping[str, int] | None = None) -> list[int]:
        """Append ``(topic, payload, qos, retain)`` messages in order, in one transaction; returns their row ids.

        ``seqs`` (stream → last seq assigned to these messages) advances the sequence counters in the same
        transaction, so a crash never leaves a seq that was assigned but neither queued nor counted.
        """
        for _, _, qos, _ in messages:
            if qos not in (0, 1, 2):
                raise ConfigError(f"qos={qos!r} but expected 0, 1 or 2")
        if not messages and not seqs:
            return []
        dropped = 0
        now = time.time()
        ids: list[int] = []
        with self._transaction() as conn:
            for stream, value in (seqs or {}).items():
                row = conn.execute("SELECT value FROM counters WHERE name = ?", (stream,)).fetchone()
                conn.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                             (stream, max(int(value), int(row[0]) if row else 0)))
            for topic, payload, qos, retain in messages:
                cur = conn.execute(
                    "INSERT INTO outbox (topic, payload, qos, retain, created_s) VALUES (?, ?, ?, ?, ?)",
                    (topic, bytes(payload), int(qos), int(bool(retain)), now),
                )
                ids.append(int(cur.lastrowid or 0))
            count = self._count + len(messages)
            if count > self.max_messages:
                sent = int(self.sent_through)
                (in_flight,) = conn.execute("SELECT COUNT(*) FROM outbox WHERE id <= ?", (sent,)).fetchone()
                excess = count - int(in_flight) - self.max_messages
                if excess > 0:
                    dropped = conn.execute(
                        "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE id > ? ORDER BY id LIMIT ?)",
                        (sent, excess),
                    ).rowcount
                    count -= dropped
                    conn.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                                 (_DROPPED_KEY, self._dropped + dropped))
            self._count = count
            before = self._dropped
            self._dropped += dropped
        if dropped and (before == 0 or before // _DROP_LOG_EVERY != self._dropped // _DROP_LOG_EVERY):
            logger.warning(
                "outbox %s is full (max_messages=%d): dropped the oldest message(s), %d so far",
                self.path,
                self.max_messages,
                self._dropped,
            )
        return ids

    def peek(self, limit: int = 100, *, after_id: int = 0) -> list[OutboxRow]:
        """Return up to ``limit`` oldest rows with ``id > after_id``, oldest first (not removed)."""
        with self._lock:
            try:
                rows = self._db().execute(
                    "SELECT id, topic, payload, qos, retain, created_s FROM outbox "
                    "WHERE id > ? ORDER BY id LIMIT ?",
                    (int(after_id), int(limit)),
                ).fetchall()
            except sqlite3.Error as exc:
                raise TransportError(f"outbox {self.path!r}: {exc}") from exc
        return [OutboxRow(int(i), str(t), bytes(p), int(q), bool(r), float(c)) for i, t, p, q, r, c in rows]

    def ack(self, row_id: int) -> bool:
        """Delete one acknowledged row; ``False`` if it was already gone (e.g. dropped)."""
        return self.ack_many((row_id,)) == 1

    def ack_many(self, row_ids: Iterable[int]) -> int:
        """Delete acknowledged rows; return how many existed."""
        ids = [(int(i),) for i in row_ids]
        if not ids:
            return 0
        with self._transaction() as conn:
            deleted = 0
            for params in ids:
                deleted += conn.execute("DELETE FROM outbox WHERE id = ?", params).rowcount
            self._count -= deleted
        return deleted

    def delete_through(self, row_id: int) -> int:
        """Delete every row with ``id <= row_id``; return how many."""
        with self._transaction() as conn:
            deleted = conn.execute("DELETE FROM outbox WHERE id <= ?", (int(row_id),)).rowcount
            self._count -= deleted
        return deleted

    def __len__(self) -> int:
        return self._count

    @property
    def dropped(self) -> int:
        """Messages dropped because the outbox was full, since the outbox file was created (persisted)."""
        return self._dropped

    # -- sequence counters ---------------------------------------------------------------------

    def current_seq(self, stream: str) -> int:
        """The last value :meth:`next_seq` (or a :meth:`put_many` with ``seqs``) gave ``stream``; 0 if none."""
        with self._lock:
            try:
                row = self._db().execute("SELECT value FROM counters WHERE name = ?", (stream,)).fetchone()
            except sqlite3.Error as exc:
                raise TransportError(f"outbox {self.path!r}: {exc}") from exc
        return int(row[0]) if row else 0

    def next_seq(self, stream: str) -> int:
        """Return the next value (1, 2, ...) of a persistent per-stream counter."""
        with self._transaction() as conn:
            row = conn.execute("SELECT value FROM counters WHERE name = ?", (stream,)).fetchone()
            value = int(row[0]) + 1 if row else 1
            conn.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (stream, value))
        return value

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._conn is None

    def close(self) -> None:
        """Close the database; queued rows stay on disk. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Outbox({self.path!r}, queued={self._count}, dropped={self._dropped})"
