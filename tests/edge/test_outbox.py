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
