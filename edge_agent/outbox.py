"""Durable outbox (SQLite, WAL): every event and snapshot is on disk before it is published.

A row is deleted only when the broker's PUBACK for it arrives, so a crash, a SIGKILL or a dead network
loses nothing; rows drain in insertion order. The per-device event ``seq`` lives in the same database
and is taken in the same transaction as the insert, so it stays monotonic across restarts.

Size bound (``outbox.max_bytes``): when the stored payloads exceed it, the oldest *snapshots* are evicted
first; only when no snapshot is left are the oldest events evicted. Every eviction is counted
(``events_dropped`` / ``snapshots_dropped``, persisted, reported in telemetry) — never silent.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('event', 'snapshot')),
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    kind: str
    topic: str
    payload: bytes
    qos: int


class Outbox:
    def __init__(self, path: str | Path, max_bytes: int = 256 * 1024 * 1024):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed event survives power loss too, not only a process crash (events are few).
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._bytes = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM messages").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------------------------------ write
    def add_event(
        self,
        build: Callable[[int], tuple[str, bytes]],
        attachments: list[tuple[str, bytes]] | None = None,
        qos: int = 1,
    ) -> int:
        """Take the next seq, build the event with it and store it (+ its snapshots) atomically."""
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
                seq = (row[0] + 1) if row else 0
                topic, payload = build(seq)
                now = time.time()
                rows = [("event", topic, payload)] + [("snapshot", t, p) for t, p in attachments or []]
                for kind, t, p in rows:
                    db.execute(
                        "INSERT INTO messages (kind, topic, payload, qos, size, created)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (kind, t, p, qos, len(p), now),
                    )
                self._set(db, "seq", seq)
                added = sum(len(p) for _, _, p in rows)
                self._bytes += added
                self._evict(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._bytes = db.execute("SELECT COALESCE(SUM(size), 0) FROM messages").fetchone()[0]
                raise
            return seq

    def _set(self, db: sqlite3.Connection, name: str, value: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
            (name, value, value),
        )

    def _bump(self, db: sqlite3.Connection, name: str, by: int) -> None:
        db.execute(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + ?",
            (name, by, by),
        )

    def _evict(self, db: sqlite3.Connection) -> None:
        for kind, counter in (("snapshot", "snapshots_dropped"), ("event", "events_dropped")):
            while self._bytes > self.max_bytes:
                row = db.execute(
                    "SELECT id, size FROM messages WHERE kind = ? ORDER BY id LIMIT 1", (kind,)
                ).fetchone()
                if row is None:
                    break
                db.execute("DELETE FROM messages WHERE id = ?", (row[0],))
                self._bytes -= row[1]
                self._bump(db, counter, 1)

    # ------------------------------------------------------------------------------------------- read
    def pending(self, after_id: int = 0, limit: int = 100) -> list[OutboxMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, topic, payload, qos FROM messages WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxMessage(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    def delete(self, message_id: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT size FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is not None:
                self._db.execute("DELETE FROM messages WHERE id = ?", (message_id,))
                self._bytes -= row[0]

    def depth(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0
