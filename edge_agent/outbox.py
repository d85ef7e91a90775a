"""Durable outbox (SQLite, WAL): every event and snapshot is on disk before it is published.

An event row lives through three states: NEW (to publish) → SENT (the broker's PUBACK came) → gone
(the *hub* said it stored or rejected that ``seq``: ``confirm``). A PUBACK only means the broker holds
the message, and a broker can forget (a kill -9 before its autosave): so a SENT event is published again
when no hub acknowledgement came within its ack timeout (30 s, doubling per attempt up to 600 s;
``requeue_expired``), and at once when the broker shows it lost our session (``requeue_sent``). The
hub's insert-or-ignore makes every resend harmless. Snapshots (raw JPEG, no seq on the wire) still go on
their PUBACK. Rows drain in insertion order. The per-device event ``seq`` lives in the same database and
is taken in the same transaction as the insert, so it stays monotonic across restarts.

Durability: an insert is synced to disk (``synchronous=FULL``); state changes and deletions are not
(``NORMAL``) — losing one to a power cut only means a resend, which the hub ignores.

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

# Columns added for the hub's end-to-end acknowledgement (issue 21); older outboxes get them on open.
ACK_COLUMNS = {
    "seq": "INTEGER",
    "state": "INTEGER NOT NULL DEFAULT 0",
    "sent_at": "REAL",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
}
INDEXES = """
CREATE INDEX IF NOT EXISTS ix_messages_state ON messages (state, id);
CREATE INDEX IF NOT EXISTS ix_messages_seq ON messages (seq);
"""

NEW, SENT = 0, 2  # (1 was considered for "handed to the MQTT client"; that lives in memory only)


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
        have = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        for name, ddl in ACK_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE messages ADD COLUMN {name} {ddl}")
        if "seq" not in have:  # events written before: their seq is in their JSON
            self._db.execute(
                "UPDATE messages SET seq = json_extract(CAST(payload AS TEXT), '$.seq')"
                " WHERE kind = 'event' AND seq IS NULL AND json_valid(CAST(payload AS TEXT))"
            )
        self._db.executescript(INDEXES)
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
            db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
                seq = (row[0] + 1) if row else 0
                topic, payload = build(seq)
                now = time.time()
                rows = [("event", topic, payload)] + [("snapshot", t, p) for t, p in attachments or []]
                for kind, t, p in rows:
                    db.execute(
                        "INSERT INTO messages (kind, topic, payload, qos, size, created, seq, state)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (kind, t, p, qos, len(p), now, seq, NEW),
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
        """NEW rows after ``after_id``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, topic, payload, qos FROM messages WHERE state = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (NEW, after_id, limit),
            ).fetchall()
        return [OutboxMessage(r[0], r[1], r[2], bytes(r[3]), r[4]) for r in rows]

    # ------------------------------------------------------------------------------ state changes
    def _change(self, sql: str, params: list[tuple]) -> int:
        """One unsynced transaction (see the module doc); returns the rows it touched. A DELETE must end
        in ``RETURNING size`` so the byte count stays exact without rescanning the table."""
        with self._lock:
            db = self._db
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            changed = freed = 0
            try:
                for args in params:
                    cur = db.execute(sql, args)
                    if sql.startswith("DELETE"):
                        sizes = cur.fetchall()
                        changed += len(sizes)
                        freed += sum(row[0] for row in sizes)
                    else:
                        changed += cur.rowcount
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._bytes -= freed
            return changed

    def delete(self, message_id: int) -> None:
        self.delete_many([message_id])

    def delete_many(self, ids: list[int]) -> None:
        if ids:
            self._change("DELETE FROM messages WHERE id = ? RETURNING size", [(i,) for i in ids])

    def mark_sent(self, ids: list[int], now: float | None = None) -> None:
        """The broker PUBACK'd these rows: events wait for the hub's word (SENT), snapshots are done."""
        if not ids:
            return
        now = time.time() if now is None else now
        snapshots = "DELETE FROM messages WHERE id = ? AND kind = 'snapshot' RETURNING size"
        self._change(snapshots, [(i,) for i in ids])
        self._change(
            "UPDATE messages SET state = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ?",
            [(SENT, now, i) for i in ids],
        )

    def confirm(self, ranges: list[tuple[int, int]]) -> int:
        """The hub stored (or dead-lettered) these event seqs: they leave the outbox, whatever their state."""
        if not ranges:
            return 0
        return self._change(
            "DELETE FROM messages WHERE kind = 'event' AND seq BETWEEN ? AND ? RETURNING size",
            [(lo, hi) for lo, hi in ranges],
        )

    def requeue_expired(self, timeout_s: float, max_timeout_s: float, now: float | None = None) -> int:
        """SENT events with no hub acknowledgement after ``timeout_s`` × 2^(attempts-1) (capped): NEW."""
        now = time.time() if now is None else now
        return self._change(
            "UPDATE messages SET state = ? WHERE state = ? AND kind = 'event'"
            " AND sent_at + min(? * (1 << min(max(attempts - 1, 0), 30)), ?) <= ?",
            [(NEW, SENT, timeout_s, max_timeout_s, now)],
        )

    def requeue_sent(self) -> int:
        """Every SENT event becomes NEW: the broker lost our session, so perhaps the messages too."""
        return self._change("UPDATE messages SET state = ? WHERE state = ?", [(NEW, SENT)])

    # ------------------------------------------------------------------------------------ counts
    def depth(self) -> int:
        """Every row held: not yet published, or published and not yet confirmed by the hub."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]

    def unsent(self) -> int:
        """Rows the broker has not PUBACK'd (yet, or again after a requeue)."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages WHERE state = ?", (NEW,)).fetchone()[0]

    def unconfirmed(self) -> int:
        """Events PUBACK'd by the broker that the hub has not confirmed yet."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM messages WHERE state = ?", (SENT,)).fetchone()[0]

    def last_seq(self) -> int | None:
        """The last event seq taken (None: no event yet) — a restarted producer continues after it."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
        return row[0] if row else None

    def bump(self, name: str, by: int = 1) -> None:
        if by:
            with self._lock:
                self._bump(self._db, name, by)

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return row[0] if row else 0
