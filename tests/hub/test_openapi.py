"""/api/v1/openapi.json against the implementation: same operations, and real responses fit the schemas."""

from __future__ import annotations

import re
import time

from cloud_hub.ingest.records import Incoming, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.web import openapi
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.helpers import TOPICS, event, status, telemetry

# Other areas document themselves via openapi.OPERATIONS.
HUB_BLUEPRINTS = ("api.", "openapi.", "camera.", "capture.", "adapt.", "rollout.")


def implemented_operations(app) -> set[tuple[str, str]]:
    ops = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or not rule.endpoint.startswith(HUB_BLUEPRINTS):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        ops |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return ops


def test_every_route_is_documented_and_every_documented_operation_exists(app, client):
    doc = client.get("/api/v1/openapi.json").get_json()  # public: no data in it
    assert doc["openapi"].startswith("3.1")
    documented = {(method, path) for path, item in doc["paths"].items() for method in item}
    assert documented == implemented_operations(app)
    for item in doc["paths"].values():
        for spec in item.values():
            for ref in re.findall(r'"\$ref": "#/components/schemas/(\w+)"', str(spec).replace("'", '"')):
                assert ref in doc["components"]["schemas"]


def test_real_responses_validate_against_the_documented_models(app, api, auth, client):
    now = time.time()
    writer = BatchWriter(app.extensions[ENGINE_KEY], SnapshotStore(app.config["HUB_SETTINGS"].snapshot_dir))
    snap_event = event("cam-1", 2, has_snapshot=True, bbox=(0.1, 0.2, 0.3, 0.4), attributes={"colour": "red"})
    messages = [(TOPICS.status("cam-1"), status("cam-1").to_bytes()),
                (TOPICS.events("cam-1"), event("cam-1", 1, ts=now - 5).to_bytes()),
                (TOPICS.events("cam-1"), snap_event.to_bytes()),
                (TOPICS.snapshot("cam-1", snap_event.event_id), b"\xff\xd8\xff\xe0jpeg"),
                (TOPICS.telemetry("cam-1"), telemetry("cam-1", inference_ms_p95=9.0).to_bytes())]
    writer.write([classify(TOPICS, Incoming(t, raw, received_at=now)) for t, raw in messages])

    page = openapi.EventPage.model_validate(api.get("/api/v1/events?limit=1").get_json())
    assert page.next_cursor is not None
    full = openapi.EventPage.model_validate(api.get("/api/v1/events").get_json())
    assert [e.snapshot_url is not None for e in full.items] == [True, False]
    assert api.get(full.items[0].snapshot_url).mimetype == "image/jpeg"
    openapi.DeviceList.model_validate(api.get("/api/v1/devices").get_json())
    openapi.DeviceOut.model_validate(api.get("/api/v1/devices/cam-1").get_json())
    openapi.TelemetryList.model_validate(api.get("/api/v1/devices/cam-1/telemetry").get_json())
    for group in ("label", "line", "zone", "kind", "device"):
        openapi.Counts.model_validate(api.get(f"/api/v1/counts?group={group}").get_json())
    openapi.Me.model_validate(api.get("/api/v1/me").get_json())
    openapi.TokenList.model_validate(api.get("/api/v1/tokens").get_json())
    openapi.Error.model_validate(api.get("/api/v1/events?limit=0").get_json())

    auth.create("admin", "admin")
    auth.login("admin")
    csrf = {"X-CSRF-Token": auth.csrf()}
    created = client.post("/api/v1/tokens", json={"name": "ci"}, headers=csrf)
    token = openapi.NewToken.model_validate(created.get_json())
    openapi.TokenOut.model_validate(client.delete(f"/api/v1/tokens/{token.id}", headers=csrf).get_json())
    new_user = client.post("/api/v1/users", json={"username": "v", "password": "p" * 12}, headers=csrf)
    openapi.UserOut.model_validate(new_user.get_json())
    openapi.UserList.model_validate(client.get("/api/v1/users").get_json())
    renamed = client.patch("/api/v1/devices/cam-1", json={"name": "Front door", "site": "HQ"}, headers=csrf)
    assert openapi.DeviceOut.model_validate(renamed.get_json()).name == "Front door"
    assert client.patch("/api/v1/devices/cam-1", json={"state": "online"}, headers=csrf).status_code == 400
    assert client.delete("/api/v1/devices/cam-1", headers=csrf).status_code == 204
    assert openapi.DeviceList.model_validate(client.get("/api/v1/devices").get_json()).items == []
