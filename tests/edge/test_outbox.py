"""Outbox: order, seq across restarts, size bound with counted eviction (snapshots first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.outbox import Outbox

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm


def add(outbox: Outbox, body: bytes = b"e", snapshot: bytes | None = None) -> int:
    attachments = [("t/snap", snapshot)] if snapshot is not None else []
    return outbox.add_event(lambda seq: ("t/events", body + str(seq).encode()), attachments)


def test_order_seq_and_delete_survive_reopen(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.db")
    assert [add(outbox) for _ in range(3)] == [0, 1, 2]
    rows = outbox.pending()
    assert [r.payload for r in rows] == [b"e0", b"e1", b"e2"]
    outbox.delete(rows[0].id)
    outbox.close()
    reopened = Outbox(tmp_path / "o.db")
    assert [r.payload for r in reopened.pending()] == [b"e1", b"e2"]
    assert add(reopened) == 3  # seq continues after a restart
    assert [r.payload for r in reopened.pending(after_id=rows[1].id)] == [b"e2", b"e3"]


def test_failed_build_rolls_back_and_keeps_seq(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.db")

    def explode(seq: int) -> tuple[str, bytes]:
        raise ValueError("bad event")

    with pytest.raises(ValueError, match="bad event"):
        outbox.add_event(explode)
    assert outbox.depth() == 0 and add(outbox) == 0


def test_size_bound_evicts_oldest_snapshots_first_and_counts(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.db", max_bytes=64 * 1024)
    for _ in range(3):
        add(outbox, snapshot=b"x" * 20_000)
    assert outbox.counter("snapshots_dropped") == 0
    add(outbox, snapshot=b"x" * 20_000)  # 80 kB > 64 kB: the oldest snapshot goes
    kinds = [r.kind for r in outbox.pending()]
    assert kinds.count("snapshot") == 3 and kinds.count("event") == 4
    assert outbox.counter("snapshots_dropped") == 1 and outbox.counter("events_dropped") == 0
    assert outbox.size_bytes() <= 64 * 1024


def test_events_are_evicted_only_when_no_snapshot_is_left_and_are_counted(tmp_path: Path):
    outbox = Outbox(tmp_path / "o.db", max_bytes=64 * 1024)
    add(outbox, snapshot=b"x" * 10_000)
    for _ in range(4):
        add(outbox, body=b"e" * 20_000)
    assert outbox.counter("snapshots_dropped") == 1
    # 80 kB of events for 64 kB: the two oldest (the tiny event 0, then event 1) go, both counted.
    assert outbox.counter("events_dropped") == 2
    first = outbox.pending()[0]
    assert first.kind == "event" and first.payload.endswith(b"2")


def test_events_wait_for_the_hub_and_come_back_when_it_stays_silent(tmp_path: Path):
    """PUBACK marks an event SENT (a snapshot goes); only the hub's confirmation deletes the event;
    an unconfirmed one is NEW again after its ack timeout, which doubles per attempt up to the cap."""
    outbox = Outbox(tmp_path / "o.db")
    add(outbox, snapshot=b"\xff\xd8\xffjpeg")
    add(outbox)
    add(outbox)
    rows = outbox.pending()
    assert [r.kind for r in rows] == ["event", "snapshot", "event", "event"]
    outbox.mark_sent([r.id for r in rows], now=1000.0)
    assert outbox.unsent() == 0 and outbox.unconfirmed() == 3 and outbox.depth() == 3  # snapshot gone
    assert outbox.confirm([(1, 1)]) == 1 and outbox.depth() == 2
    assert outbox.requeue_expired(30, 600, now=1029.0) == 0
    assert outbox.requeue_expired(30, 600, now=1030.0) == 2  # attempt 1: 30 s
    assert [r.payload for r in outbox.pending()] == [b"e0", b"e2"]
    outbox.mark_sent([r.id for r in outbox.pending()], now=2000.0)
    assert outbox.requeue_expired(30, 600, now=2059.0) == 0
    assert outbox.requeue_expired(30, 600, now=2060.0) == 2  # attempt 2: 60 s
    outbox.mark_sent([r.id for r in outbox.pending()], now=3000.0)
    assert outbox.requeue_sent() == 2  # the broker lost our session: everything SENT goes again
    assert outbox.confirm([(0, 0), (2, 5)]) == 2 and outbox.depth() == 0 and outbox.size_bytes() == 0
    for _ in range(12):
        add(outbox)
    outbox.mark_sent([r.id for r in outbox.pending()], now=0.0)
    outbox._change("UPDATE messages SET attempts = 20", [()])
    assert outbox.requeue_expired(30, 600, now=599.0) == 0
    assert outbox.requeue_expired(30, 600, now=600.0) == 12  # capped at 600 s


def test_an_old_outbox_gains_the_ack_columns_and_keeps_its_rows(tmp_path: Path):
    import sqlite3

    from edge_agent.outbox import SCHEMA

    db = sqlite3.connect(tmp_path / "old.db")
    db.executescript(SCHEMA)
    db.execute("INSERT INTO messages (kind, topic, payload, qos, size, created) VALUES"
               " ('event', 't/events', CAST('{\"seq\": 7}' AS BLOB), 1, 11, 0)")
    db.commit()
    db.close()
    outbox = Outbox(tmp_path / "old.db")
    assert [r.payload for r in outbox.pending()] == [b'{"seq": 7}'] and outbox.unsent() == 1
    assert outbox.confirm([(7, 7)]) == 1 and outbox.depth() == 0  # its seq was read from its JSON
