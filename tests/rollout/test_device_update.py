"""The device side against a real Mosquitto: a plain paho "hub" offers, the real updater decides."""

from __future__ import annotations

from pathlib import Path

from tests.rollout.support import broken_export, make_offer, repackage, wait_for


def test_signed_newer_model_is_downloaded_verified_and_activated(device_factory, plain_hub, hub_keys, baseline,
                                                                  tmp_path: Path) -> None:
    device = device_factory("cam-1")
    newer = repackage(baseline, tmp_path / "v110", "1.1.0")
    offer, data = make_offer(hub_keys[0], newer, chunk_size=16 * 1024)
    plain_hub.offer("cam-1", offer, data)

    wait_for(lambda: plain_hub.last("cam-1", "ACTIVE"), what="ACTIVE")
    states = [s.state.value for s in plain_hub.states_of("cam-1")]
    assert states[0] == "OFFERED" and "DOWNLOADING" in states
    assert states.index("VERIFIED") < states.index("INSTALLED") < states.index("ACTIVE")
    assert device.camera.active_ref == "fomo-street@1.1.0"
    installed = device.updater.store.version_dir("fomo-street", "1.1.0")
    assert device.updater.store.state()["active"] == str(installed)
    assert not any(device.updater.store.partial_dir.iterdir()), "partial files are removed after install"


def test_flipped_byte_in_a_chunk_is_never_activated(device_factory, plain_hub, hub_keys, baseline, tmp_path) -> None:
    device = device_factory("cam-2")
    offer, data = make_offer(hub_keys[0], repackage(baseline, tmp_path / "v110", "1.1.0"), chunk_size=16 * 1024)

    def flip(topic: str, frame: bytes) -> bytes:
        if topic.endswith("/model/chunks/2"):
            body = bytearray(frame)
            body[100] ^= 0x01
            return bytes(body)
        return frame

    plain_hub.tamper = flip
    plain_hub.offer("cam-2", offer, data)
    failed = wait_for(lambda: plain_hub.last("cam-2", "FAILED"), what="FAILED")
    assert "sha256 mismatch" in failed.reason
    assert device.camera.active_ref == "fomo-street@1.0.0"
    assert not device.updater.store.version_dir("fomo-street", "1.1.0").exists()
    assert not plain_hub.last("cam-2", "VERIFIED") and not plain_hub.last("cam-2", "ACTIVE")


def test_wrong_signature_unsigned_and_downgrade_are_refused(device_factory, plain_hub, hub_keys, baseline,
                                                            tmp_path) -> None:
    from shared.signing import generate_keypair, load_private_key

    device = device_factory("cam-3")
    newer = repackage(baseline, tmp_path / "v110", "1.1.0")
    impostor = load_private_key(generate_keypair()[0])
    cases = [
        (make_offer(impostor, newer, campaign_id="c-forged"), "signature: bad signature"),
        (make_offer(None, newer, campaign_id="c-unsigned", signed=False), "signature: unsigned"),
        (make_offer(hub_keys[0], repackage(baseline, tmp_path / "v090", "0.9.0"), campaign_id="c-down"),
         "downgrade refused"),
    ]
    for (offer, data), reason in cases:
        plain_hub.offer("cam-3", offer, data)
        failed = wait_for(lambda c=offer.campaign_id: [s for s in plain_hub.states_of("cam-3")
                                                       if s.campaign_id == c and s.state.value == "FAILED"],
                          what=f"FAILED for {offer.campaign_id}")[-1]
        assert reason in failed.reason
        assert device.camera.active_ref == "fomo-street@1.0.0"
    assert device.camera.swaps == 0
    assert not [r for r in plain_hub.requests if r[0] == "cam-3"], "no chunk was even requested"
    assert not (device.updater.store.root / "fomo-street").exists()


def test_signed_rollback_may_go_below_the_running_version(device_factory, plain_hub, hub_keys, baseline,
                                                          tmp_path) -> None:
    device = device_factory("cam-4")
    older = repackage(baseline, tmp_path / "v090", "0.9.0")
    offer, data = make_offer(hub_keys[0], older, campaign_id="c-rollback", rollback=True)
    plain_hub.offer("cam-4", offer, data)
    wait_for(lambda: plain_hub.last("cam-4", "ACTIVE"), what="ACTIVE after rollback")
    assert device.camera.active_ref == "fomo-street@0.9.0"


def test_model_failing_self_test_is_not_activated(device_factory, plain_hub, hub_keys, baseline, tmp_path) -> None:
    device = device_factory("cam-5")
    offer, data = make_offer(hub_keys[0], broken_export(baseline, tmp_path / "broken", "1.2.0"))
    plain_hub.offer("cam-5", offer, data)
    failed = wait_for(lambda: plain_hub.last("cam-5", "FAILED"), what="FAILED")
    assert failed.reason.startswith("self-test: output_0 differs from golden")
    assert device.camera.active_ref == "fomo-street@1.0.0" and device.camera.swaps == 0
    assert not device.updater.store.version_dir("fomo-street", "1.2.0").exists()


def test_model_failing_its_health_window_is_reverted(device_factory, plain_hub, hub_keys, baseline, tmp_path) -> None:
    # A mis-packaged release: the manifest declares grey input for an RGB network. Golden tensors still
    # match (they are tensors, not frames), so only real frames expose it: every inference fails.
    device = device_factory("cam-6")
    bad = repackage(baseline, tmp_path / "grey", "1.3.0", {"input": {"color": "GRAY"}})
    offer, data = make_offer(hub_keys[0], bad)
    plain_hub.offer("cam-6", offer, data)
    rolled = wait_for(lambda: plain_hub.last("cam-6", "ROLLED_BACK"), what="ROLLED_BACK")
    assert rolled.reason.startswith("health: ") and "inferences failed" in rolled.reason
    assert device.camera.swaps == 2, "swapped to the candidate, then back"
    assert device.camera.active_ref == "fomo-street@1.0.0"
    assert device.updater.store.state()["active"] is None, "nothing was committed"
    wait_for(lambda: device.camera.frames_processed > 0)
