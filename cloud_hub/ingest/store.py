"""Write one batch of classified records in one transaction: insert-or-ignore, then commit.

A batch is all-or-nothing so the worker can ack exactly the messages that are durable. If the batch
fails for any reason but a lost or busy database (a row the database refuses, a value its driver cannot
encode, a bug), it is replayed one message at a time and the guilty message becomes a dead letter: one
bad row never blocks the stream. A dead letter keeps the head of its body (``DEAD_LETTER_HEAD_BYTES``),
its size and its sha256, never a multi-megabyte body whole.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError

from cloud_hub.camera import ingest as camera_ingest
from cloud_hub.capture import ingest as capture_ingest
from cloud_hub.ingest.records import Record, dead
from cloud_hub.models import DeadLetter, Device, Event, Snapshot, Telemetry
from cloud_hub.snapshots import SnapshotStore

log = logging.getLogger(__name__)

DEVICES: Table = Device.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
SNAPSHOTS: Table = Snapshot.__table__  # type: ignore[assignment]
TELEMETRY: Table = Telemetry.__table__  # type: ignore[assignment]
DEAD_LETTERS: Table = DeadLetter.__table__  # type: ignore[assignment]

# last_seen is refreshed at most this often per device, so parallel workers rarely touch the same row.
LAST_SEEN_RESOLUTION_S = 1.0
DEAD_LETTER_HEAD_BYTES = 4096


def storable_text(text: str) -> str:
    """PostgreSQL text cannot hold NUL, no driver can encode a lone surrogate: a dead letter must be
    storable whatever its topic or reason was."""
    text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def dead_letter_row(record: Record, now: float) -> dict:
    payload = record.incoming.payload
    return {"topic": storable_text(record.incoming.topic[:1024]), "payload": payload[:DEAD_LETTER_HEAD_BYTES],
            "payload_size": len(payload), "payload_sha256": hashlib.sha256(payload).hexdigest(),
            "reason": storable_text(record.reason or "unknown"),
            "received_at": record.incoming.received_at or now}


class TransientDatabaseError(RuntimeError):
    """The database is unreachable or busy: retry the same batch later, ack nothing."""


@dataclass
class BatchResult:
    events_stored: int = 0
    duplicates: int = 0
    statuses: int = 0
    telemetry: int = 0
    snapshots: int = 0
    dead_letters: int = 0


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict], keys: Sequence[str]) -> int:
    """INSERT … ON CONFLICT (keys) DO NOTHING for a whole batch; returns how many rows were new."""
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        return _insert_ignore_postgresql(conn, table, rows, keys)
    if conn.dialect.name != "sqlite":  # pragma: no cover - the hub supports exactly these two
        raise RuntimeError(f"unsupported database dialect {conn.dialect.name!r}")
    # sqlite3's executemany sums rowcount over the rows; an ignored row counts 0.
    stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=list(keys))
    return conn.execute(stmt, list(rows)).rowcount


def _insert_ignore_postgresql(
    conn: Connection, table: Table, rows: Sequence[dict], keys: Sequence[str]
) -> int:
    """One statement per batch, the rows as one JSON document expanded by the server:
    ``INSERT … SELECT cols FROM json_populate_recordset(NULL::table, :rows) ON CONFLICT … RETURNING 1``.

    Measured here: a per-row executemany spends its time in round trips, SQLAlchemy's multi-VALUES
    INSERT…RETURNING is re-parsed by psycopg every batch, and per-column arrays are slow to adapt in
    Python; one JSON parameter (C-encoded) costs the least and RETURNING counts the new rows exactly.
    """
    names = ", ".join(c.name for c in table.columns if c.name in rows[0])
    sql = (f"INSERT INTO {table.name} ({names}) SELECT {names} "
           f"FROM json_populate_recordset(NULL::{table.name}, %(rows)s::json) "
           f"ON CONFLICT ({', '.join(keys)}) DO NOTHING RETURNING 1")
    return len(conn.exec_driver_sql(sql, {"rows": json.dumps(list(rows))}).all())


def ensure_devices(conn: Connection, device_ids: Iterable[str], now: float) -> None:
    """Register unseen devices and refresh last_seen (sorted: a fixed lock order avoids deadlocks)."""
    ids = sorted(set(device_ids))
    if not ids:
        return
    known = dict(conn.execute(select(DEVICES.c.id, DEVICES.c.last_seen).where(DEVICES.c.id.in_(ids))).all())
    new = [{"id": d, "first_seen": now, "last_seen": now, "state": "unknown"} for d in ids if d not in known]
    if new:
        if conn.dialect.name == "postgresql":
            stmt = postgresql.insert(DEVICES).on_conflict_do_nothing(index_elements=["id"])
        else:
            stmt = sqlite.insert(DEVICES).on_conflict_do_nothing(index_elements=["id"])
        conn.execute(stmt, new)
    stale = [d for d, seen in known.items() if seen < now - LAST_SEEN_RESOLUTION_S]
    if stale:
        conn.execute(
            update(DEVICES)
            .where(DEVICES.c.id.in_(stale), DEVICES.c.last_seen < now)
            .values(last_seen=now)
        )


def apply_status(conn: Connection, device_id: str, row: dict) -> None:
    """Statuses apply in arrival order, not by their ``ts``: a last will is stamped when the device
    connects, so the broker's order (one topic, one retained value) is the only trustworthy one."""
    conn.execute(update(DEVICES).where(DEVICES.c.id == device_id).values(**row))


def apply_telemetry(conn: Connection, rows: Sequence[dict]) -> None:
    latest: dict[str, dict] = {}
    for row in rows:
        if row["device_id"] not in latest or row["ts"] >= latest[row["device_id"]]["ts"]:
            latest[row["device_id"]] = row
    for device_id, row in sorted(latest.items()):
        conn.execute(
            update(DEVICES)
            .where(
                DEVICES.c.id == device_id,
                or_(DEVICES.c.telemetry_ts.is_(None), DEVICES.c.telemetry_ts <= row["ts"]),
            )
            .values(fps=row["fps_processed"], inference_ms_p50=row["inference_ms_p50"],
                    telemetry_ts=row["ts"])
        )


class BatchWriter:
    """Commits batches of records; shared by the ingest worker, the benchmarks and tests."""

    def __init__(self, engine: Engine, snapshots: SnapshotStore | None = None):
        self.engine = engine
        self.snapshots = snapshots

    def write(self, records: Sequence[Record]) -> BatchResult:
        try:
            return self._write(records)
        except TransientDatabaseError:
            raise
        except OperationalError as exc:
            raise TransientDatabaseError(str(exc.orig or exc)) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise TransientDatabaseError(str(exc.orig or exc)) from exc
            log.warning("batch of %d refused (%s); replaying one by one", len(records), exc.orig)
        except Exception as exc:  # e.g. sqlite3's UnicodeEncodeError, not a DBAPIError
            log.warning("batch of %d failed (%s: %s); replaying one by one", len(records),
                        type(exc).__name__, exc)
        return self.write_each(records)

    def write_each(self, records: Sequence[Record]) -> BatchResult:
        """One transaction per record; a record that fails for any non-transient reason is a dead letter."""
        total = BatchResult()
        for record in records:
            try:
                result = self._write([record])
            except TransientDatabaseError:
                raise
            except OperationalError as exc:
                raise TransientDatabaseError(str(exc.orig or exc)) from exc
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    raise TransientDatabaseError(str(exc.orig or exc)) from exc
                reason = f"database refused: {type(exc.orig).__name__}: {str(exc.orig).splitlines()[0]}"
                result = self._write([dead(record.incoming, reason)])
            except Exception as exc:
                text = str(exc).splitlines()[0] if str(exc) else ""
                result = self._write([dead(record.incoming, f"cannot store: {type(exc).__name__}: {text}")])
            for name in vars(total):
                setattr(total, name, getattr(total, name) + getattr(result, name))
        return total

    def _write(self, records: Sequence[Record]) -> BatchResult:
        now = time.time()
        result = BatchResult()
        events = [r.row | {"received_at": now} for r in records if r.kind == "event"]
        statuses = [r for r in records if r.kind == "status"]
        telemetry = [r.row for r in records if r.kind == "telemetry"]
        snapshots = [r for r in records if r.kind == "snapshot"]
        if snapshots and self.snapshots is None:  # never drop a picture silently
            records = [dead(r.incoming, "snapshot storage is not configured on this hub")
                       if r.kind == "snapshot" else r for r in records]
            snapshots = []
        dead_letters = [dead_letter_row(r, now) for r in records if r.kind == "dead"]
        snapshot_rows = []
        if snapshots and self.snapshots is not None:
            for r in snapshots:
                try:
                    sha, rel = self.snapshots.put(r.incoming.payload)
                except OSError as exc:  # a full or read-only disk: retry later, ack nothing
                    raise TransientDatabaseError(f"snapshot storage: {exc}") from exc
                snapshot_rows.append({
                    "device_id": r.device_id, "event_id": r.row["event_id"], "sha256": sha, "path": rel,
                    "size_bytes": len(r.incoming.payload), "received_at": now,
                })
        with self.engine.begin() as conn:
            ensure_devices(conn, (r.device_id for r in records if r.device_id and r.kind != "dead"), now)
            result.events_stored = insert_ignore(conn, EVENTS, events, ["device_id", "event_id"])
            result.duplicates = len(events) - result.events_stored
            if telemetry:
                conn.execute(TELEMETRY.insert(), telemetry)
                apply_telemetry(conn, telemetry)
                result.telemetry = len(telemetry)
            for record in statuses:
                apply_status(conn, record.device_id or "", record.row)
            result.statuses = len(statuses)
            result.snapshots = insert_ignore(conn, SNAPSHOTS, snapshot_rows, ["device_id", "event_id"])
            camera_ingest.apply(conn, records, now)
            if any(r.kind in ("capture_chunk", "capture_state") for r in records):
                for record, reason in capture_ingest.apply(conn, records, now, self.snapshots):
                    dead_letters.append(dead_letter_row(dead(record.incoming, reason), now))
                capture_ingest.expire(conn, now)
            if dead_letters:
                conn.execute(DEAD_LETTERS.insert(), dead_letters)
            result.dead_letters = len(dead_letters)
        return result
