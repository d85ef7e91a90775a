"""Login rate limit under parallel requests across gunicorn workers, and sessions revoked server-side."""

from __future__ import annotations

import http.cookiejar
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.hub.conftest import PASSWORD, AuthActions
from tests.support.mosquitto import free_port, wait_port

REPO = Path(__file__).resolve().parents[2]


def test_a_copied_cookie_stops_working_after_logout(app, client, auth):
    """Before: the session cookie still worked after logout (it was only cleared in the browser)."""
    auth.create()
    auth.login()
    cookie = client.get_cookie("session").value
    assert client.get("/").status_code == 200
    auth.logout()
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    response = thief.get("/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_password_change_ends_every_other_session(app, client, auth):
    auth.create()
    auth.login()
    other = AuthActions(app, app.test_client())
    other.login()
    assert other.client.get("/").status_code == 200
    changed = client.post("/account/password", data={"current": PASSWORD, "new": "a brand new password",
                                                     "csrf_token": auth.csrf()})
    assert changed.status_code == 302
    assert client.get("/").status_code == 200  # the browser that changed it stays signed in
    assert other.client.get("/").status_code == 302  # the other one is out
    assert other.login("admin", PASSWORD).status_code == 401
    assert other.login("admin", "a brand new password").status_code == 302
    wrong = client.post("/account/password", data={"current": "not it at all", "new": "another password!",
                                                   "csrf_token": auth.csrf()})
    assert wrong.status_code == 400


def one_wrong_login(base: str) -> int:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login", timeout=60).read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": "admin", "password": "wrong password!", "csrf_token": csrf})
    try:
        return opener.open(f"{base}/login", data=body.encode(), timeout=60).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_parallel_wrong_logins_across_gunicorn_workers_hold_the_limit(app, auth, database_url, tmp_path):
    """Before: 40 parallel wrong logins got 33 evaluated against a limit of 5 per minute."""
    auth.create()
    port = free_port()
    env = dict(os.environ, EDGESIGHT_DATABASE_URL=database_url, EDGESIGHT_SECRET_KEY="test-secret-key",
               EDGESIGHT_INSTANCE_PATH=str(tmp_path / "instance"), EDGESIGHT_BIND=f"127.0.0.1:{port}",
               EDGESIGHT_WEB_WORKERS="3", EDGESIGHT_LOG_FORMAT="text")
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - the child owns it
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--config", "python:cloud_hub.gunicorn_conf",
                               "cloud_hub.wsgi:app"], env=env, cwd=REPO, stdout=log, stderr=log)
    try:
        wait_port("127.0.0.1", port, 60, proc=server)
        base = f"http://127.0.0.1:{port}"
        with ThreadPoolExecutor(40) as pool:
            statuses = list(pool.map(lambda _: one_wrong_login(base), range(40)))
        evaluated = statuses.count(401)
        assert statuses.count(429) == 40 - evaluated, statuses
        assert 1 <= evaluated <= 5, statuses
    finally:
        server.terminate()
        server.wait(20)
