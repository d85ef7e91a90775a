"""Campaigns end to end: registry → signed offers → chunk server → real updaters → states → waves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cloud_hub.rollout import campaigns
from cloud_hub.rollout.schemas import RolloutList, RolloutOut
from edge_agent.updater.config import HealthConfig
from tests.rollout.support import REPO, repackage, wait_for


def _create(hub, model, devices: list[str], **kwargs):
    with hub.session() as db:
        return campaigns.create(db, hub.key, model, ",".join(devices), **kwargs).id


def _state(hub, campaign_id: str) -> str:
    return hub.summary(campaign_id)["state"]


@pytest.mark.browser
def test_canary_then_two_waves_reach_every_device(
    rollout_hub, device_factory, baseline, tmp_path: Path, live_hub: str, browser
) -> None:
    ids = [f"fleet-{i}" for i in range(6)]
    devices = [device_factory(d, public_key=rollout_hub.public_key) for d in ids]
    model = rollout_hub.register(repackage(baseline, tmp_path / "v120", "2.2.0"))
    client = rollout_hub.logged_in_client()  # also creates the operator account
    campaign_id = _create(
        rollout_hub, model, ids, canary=1, waves=[0.5, 1.0], max_failure=0.1, max_concurrent=2
    )
    from selenium.webdriver.common.by import By

    # The operator opens the campaign page while it runs and watches it reach 100% without reloading.
    browser.get(f"{live_hub}/login?next=/rollouts/{campaign_id}")
    browser.find_element(By.NAME, "username").send_keys("operator")
    browser.find_element(By.NAME, "password").send_keys(rollout_hub.PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    wait_for(lambda: "campaign-progress" in browser.page_source, what="the campaign page in Chromium")
    browser.execute_script("document.body.dataset.loadedOnce = 'yes'")  # gone if the page reloads

    wait_for(lambda: _state(rollout_hub, campaign_id) == "completed", timeout=90, what="campaign completed")
    summary = rollout_hub.summary(campaign_id)
    assert [w["total"] for w in summary["waves"]] == [1, 2, 3]
    assert summary["counts"] == {"ACTIVE": 6} and summary["percent"] == 100.0
    assert all(d.camera.active_ref == "fomo-street@2.2.0" for d in devices)
    rows = {d["device_id"]: d for d in summary["devices"]}
    with rollout_hub.session() as db:
        offered = {r.device_id: r.offered_at for r in campaigns.devices_of(db, campaign_id)}
    for later, earlier in ((1, 0), (2, 1)):
        first_of_later = min(offered[d] for d, r in rows.items() if r["wave"] == later)
        last_of_earlier = max(r["updated_at"] for r in rows.values() if r["wave"] == earlier)
        assert first_of_later >= last_of_earlier, f"wave {later} started before wave {earlier} finished"
    intervals = [(offered[d], r["updated_at"]) for d, r in rows.items()]
    most_at_once = max(sum(1 for start, end in intervals if start <= t < end) for t, _ in intervals)
    assert most_at_once <= 2, "never more than max_concurrent transfers at once"
    total_bytes = rollout_hub.service.chunks.counters.bytes
    assert total_bytes == 6 * model.size_bytes, "each device fetched the bundle exactly once"

    api = RolloutOut.model_validate(client.get(f"/api/v1/rollouts/{campaign_id}").get_json())
    assert api.percent == 100.0 and [w.percent for w in api.waves] == [100.0] * 3
    page = client.get(f"/rollouts/{campaign_id}").get_data(as_text=True)
    assert "completed" in page and "6/6 active (100.0%)" in page
    assert len(re.findall(r'<span class="percent">100.0%</span>', page)) == 3

    # Read in one script call: the page replaces the element as it updates, so a reference found first
    # can be stale by the time its text is asked for.
    progress = "return (document.getElementById('campaign-progress') || {}).textContent || ''"
    wait_for(
        lambda: "6/6 active (100.0%)" in browser.execute_script(progress),
        what="the open page to follow the campaign to 100%",
    )
    assert browser.execute_script("return document.body.dataset.loadedOnce") == "yes", "updated in place"
    waves = "return [...document.querySelectorAll('#waves tbody tr .percent')].map(e => e.textContent.trim())"
    assert browser.execute_script(waves) == ["100.0%"] * 3
    state = "return document.getElementById('campaign-state').textContent.trim()"
    assert browser.execute_script(state) == "completed"
    artifacts = REPO / "test-artifacts" / "rollout"
    artifacts.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(artifacts / "campaign-completed.png"))


@pytest.mark.parametrize("cause", ["health-window", "self-test"])
def test_failing_canary_pauses_the_campaign(
    rollout_hub, device_factory, baseline, tmp_path: Path, cause
) -> None:
    ids = [f"lot-{i}" for i in range(4)]
    if cause == "health-window":
        # Cameras with a frame budget no model meets: the candidate fails its health window, reverted.
        health = HealthConfig(min_inferences=8, max_latency_ms_p95=0.001, max_latency_ratio=None)
        model_dir, state, reason = (
            repackage(baseline, tmp_path / "v120", "2.2.0"),
            "ROLLED_BACK",
            "health: p95",
        )
    else:
        # Grey input declared for an RGB network: the registry (graph + golden tensors) accepts it, the
        # device's self-test pushes a frame through the preprocessing and refuses it.
        health = HealthConfig(min_inferences=8, max_latency_ratio=None)
        model_dir = repackage(baseline, tmp_path / "grey", "2.3.0", {"input": {"color": "GRAY"}})
        state, reason = "FAILED", "self-test: a frame through"
    devices = {d: device_factory(d, public_key=rollout_hub.public_key, health=health) for d in ids}
    model = rollout_hub.register(model_dir)
    campaign_id = _create(rollout_hub, model, ids, canary=1, waves=[0.5, 1.0], max_failure=0.1)

    wait_for(lambda: _state(rollout_hub, campaign_id) == "paused", timeout=60, what="auto-pause")
    summary = rollout_hub.summary(campaign_id)
    assert summary["reason"].startswith("failures 1/1 (100%) > 10%")
    assert summary["failures"][0]["state"] == state
    assert summary["failures"][0]["reason"].startswith(reason)
    assert summary["counts"] == {state: 1, "QUEUED": 3}, "no wave after a failed canary"
    assert all(d.camera.active_ref == "fomo-street@2.1.1" for d in devices.values())

    client = rollout_hub.logged_in_client()
    page = client.get(f"/rollouts/{campaign_id}").get_data(as_text=True)
    assert "paused" in page and summary["failures"][0]["device_id"] in page
    response = client.post(f"/rollouts/{campaign_id}/abort", data={"csrf_token": client.csrf})
    assert response.status_code == 302
    wait_for(lambda: _state(rollout_hub, campaign_id) == "aborted", what="aborted")


def test_shadow_campaign_promotes_when_thresholds_pass(
    rollout_hub, device_factory, baseline, tmp_path
) -> None:
    ids = ["sh-0", "sh-1"]
    devices = [device_factory(d, public_key=rollout_hub.public_key) for d in ids]
    model = rollout_hub.register(repackage(baseline, tmp_path / "v130", "2.3.0"))
    campaign_id = _create(
        rollout_hub,
        model,
        ids,
        canary=1,
        waves=[1.0],
        shadow=True,
        shadow_thresholds={"min_agreement": 0.9, "max_latency_ratio": 5.0, "min_frames": 20},
    )

    wait_for(
        lambda: _state(rollout_hub, campaign_id) == "completed", timeout=120, what="promoted and completed"
    )
    summary = rollout_hub.summary(campaign_id)
    assert summary["phase"] == "rollout" and summary["counts"] == {"ACTIVE": 2}
    assert all(d.camera.active_ref == "fomo-street@2.3.0" for d in devices)
    assert rollout_hub.service.chunks.counters.bytes == 2 * model.size_bytes, (
        "promotion reuses the shadow copy"
    )


def test_shadow_campaign_is_not_promoted_when_agreement_fails(
    rollout_hub, device_factory, baseline, tmp_path
) -> None:
    # A mislabelled release: the label map rotated. Same tensors, so registry and self-test pass; its
    # detections carry the wrong classes, which only a comparison on live frames can see.
    import json

    labels = json.loads((baseline / "manifest.json").read_text())["labels"]
    rotated = [labels[0], *labels[2:], labels[1]]
    ids = ["sx-0", "sx-1"]
    devices = [device_factory(d, public_key=rollout_hub.public_key) for d in ids]
    model = rollout_hub.register(repackage(baseline, tmp_path / "v130", "2.3.0", {"labels": rotated}))
    campaign_id = _create(
        rollout_hub,
        model,
        ids,
        shadow=True,
        max_failure=0.0,
        shadow_thresholds={"min_agreement": 0.9, "max_latency_ratio": 5.0, "min_frames": 20},
    )

    wait_for(lambda: _state(rollout_hub, campaign_id) == "paused", timeout=120, what="shadow verdict")
    summary = rollout_hub.summary(campaign_id)
    assert summary["phase"] == "shadow" and "not promoted" in summary["reason"]
    assert all(d["shadow"]["agreement"] < 0.9 for d in summary["devices"])
    assert all(d.camera.active_ref == "fomo-street@2.1.1" and d.camera.swaps == 0 for d in devices)


def test_dashboard_upload_and_create(rollout_hub, baseline, tmp_path: Path) -> None:
    import io

    good = repackage(baseline, tmp_path / "v120", "2.2.0")
    client = rollout_hub.logged_in_client()

    def upload(folder: Path):
        files = {
            name: (io.BytesIO((folder / name).read_bytes()), name)
            for name in ("model.onnx", "manifest.json", "golden.npz")
        }
        data = {
            "csrf_token": client.csrf,
            "model": files["model.onnx"],
            "manifest": files["manifest.json"],
            "golden": files["golden.npz"],
        }
        return client.post(
            "/rollouts/models", data=data, content_type="multipart/form-data", follow_redirects=True
        )

    page = upload(good).get_data(as_text=True)
    assert "Registered fomo-street@2.2.0 (signed)." in page
    clash = repackage(baseline, tmp_path / "clash", "2.2.0", {"input": {"color": "BGR"}})
    assert "Model rejected: fomo-street@2.2.0 is already registered with different content" in upload(
        clash
    ).get_data(as_text=True)
    created = client.post(
        "/rollouts",
        data={
            "csrf_token": client.csrf,
            "model": "fomo-street@2.2.0",
            "target": "x1,x2",
            "canary": "1",
            "waves": "100%",
        },
    )
    assert created.status_code == 302 and "/rollouts/c-" in created.headers["Location"]
    campaign_page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "fomo-street@2.2.0" in campaign_page and "x1,x2" in campaign_page
    listed = RolloutList.model_validate(client.get("/api/v1/rollouts").get_json())
    assert [item.model for item in listed.items] == ["fomo-street@2.2.0"]
    no_csrf = client.post("/rollouts", data={"model": "fomo-street@2.2.0", "target": "x3"})
    assert no_csrf.status_code == 400


def test_rollback_campaign_brings_the_previous_version_back(
    rollout_hub, device_factory, baseline, tmp_path: Path
) -> None:
    ids = ["rb-0", "rb-1"]
    devices = [device_factory(d, public_key=rollout_hub.public_key) for d in ids]
    rollout_hub.register(baseline)  # 2.1.1, what the devices shipped with
    newer = rollout_hub.register(repackage(baseline, tmp_path / "v120", "2.2.0"))
    first = _create(rollout_hub, newer, ids, canary=0, waves=[1.0])
    wait_for(lambda: _state(rollout_hub, first) == "completed", what="upgrade completed")
    assert all(d.camera.active_ref == "fomo-street@2.2.0" for d in devices)

    client = rollout_hub.logged_in_client()
    response = client.post(f"/rollouts/{first}/rollback", data={"csrf_token": client.csrf})
    assert response.status_code == 302
    second = response.headers["Location"].rsplit("/", 1)[1]
    assert second != first
    wait_for(lambda: _state(rollout_hub, second) == "completed", what="rollback completed")
    summary = rollout_hub.summary(second)
    assert (
        summary["rollback"] and summary["model"] == "fomo-street@2.1.1" and summary["counts"] == {"ACTIVE": 2}
    )
    assert all(d.camera.active_ref == "fomo-street@2.1.1" for d in devices), "a signed rollback may go down"


def test_campaign_survives_a_restart_of_the_rollout_service(
    rollout_hub, device_factory, baseline, tmp_path: Path
) -> None:
    from cloud_hub.rollout.service import RolloutService

    ids = ["rs-0", "rs-1", "rs-2"]
    devices = [device_factory(d, public_key=rollout_hub.public_key) for d in ids]
    model = rollout_hub.register(repackage(baseline, tmp_path / "v120", "2.2.0"))
    campaign_id = _create(rollout_hub, model, ids, canary=1, waves=[1.0])
    wait_for(
        lambda: (
            "SENT" in rollout_hub.summary(campaign_id)["counts"]
            or "ACTIVE" in rollout_hub.summary(campaign_id)["counts"]
        ),
        what="the canary's offer",
    )
    rollout_hub.service.stop()  # the canary's chunk requests and reports now wait in the broker
    mosquitto_url = rollout_hub.app.config["HUB_SETTINGS"].mqtt_url
    rollout_hub.service = RolloutService(
        rollout_hub.engine, mosquitto_url, "edgesight/v1", rollout_hub.blobs, rollout_hub.key, tick_s=0.1
    ).start()
    wait_for(lambda: _state(rollout_hub, campaign_id) == "completed", what="completed after the restart")
    assert rollout_hub.summary(campaign_id)["counts"] == {"ACTIVE": 3}
    assert all(d.camera.active_ref == "fomo-street@2.2.0" for d in devices)
