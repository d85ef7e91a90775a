"""Dashboard credentials pages: an admin enrols, rotates and revokes through CSRF-checked forms; the
broker (real Mosquitto) follows; viewers cannot; the secret is shown once and never cached."""

from __future__ import annotations

import html
import re

import pytest
import yaml
from sqlalchemy.orm import Session

from cloud_hub import auth, create_app
from cloud_hub import db as hub_db
from cloud_hub.identity.models import DeviceCredential
from cloud_hub.web.database import ENGINE_KEY
from tests.identity.probe import wait_until

PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path, secure_broker):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    hub_db.upgrade(url)
    admin_user, admin_password = secure_broker.login("admin")
    control_user, control_password = secure_broker.login("control")
    app = create_app(
        {
            "instance_path": str(tmp_path / "instance"),
            "database_url": url,
            "secret_key": "test-key",
            "log_format": "text",
            "mqtt_url": f"mqtt://{control_user}:{control_password}@127.0.0.1:{secure_broker.broker.port}",
            "mqtt_admin_url": f"mqtt://{admin_user}:{admin_password}@127.0.0.1:{secure_broker.broker.port}",
            "device_mqtt_url": secure_broker.tls.url,
            "device_ca_file": secure_broker.tls.ca_file,
        }
    )
    app.config["TESTING"] = True
    with Session(app.extensions[ENGINE_KEY]) as db:
        auth.create_user(db, "admin", PASSWORD, "admin")
        auth.create_user(db, "viewer", PASSWORD, "viewer")
    yield app
    app.extensions[ENGINE_KEY].dispose()


def login(app, username: str):
    client = app.test_client()
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf"]
    assert (
        client.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
        ).status_code
        == 302
    )
    with client.session_transaction() as session:
        return client, session["csrf"]


def issued_secret(response) -> str:
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    snippet = html.unescape(re.search(r'<pre id="agent-config">(.*?)</pre>', response.text, re.S).group(1))
    return yaml.safe_load(snippet)["device"]["password"]


def connects(secure_broker, probes, device, secret) -> bool:
    return not probes(secure_broker.tls, device, secret, client_id=device).connect().is_failure


def test_admin_enrols_rotates_and_revokes_from_the_dashboard(app, secure_broker, probes):
    client, csrf = login(app, "admin")
    page = client.get("/devices/credentials")
    assert page.status_code == 200 and 'name="name"' in page.text

    first = issued_secret(
        client.post(
            "/devices/credentials",
            data={"name": "cam-web-1", "group": "canary", "tags": "street, north", "csrf_token": csrf},
        )
    )
    assert connects(secure_broker, probes, "cam-web-1", first)
    assert first not in client.get("/devices/credentials").text  # shown once, on the creating response only

    device_page = client.get("/devices/cam-web-1")
    assert 'id="device-credentials"' in device_page.text and "Rotate secret" in device_page.text

    second = issued_secret(client.post("/devices/cam-web-1/credentials/rotate", data={"csrf_token": csrf}))
    assert not connects(secure_broker, probes, "cam-web-1", first)
    live = probes(secure_broker.tls, "cam-web-1", second, client_id="cam-web-1")
    assert not live.connect().is_failure

    unconfirmed = client.post("/devices/cam-web-1/credentials/revoke", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 302  # no confirmation box ticked: nothing happens
    with Session(app.extensions[ENGINE_KEY]) as db:
        assert db.get(DeviceCredential, "cam-web-1").active
    done = client.post(
        "/devices/cam-web-1/credentials/revoke",
        data={"csrf_token": csrf, "next": "/devices/cam-web-1", "confirm": "yes"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/devices/cam-web-1")
    assert wait_until(live.disconnected.is_set, timeout=5.0)
    assert not connects(secure_broker, probes, "cam-web-1", second)
    assert "revoked" in client.get("/devices/cam-web-1").text

    again = client.post(
        "/devices/credentials", data={"name": "cam-web-1", "csrf_token": csrf}, follow_redirects=True
    )
    assert again.status_code == 200  # re-enrolment works; a bad name is a message, not a crash
    bad = client.post(
        "/devices/credentials", data={"name": "cam/evil", "csrf_token": csrf}, follow_redirects=True
    )
    assert "could not add" in bad.text and "invalid device id" in html.unescape(bad.text)


def test_viewers_and_forged_forms_are_refused(app, secure_broker, probes):
    viewer, csrf = login(app, "viewer")
    assert viewer.get("/devices/credentials").status_code == 403
    assert viewer.post("/devices/credentials", data={"name": "cam-x", "csrf_token": csrf}).status_code == 403
    admin, _ = login(app, "admin")
    assert admin.post("/devices/credentials", data={"name": "cam-x"}).status_code == 400  # no CSRF token
    anonymous = app.test_client()
    assert anonymous.get("/devices/credentials").status_code == 302  # to the login page
    with Session(app.extensions[ENGINE_KEY]) as db:
        assert db.get(DeviceCredential, "cam-x") is None


@pytest.mark.browser
def test_credentials_in_real_chromium(app, secure_broker, probes, browser):
    """An admin enrols a device and revokes it from its device page in headless Chromium (screenshots)."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.hub.conftest import LiveServer
    from tests.support.mosquitto import REPO

    artifacts = REPO / "test-artifacts" / "identity"
    artifacts.mkdir(parents=True, exist_ok=True)
    server = LiveServer(app)
    # Pages reload after each form: a node looked up mid-navigation is gone; poll again until the deadline.
    wait = WebDriverWait(browser, 10, ignored_exceptions=(WebDriverException,))
    try:
        browser.get(server.url + "/login")
        browser.find_element(By.NAME, "username").send_keys("admin")
        browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form.login button").click()
        wait.until(lambda b: b.find_elements(By.LINK_TEXT, "Credentials"))  # the admin's nav link
        browser.get(server.url + "/devices/credentials")
        browser.find_element(By.NAME, "name").send_keys("cam-browser-1")
        browser.find_element(By.NAME, "group").send_keys("canary")
        browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
        snippet = wait.until(lambda b: b.find_elements(By.ID, "agent-config"))[0].text
        browser.save_screenshot(str(artifacts / "credentials-issued.png"))
        secret = yaml.safe_load(snippet)["device"]["password"]
        live = probes(secure_broker.tls, "cam-browser-1", secret, client_id="cam-browser-1")
        assert not live.connect().is_failure

        browser.get(server.url + "/devices/cam-browser-1")
        browser.find_element(By.CSS_SELECTOR, '#device-credentials input[name="confirm"]').click()
        browser.find_element(By.CSS_SELECTOR, '#device-credentials button[name="revoke"]').click()
        wait.until(lambda b: "cam-browser-1 revoked:" in b.page_source)
        assert wait.until(lambda b: "revoked" in b.find_element(By.ID, "device-credentials").text)
        browser.save_screenshot(str(artifacts / "device-revoked.png"))
        assert wait_until(live.disconnected.is_set, timeout=5.0)
    finally:
        server.stop()
