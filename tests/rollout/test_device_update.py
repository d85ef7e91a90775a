"""The device side against a real Mosquitto: a plain paho "hub" offers, the real updater decides."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.updater.config import HealthConfig
from tests.rollout.support import broken_export, make_offer, repackage, wait_for


def test_signed_newer_model_is_downloaded_verified_and_activated(
    device_factory, plain_hub, hub_keys, baseline, tmp_path: Path
) -> None:
    device = device_factory("cam-1")
    newer = repackage(baseline, tmp_path / "v120", "2.2.0")
    offer, data = make_offer(hub_keys[0], newer, chunk_size=16 * 1024)
    plain_hub.offer("cam-1", offer, data)

    wait_for(lambda: plain_hub.last("cam-1", "ACTIVE"), what="ACTIVE")
    states = [s.state.value for s in plain_hub.states_of("cam-1")]
    assert states[0] == "OFFERED" and "DOWNLOADING" in states
    assert states.index("VERIFIED") < states.index("INSTALLED") < states.index("ACTIVE")
    assert device.camera.active_ref == "fomo-street@2.2.0"
    installed = device.updater.store.version_dir("fomo-street", "2.2.0")
    assert device.updater.store.state()["active"] == str(installed)
    assert not any(device.updater.store.partial_dir.iterdir()), "partial files are removed after install"


def test_flipped_byte_in_a_chunk_is_never_activated(
    device_factory, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    device = device_factory("cam-2")
    offer, data = make_offer(
        hub_keys[0], repackage(baseline, tmp_path / "v120", "2.2.0"), chunk_size=16 * 1024
    )

    def flip(topic: str, frame: bytes) -> bytes:
        if topic.endswith("/model/chunks/2"):
            body = bytearray(frame)
            body[100] ^= 0x01
            return bytes(body)
        return frame

    plain_hub.tamper = flip
    plain_hub.offer("cam-2", offer, data)
    failed = wait_for(lambda: plain_hub.outcome("cam-2"), what="an outcome")
    assert failed.state.value == "FAILED" and "sha256 mismatch" in failed.reason
    assert device.camera.active_ref == "fomo-street@2.1.1"
    assert not device.updater.store.version_dir("fomo-street", "2.2.0").exists()
    assert not plain_hub.last("cam-2", "VERIFIED") and not plain_hub.last("cam-2", "ACTIVE")


def test_wrong_signature_unsigned_and_downgrade_are_refused(
    device_factory, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    from shared.signing import generate_keypair, load_private_key

    device = device_factory("cam-3")
    newer = repackage(baseline, tmp_path / "v120", "2.2.0")
    impostor = load_private_key(generate_keypair()[0])
    cases = [
        (make_offer(impostor, newer, campaign_id="c-forged"), "signature: bad signature"),
        (make_offer(None, newer, campaign_id="c-unsigned", signed=False), "signature: unsigned"),
        (
            make_offer(hub_keys[0], repackage(baseline, tmp_path / "v090", "0.9.0"), campaign_id="c-down"),
            "downgrade refused",
        ),
    ]
    for (offer, data), reason in cases:
        plain_hub.offer("cam-3", offer, data)
        failed = wait_for(
            lambda c=offer.campaign_id: [
                s for s in plain_hub.states_of("cam-3") if s.campaign_id == c and s.state.value == "FAILED"
            ],
            what=f"FAILED for {offer.campaign_id}",
        )[-1]
        assert reason in failed.reason
        assert device.camera.active_ref == "fomo-street@2.1.1"
    assert device.camera.swaps == 0
    assert not [r for r in plain_hub.requests if r[0] == "cam-3"], "no chunk was even requested"
    assert not (device.updater.store.root / "fomo-street").exists()


def test_offer_scoped_to_another_device_installs_nothing_and_the_agent_goes_on(
    device_factory, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    """Issue 24: a signed offer of a model adapted to cam-9's view, on cam-4's topic (a mis-addressed
    campaign, a copied retained message): refused before a byte is fetched; a forged scope fails the
    signature; the same model scoped to cam-4 then installs as usual."""
    device = device_factory("cam-4")
    adapted = repackage(baseline, tmp_path / "site", "2.1.2-site.7")
    other, data = make_offer(hub_keys[0], adapted, campaign_id="c-cam9", device_scope="cam-9")
    forged = other.model_copy(update={"campaign_id": "c-forged", "device_scope": "cam-4"})
    for offer, reason in [
        (other, "fomo-street@2.1.2-site.7 is scoped to cam-9 (adapted to its view); this device is cam-4: "
                "not installed"),
        (forged, "signature: bad signature"),
    ]:
        plain_hub.offer("cam-4", offer, data)
        failed = wait_for(
            lambda c=offer.campaign_id: [
                s for s in plain_hub.states_of("cam-4") if s.campaign_id == c and s.state.value == "FAILED"
            ],
            what=f"FAILED for {offer.campaign_id}",
        )[-1]
        assert failed.reason == reason
        assert device.camera.active_ref == "fomo-street@2.1.1"
        assert not device.updater.store.version_dir("fomo-street", "2.1.2-site.7").exists()
    assert [r for r in plain_hub.requests if r[0] == "cam-4"] == [], "not a chunk was asked for"

    own, data = make_offer(hub_keys[0], adapted, campaign_id="c-own", device_scope="cam-4")
    plain_hub.offer("cam-4", own, data)
    wait_for(lambda: plain_hub.last("cam-4", "ACTIVE"), what="ACTIVE")
    assert device.camera.active_ref == "fomo-street@2.1.2-site.7"


def test_signed_rollback_may_go_below_the_running_version(
    device_factory, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    device = device_factory("cam-4")
    older = repackage(baseline, tmp_path / "v090", "0.9.0")
    offer, data = make_offer(hub_keys[0], older, campaign_id="c-rollback", rollback=True)
    plain_hub.offer("cam-4", offer, data)
    wait_for(lambda: plain_hub.last("cam-4", "ACTIVE"), what="ACTIVE after rollback")
    assert device.camera.active_ref == "fomo-street@0.9.0"


@pytest.mark.parametrize(
    ("derive", "reason"),
    [
        # A botched export: the class order of the output layer scrambled; golden outputs no longer match.
        (lambda base, out: broken_export(base, out, "2.3.0"), "self-test: golden output_0 differs"),
        # A mis-packaged release: grey input declared for an RGB network. Golden tensors match (they are
        # tensors, not frames); a frame through the manifest's preprocessing does not fit the graph.
        (
            lambda base, out: repackage(base, out, "2.3.0", {"input": {"color": "GRAY"}}),
            "self-test: a frame through the manifest's preprocessing fails",
        ),
    ],
    ids=["scrambled-export", "grey-input"],
)
def test_model_failing_self_test_is_not_activated(
    device_factory, plain_hub, hub_keys, baseline, tmp_path, derive, reason
) -> None:
    device = device_factory("cam-5")
    offer, data = make_offer(hub_keys[0], derive(baseline, tmp_path / "bad"))
    plain_hub.offer("cam-5", offer, data)
    failed = wait_for(lambda: plain_hub.outcome("cam-5"), what="an outcome")
    assert failed.state.value == "FAILED" and failed.reason.startswith(reason), failed
    assert plain_hub.last("cam-5", "INSTALLED"), "it was installed, then refused before activation"
    assert device.camera.active_ref == "fomo-street@2.1.1" and device.camera.swaps == 0
    assert not device.updater.store.version_dir("fomo-street", "2.3.0").exists()


def test_model_failing_its_health_window_is_reverted(
    device_factory, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    # This camera's frame budget (a latency no model can meet) makes the candidate fail on real
    # frames after the swap: the updater measures it, reverts by itself and says why.
    device = device_factory(
        "cam-6", health=HealthConfig(min_inferences=8, max_latency_ms_p95=0.001, max_latency_ratio=None)
    )
    offer, data = make_offer(hub_keys[0], repackage(baseline, tmp_path / "v120", "2.2.0"))
    plain_hub.offer("cam-6", offer, data)
    rolled = wait_for(lambda: plain_hub.outcome("cam-6"), what="an outcome")
    assert (
        rolled.state.value == "ROLLED_BACK"
        and rolled.reason.startswith("health: p95 latency")
        and "> budget 0.001 ms" in rolled.reason
    )
    assert device.camera.swaps == 2, "swapped to the candidate, then back"
    assert device.camera.active_ref == "fomo-street@2.1.1"
    assert device.updater.store.state()["active"] is None, "nothing was committed"
    assert not device.updater.store.version_dir("fomo-street", "2.2.0").exists()
    frames = device.camera.frames_processed
    wait_for(lambda: device.camera.frames_processed > frames + 3, what="the previous model keeps running")
    plain_hub.offer("cam-6", offer, data)  # the same offer again (e.g. after a reconnect) is not retried
    wait_for(lambda: len([s for s in plain_hub.states_of("cam-6") if s.state.value == "ROLLED_BACK"]) == 2)
    assert device.camera.swaps == 2


def test_killed_mid_download_resumes_with_what_it_has(
    mosquitto, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    import json
    import signal
    import subprocess
    import sys

    from tests.rollout.support import REPO

    store = tmp_path / "store-k"
    progress_file = None
    newer = repackage(baseline, tmp_path / "v120", "2.2.0")
    offer, data = make_offer(hub_keys[0], newer, chunk_size=4 * 1024)
    total = -(-offer.size_bytes // offer.chunk_size)
    plain_hub.server.max_bytes_per_s = 60 * 1024  # a slow uplink, so the kill lands mid-download
    command = [
        sys.executable,
        "-m",
        "benchmarks.fleet_sim",
        "--device",
        "cam-k",
        "--host",
        mosquitto.host,
        "--port",
        str(mosquitto.port),
        "--store",
        str(store),
        "--public-key",
        str(hub_keys[1]),
        "--baseline",
        str(baseline),
        "--window",
        "2",
        "--min-inferences",
        "5",
        "--fps",
        "20",
    ]
    first = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        plain_hub.offer("cam-k", offer, data)
        progress_file = store / ".partial" / f"{offer.sha256}.json"

        def half_done() -> bool:
            try:
                return len(json.loads(progress_file.read_text())["have"]) >= total // 2
            except (OSError, ValueError, KeyError):
                return False

        wait_for(half_done, timeout=60, what="half of the chunks on disk")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    have_at_kill = set(json.loads(progress_file.read_text())["have"])
    assert total // 2 <= len(have_at_kill) < total, "killed mid-download"
    assert (store / ".partial" / f"{offer.sha256}.part").exists()
    assert not (store / "fomo-street" / "2.2.0").exists(), "a partial download is never installed"
    requests_before = len(plain_hub.requests)

    plain_hub.server.max_bytes_per_s = None
    second = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: plain_hub.last("cam-k", "ACTIVE"), timeout=60, what="ACTIVE after restart")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    asked_again = {
        i
        for device, first_i, count in plain_hub.requests[requests_before:]
        if device == "cam-k"
        for i in range(first_i, first_i + count)
    }
    assert asked_again and not asked_again & have_at_kill, "only the missing chunks were asked for again"
    assert asked_again | have_at_kill == set(range(total))
    installed = store / "fomo-street" / "2.2.0"
    assert json.loads((installed / ".bundle.json").read_text())["sha256"] == offer.sha256
    from shared.manifest import load_manifest

    manifest, _ = load_manifest(installed)  # verifies the model file's sha256 against the signed manifest
    assert manifest.ref == "fomo-street@2.2.0"
    assert json.loads((store / "state.json").read_text())["active"] == str(installed)


def test_shadow_offer_reports_agreement_without_switching(
    device_factory, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    from edge_agent.updater.config import ShadowConfig  # noqa: F401  (defaults: sample 20%, report every 20)

    device = device_factory("cam-s")
    candidate = repackage(baseline, tmp_path / "v120", "2.2.0")
    offer, data = make_offer(hub_keys[0], candidate, campaign_id="c-shadow", shadow=True)
    plain_hub.offer("cam-s", offer, data)
    report = wait_for(
        lambda: [
            s
            for s in plain_hub.states_of("cam-s")
            if s.state.value == "SHADOW" and s.shadow and s.shadow["frames"] >= 20
        ],
        timeout=60,
        what="a shadow report over 20 frames",
    )[-1]
    assert report.shadow["agreement"] == 1.0, "the same network agrees with itself"
    assert report.shadow["candidate_ms_p50"] > 0 and report.shadow["active_ms_p50"] > 0
    assert device.camera.active_ref == "fomo-street@2.1.1" and device.camera.swaps == 0


def test_download_resumes_after_the_broker_restarts(
    mosquitto, device_factory, plain_hub, hub_keys, baseline, tmp_path
) -> None:
    device = device_factory("cam-r")
    offer, data = make_offer(
        hub_keys[0], repackage(baseline, tmp_path / "v120", "2.2.0"), chunk_size=4 * 1024
    )
    total = -(-offer.size_bytes // offer.chunk_size)
    plain_hub.server.max_bytes_per_s = 60 * 1024
    plain_hub.offer("cam-r", offer, data)
    partial = device.updater.store.partial_dir / f"{offer.sha256}.json"

    def have() -> int:
        import json

        try:
            return len(json.loads(partial.read_text())["have"])
        except (OSError, ValueError, KeyError):
            return 0

    wait_for(lambda: have() >= total // 3, what="a third of the chunks")
    mosquitto.stop()
    mosquitto.start()
    plain_hub.server.max_bytes_per_s = None
    done = wait_for(lambda: plain_hub.outcome("cam-r"), what="an outcome after the broker came back")
    assert done.state.value == "ACTIVE", done
    assert device.camera.active_ref == "fomo-street@2.2.0"
