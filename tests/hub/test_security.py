"""Auth and web security: login, CSRF, cookie flags, rate limit, roles, API tokens, path traversal."""

from __future__ import annotations

from cloud_hub.ingest.records import Incoming, classify
from cloud_hub.ingest.store import BatchWriter
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.web.database import ENGINE_KEY
from tests.hub.conftest import PASSWORD
from tests.hub.helpers import TOPICS, event


def test_everything_but_health_needs_a_login(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/events").status_code == 401
    assert client.get("/api/v1/devices").get_json() == {"error": "login required"}
    page = client.get("/events?label=car")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login?next=/events")


def test_login_rotates_the_session_and_sets_safe_cookie_flags(client, auth):
    auth.create()
    client.get("/login")
    anonymous_csrf = auth.csrf()
    response = client.post("/login", data={"username": "admin", "password": PASSWORD,
                                           "csrf_token": anonymous_csrf})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP here; see the TLS case below
    assert auth.csrf() != anonymous_csrf  # nothing of the anonymous session survives
    assert client.get("/api/v1/me").get_json()["username"] == "admin"
    auth.logout()
    assert client.get("/api/v1/me").status_code == 401


def test_cookie_is_secure_behind_tls(client, auth):
    auth.create()
    client.get("/login", base_url="https://hub.example")
    with client.session_transaction(base_url="https://hub.example") as session:
        csrf = session["csrf"]
    response = client.post("/login", base_url="https://hub.example",
                           data={"username": "admin", "password": PASSWORD, "csrf_token": csrf})
    assert "Secure" in response.headers["Set-Cookie"]


def test_state_changing_requests_without_csrf_token_get_400(client, auth):
    auth.create()
    client.get("/login")
    assert client.post("/login", data={"username": "admin", "password": PASSWORD}).status_code == 400
    assert auth.login().status_code == 302
    assert client.post("/account/tokens", data={"name": "x"}).status_code == 400
    assert client.post("/account/tokens", data={"name": "x", "csrf_token": "forged"}).status_code == 400
    assert client.post("/api/v1/tokens", json={"name": "x"}).status_code == 400
    ok = client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": auth.csrf()})
    assert ok.status_code == 201


def test_sixth_bad_login_in_a_minute_is_429(client, auth):
    auth.create()
    statuses = [auth.login("admin", "wrong password!").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    assert auth.login().status_code == 429  # even the right password waits out the minute


def test_viewer_gets_403_on_admin_actions(client, auth, app):
    auth.create("admin", "admin")
    auth.create("viewer", "viewer")
    auth.login("viewer")
    csrf = {"X-CSRF-Token": auth.csrf()}
    assert client.get("/admin/users").status_code == 403
    assert client.get("/api/v1/users").status_code == 403
    assert client.post("/api/v1/users", json={"username": "eve", "password": "x" * 12}, headers=csrf
                       ).status_code == 403
    assert client.delete("/api/v1/devices/cam-1", headers=csrf).status_code == 403
    assert client.patch("/api/v1/devices/cam-1", json={"name": "x"}, headers=csrf).status_code == 403
    auth.logout()
    auth.login("admin")
    created = client.post("/api/v1/users", json={"username": "eve", "password": "x" * 12, "role": "viewer"},
                          headers={"X-CSRF-Token": auth.csrf()})
    assert created.status_code == 201


def test_api_token_works_and_a_revoked_one_does_not(client, auth, app):
    auth.create("script-owner", "viewer")
    secret = auth.token("script-owner", "nightly export")
    bearer = {"Authorization": f"Bearer {secret}"}
    assert client.get("/api/v1/me", headers=bearer).get_json()["auth"] == "token"
    token_id = client.get("/api/v1/tokens", headers=bearer).get_json()["items"][0]["id"]
    assert client.delete(f"/api/v1/tokens/{token_id}", headers=bearer).status_code == 200
    refused = client.get("/api/v1/events", headers=bearer)
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "invalid or revoked API token"
    assert client.get("/api/v1/events", headers={"Authorization": "Bearer esk_made-up"}).status_code == 401


def test_snapshot_paths_cannot_escape(api, app, tmp_path):
    store = SnapshotStore(app.config["HUB_SETTINGS"].snapshot_dir)
    writer = BatchWriter(app.extensions[ENGINE_KEY], store)
    jpeg = b"\xff\xd8\xff\xe0" + b"edgesight" * 50
    payload = event("cam-1", 1, has_snapshot=True)
    writer.write([classify(TOPICS, Incoming(TOPICS.events("cam-1"), payload.to_bytes())),
                  classify(TOPICS, Incoming(TOPICS.snapshot("cam-1", payload.event_id), jpeg))])
    (tmp_path / "secret.txt").write_text("top secret")
    good = api.get(f"/api/v1/snapshots/cam-1/{payload.event_id}")
    assert good.status_code == 200 and good.data == jpeg and good.mimetype == "image/jpeg"
    for path in ("/api/v1/snapshots/..%2f..%2fsecret.txt", "/api/v1/snapshots/cam-1/..%2f..%2fsecret.txt",
                 "/api/v1/snapshots/..%2f/..%2fsecret.txt", "/api/v1/snapshots/cam-1/%2e%2e",
                 "/api/v1/snapshots/%2e%2e/%2e%2e"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert b"top secret" not in response.data


def test_login_returns_to_local_pages_only(client, auth):
    auth.create()
    for target, expected in (("/events?label=car", "/events?label=car"), ("//evil.example/x", "/"),
                             ("https://evil.example/", "/"), ("/\\evil.example", "/")):
        client.get("/login")
        response = client.post("/login", query_string={"next": target},
                               data={"username": "admin", "password": PASSWORD, "csrf_token": auth.csrf()})
        assert response.headers["Location"] == expected, target
        auth.logout()


def test_pages_send_protective_headers(client, auth):
    headers = client.get("/login").headers
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
