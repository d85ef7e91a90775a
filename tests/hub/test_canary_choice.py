"""The canary is an online device; a target that never connected is warned about (issue 25)."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session

from cloud_hub.models import Device
from cloud_hub.rollout import campaigns as c
from cloud_hub.web.database import ENGINE_KEY


def test_online_devices_go_first_and_never_seen_ones_are_named(app):
    now = time.time()
    with Session(app.extensions[ENGINE_KEY]) as db:
        db.add_all([Device(id="a-offline", first_seen=now, last_seen=now, state="offline"),
                    Device(id="b-online", first_seen=now, last_seen=now, state="online")])
        db.commit()
        ordered, never_seen = c.by_readiness(db, ["a-offline", "0-never", "b-online"])
    assert ordered == ["b-online", "a-offline", "0-never"]
    assert never_seen == ["0-never"]
    assert c.plan_waves(ordered, 1, [1.0])[0] == ["b-online"]
