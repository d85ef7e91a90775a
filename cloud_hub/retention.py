"""Retention: old events, telemetry, dead letters, snapshots and captured frames (issue 24: they share
the snapshot store) are deleted in small batches, and the snapshot directory is kept under its disk cap
(oldest first, event snapshots and captured frames alike). Small batches keep each transaction
short so ingest and the dashboard never wait long behind a cleanup. Events and telemetry stamped
further ahead than ingest's ts window allows (rows from before that rule: ``ts: 1e12``) are deleted too,
or they would outlive every cutoff.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine, delete, or_, select

from cloud_hub.capture.models import CaptureFrame
from cloud_hub.models import DeadLetter, Event, Snapshot, Telemetry
from cloud_hub.snapshots import SnapshotStore

log = logging.getLogger(__name__)

BATCH = 5000
ORPHAN_GRACE_S = 3600  # a file may be written shortly before its row commits


class Retention:
    def __init__(self, engine: Engine, snapshot_dir: str, days: float | None, cap_mb: float | None,
                 future_s: float = 3600.0):
        self.engine = engine
        self.future_s = future_s
        self.store = SnapshotStore(snapshot_dir)
        self.days = days
        self.cap_bytes = int(cap_mb * 1024 * 1024) if cap_mb else None

    def _delete_older(self, model, column, cutoff: float, ahead: float | None = None) -> int:
        """Rows with ``column`` before ``cutoff`` (or, given ``ahead``, after it)."""
        condition = column < cutoff if ahead is None else or_(column < cutoff, column > ahead)
        total = 0
        while True:
            with self.engine.begin() as conn:
                ids = select(model.id).where(condition).limit(BATCH).scalar_subquery()
                deleted = conn.execute(delete(model).where(model.id.in_(ids))).rowcount
            total += deleted
            if deleted < BATCH:
                return total

    def _delete_snapshot_rows(self, rows: list[tuple[int, str]], model=Snapshot) -> int:
        """Delete rows (of ``model``: Snapshot or CaptureFrame), then the files no remaining row of either
        points at (the store is content-addressed: one file may serve both); returns bytes freed."""
        if not rows:
            return 0
        with self.engine.begin() as conn:
            conn.execute(delete(model).where(model.id.in_([r[0] for r in rows])))
            paths = {r[1] for r in rows}
            still_used = set(conn.execute(select(Snapshot.path).where(Snapshot.path.in_(paths))).scalars())
            still_used |= set(conn.execute(select(CaptureFrame.path).where(CaptureFrame.path.in_(paths)))
                              .scalars())
        return sum(self.store.delete(p) for p in paths - still_used)

    def expire_snapshots(self, cutoff: float) -> tuple[int, int]:
        count = freed = 0
        for model in (Snapshot, CaptureFrame):
            while True:
                with self.engine.connect() as conn:
                    rows = conn.execute(select(model.id, model.path).where(model.received_at < cutoff)
                                        .limit(BATCH)).all()
                freed += self._delete_snapshot_rows([tuple(r) for r in rows], model)
                count += len(rows)
                if len(rows) < BATCH:
                    break
        return count, freed

    def enforce_cap(self) -> tuple[int, int]:
        """Oldest snapshots go first until the directory is under the cap."""
        if self.cap_bytes is None:
            return 0, 0
        usage = self.store.usage_bytes()
        count = freed = 0
        while usage > self.cap_bytes:
            with self.engine.connect() as conn:
                oldest = sorted(
                    [(r.received_at, r.id, r.path, r.size_bytes, model) for model in (Snapshot, CaptureFrame)
                     for r in conn.execute(select(model.id, model.path, model.size_bytes, model.received_at)
                                           .order_by(model.received_at, model.id).limit(500)).all()],
                    key=lambda r: (r[0], r[1]))[:500]
            if not oldest:
                break
            by_model: dict[type, list[tuple[int, str]]] = {Snapshot: [], CaptureFrame: []}
            planned = 0
            for _at, row_id, path, size, model in oldest:  # just enough of the oldest to get under the cap
                by_model[model].append((row_id, path))
                planned += size
                if usage - planned <= self.cap_bytes:
                    break
            rows = by_model[Snapshot] + by_model[CaptureFrame]
            released = sum(self._delete_snapshot_rows(r, m) for m, r in by_model.items())
            usage -= released
            freed += released
            count += len(rows)
        return count, freed

    def sweep_orphans(self) -> int:
        """Files no row points at (a crash between write and commit, a deleted device)."""
        with self.engine.connect() as conn:
            known = set(conn.execute(select(Snapshot.path)).scalars())
            known |= set(conn.execute(select(CaptureFrame.path)).scalars())
        removed = 0
        for path in self.store.root.glob("*/*/*.jpg"):
            rel = path.relative_to(self.store.root).as_posix()
            if rel not in known and path.stat().st_mtime < time.time() - ORPHAN_GRACE_S:
                removed += self.store.delete(rel) > 0
        return removed

    def run(self) -> dict[str, int]:
        report = {"events": 0, "telemetry": 0, "dead_letters": 0, "snapshots": 0, "snapshot_bytes": 0}
        now = time.time()
        ahead = now + self.future_s
        if self.days is not None:
            cutoff = now - self.days * 86400
            report["events"] = self._delete_older(Event, Event.ts, cutoff, ahead)
            report["telemetry"] = self._delete_older(Telemetry, Telemetry.ts, cutoff, ahead)
            report["dead_letters"] = self._delete_older(DeadLetter, DeadLetter.received_at, cutoff)
            report["snapshots"], report["snapshot_bytes"] = self.expire_snapshots(cutoff)
        else:  # no age limit: only what no clock could have stamped
            report["events"] = self._delete_older(Event, Event.ts, 0.0, ahead)
            report["telemetry"] = self._delete_older(Telemetry, Telemetry.ts, 0.0, ahead)
        report["orphans"] = self.sweep_orphans() if self.store.root.exists() else 0
        capped, freed = self.enforce_cap()
        report["snapshots"] += capped
        report["snapshot_bytes"] += freed
        log.info("retention pass", extra={"report": report})
        return report


class RetentionThread(threading.Thread):
    """Runs a retention pass every ``interval_s`` until ``stop`` is set (part of `cloud-hub ingest`)."""

    def __init__(self, retention: Retention, stop: threading.Event, interval_s: float = 3600):
        super().__init__(name="retention", daemon=True)
        self.retention = retention
        self.stop_event = stop
        self.interval_s = interval_s

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.retention.run()
            except Exception:  # retention must never take ingest down; it retries next interval
                log.exception("retention pass failed")
            self.stop_event.wait(self.interval_s)
