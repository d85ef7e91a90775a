"""Acceptance (issue 27): the emulated board plays a real clip, its events reach the hub's database
through the real, locked-down broker with the board's own credentials, and the fleet page lists it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub import auth
from cloud_hub.models import Device as DeviceRow
from cloud_hub.models import Event
from firmware_models.mcu_board.run import Device, play
from shared.payloads import EventPayload
from tests.identity.probe import wait_until
from tests.support.fleet import secure_hub

pytestmark = pytest.mark.slow  # QEMU runs a clip through a secure broker and the hub

BOARD = "mcu-m7-1"
PASSWORD = "a long enough admin password"


def stored(engine, device_id: str) -> list[Event]:
    with Session(engine) as db:
        return list(db.scalars(select(Event).where(Event.device_id == device_id).order_by(Event.seq)))


def device_row(engine, device_id: str) -> DeviceRow | None:
    with Session(engine) as db:
        return db.get(DeviceRow, device_id)


def test_board_events_reach_the_hub_and_the_fleet_page(
    board_build, clip_pixels, database_url, tmp_path: Path
):
    with secure_hub(tmp_path, database_url) as hub:
        secret = hub.registry.add(BOARD, group="mcu").secret
        port = hub.broker.plain
        run = play(clip_pixels, device=Device(BOARD, secret, (port.host, port.port)))
        stats = run.stats
        assert stats["connack"] == 1, stats  # CONNACK code 0: the broker took the board's credentials
        made = stats["events_made"]
        assert made > 0 and stats["events_acked"] == made and stats["events_dropped"] == 0, stats
        assert wait_until(lambda: len(stored(hub.engine, BOARD)) == made, timeout=20), stats
        rows = stored(hub.engine, BOARD)
        assert [r.seq for r in rows] == list(range(made))  # each once, in order
        for row in rows:
            assert row.kind == "detection" and row.model == "fomo-street@2.1.1"
        # The board's JSON is the contract's own: a stored row re-validates as an EventPayload.
        first = rows[0]
        EventPayload(
            event_id=first.event_id,
            device_id=BOARD,
            seq=first.seq,
            ts=first.ts,
            kind=first.kind,
            label=first.label,
            score=first.score,
        )
        assert wait_until(
            lambda: (device_row(hub.engine, BOARD) or DeviceRow()).state == "offline", timeout=10
        )
        row = device_row(hub.engine, BOARD)
        assert (
            row is not None and row.model == "fomo-street@2.1.1" and row.agent_version == "edgesight-mcu/0.1"
        )

        with Session(hub.engine) as db:
            auth.create_user(db, "operator", PASSWORD, "admin")
        client = hub.app.test_client()
        client.get("/login")
        with client.session_transaction() as session:
            csrf = session["csrf"]
        login = client.post("/login", data={"username": "operator", "password": PASSWORD, "csrf_token": csrf})
        assert login.status_code == 302
        page = client.get("/")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert BOARD in html and "fomo-street@2.1.1" in html


def test_board_with_a_wrong_password_is_refused_and_stores_nothing(board_build, clip_pixels, tmp_path: Path):
    with secure_hub(tmp_path, f"sqlite:///{tmp_path / 'hub.db'}") as hub:
        hub.registry.add(BOARD)
        port = hub.broker.plain
        run = play(
            clip_pixels[:3], device=Device(BOARD, "not-the-secret", (port.host, port.port)), check=False
        )
        assert run.exit_code == 5  # the firmware's "broker refused me"
        assert run.stats["connack"] - 1 in (4, 5), json.dumps(run.stats)  # bad credentials / not authorized
        assert run.stats["events_acked"] == 0
        assert stored(hub.engine, BOARD) == []
