"""Pure logic of the rollout parts: no broker, no threads."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud_hub.rollout.campaigns import CampaignError, Target, parse_fraction, parse_percentages, plan_waves
from edge_agent.updater.config import HealthConfig
from edge_agent.updater.download import ChunkError, PartialDownload
from edge_agent.updater.health import HealthWindow
from edge_agent.updater.shadow import ShadowStats, match_counts
from edge_agent.updater.store import ModelStore, StoreError
from edge_agent.updater.trust import OfferRejected, check_version, verify_offer
from shared.manifest import parse_manifest
from shared.rollout import ChunkFrameError, decode_chunk, encode_chunk, semver_key, site_version
from shared.signing import generate_keypair, load_private_key, load_public_key
from tests.rollout.support import bundle_of, make_offer, reference, repackage


def test_semver_order() -> None:
    ordered = [
        "0.9.0",
        "1.0.0-alpha",
        "1.0.0-alpha.2",
        "1.0.0-beta",
        "1.0.0",
        "1.0.1",
        "1.2.0",
        "1.10.0",
        "2.1.0",
    ]
    assert sorted(reversed(ordered), key=semver_key) == ordered
    assert semver_key("1.0.0+build.7") == semver_key("1.0.0")
    with pytest.raises(ValueError):
        semver_key("v1")


def test_site_version_sorts_between_its_base_and_the_next_generic_release() -> None:
    site = site_version("2.1.1", "adp-01")
    assert site == "2.1.2-site.adp-01"
    assert semver_key("2.1.1") < semver_key(site) < semver_key("2.1.2")
    again = site_version(site, "adp-02")  # adapting an adapted model goes up again
    assert again == "2.1.3-site.adp-02" and semver_key(again) > semver_key(site)
    assert site_version("1.0.0+build.7", "x") == "1.0.1-site.x"
    with pytest.raises(ValueError):
        site_version("v1", "x")


def test_chunk_frame_round_trip_and_rejects() -> None:
    sha = "ab" * 32
    prefix, index, data = decode_chunk(encode_chunk(sha, 7, b"payload"))
    assert (prefix, index, data) == (bytes.fromhex(sha)[:8], 7, b"payload")
    with pytest.raises(ChunkFrameError):
        decode_chunk(b"short")
    with pytest.raises(ChunkFrameError):
        decode_chunk(b"XXXX" + bytes(12) + b"data")


def test_waves_are_canary_then_cumulative_percentages() -> None:
    devices = [f"d{i:02d}" for i in range(20)]
    plan = plan_waves(devices, 1, [0.1, 0.5, 1.0])
    assert [len(w) for w in plan] == [1, 1, 8, 10]
    assert sum(plan, []) == devices
    assert [len(w) for w in plan_waves(devices[:3], 1, [0.1, 0.5, 1.0])] == [1, 1, 1]
    assert [len(w) for w in plan_waves(devices, 0, [0.5])] == [10, 10], (
        "devices past the last wave still get one"
    )
    assert parse_percentages("10%,50%,100%") == [0.1, 0.5, 1.0]
    assert parse_fraction("10%") == 0.1 and parse_fraction("0.25") == 0.25
    for bad in ("50%,10%", "0%", "abc", "150%"):
        with pytest.raises(CampaignError):
            parse_percentages(bad)
    assert Target.parse("group:lobby") == Target("group", ("lobby",))
    assert Target.parse("cam-1, cam-2") == Target("devices", ("cam-1", "cam-2"))
    with pytest.raises(CampaignError):
        Target.parse("tag:")


def test_partial_download_persists_and_resumes(tmp_path: Path) -> None:
    blob = bytes(range(256)) * 40  # 10240 bytes, 3 chunks of 4096
    import hashlib

    sha = hashlib.sha256(blob).hexdigest()
    first = PartialDownload(tmp_path, sha, len(blob), 4096)
    assert first.missing() == [0, 1, 2]
    assert first.write(2, blob[8192:]) is True
    assert first.write(2, blob[8192:]) is False, "a duplicate delivery is ignored"
    with pytest.raises(ChunkError):
        first.write(0, blob[:100])
    with pytest.raises(ChunkError):
        first.write(3, b"x")
    resumed = PartialDownload(tmp_path, sha, len(blob), 4096)  # a new process
    assert resumed.missing() == [0, 1] and resumed.progress == pytest.approx(1 / 3)
    resumed.write(0, blob[:4096])
    resumed.write(1, blob[4096:8192])
    assert resumed.complete and resumed.digest() == sha
    changed = PartialDownload(tmp_path, sha, len(blob), 2048)  # other chunking: start over
    assert changed.missing() == list(range(5))


def _bundle(tmp_path: Path, members: dict[str, bytes]) -> Path:
    path = tmp_path / "bundle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_store_installs_atomically_and_refuses_odd_bundles(tmp_path: Path) -> None:
    model_dir = repackage(reference(), tmp_path / "v120", "2.2.0")
    data, sha, manifest = bundle_of(model_dir)
    (tmp_path / "good.zip").write_bytes(data)
    store = ModelStore(tmp_path / "store")
    installed = store.install(tmp_path / "good.zip", manifest, sha)
    assert installed == store.version_dir("fomo-street", "2.2.0")
    assert sorted(p.name for p in installed.iterdir()) == [
        ".bundle.json",
        "golden.npz",
        "manifest.json",
        "model.onnx",
    ]
    assert store.has("fomo-street", "2.2.0", sha)
    assert not [p for p in installed.parent.iterdir() if p.name.startswith(".tmp")]

    model = (model_dir / "model.onnx").read_bytes()
    golden = (model_dir / "golden.npz").read_bytes()
    cases = {
        "extra member": {"model.onnx": model, "golden.npz": golden, "evil.sh": b"rm -rf /"},
        "missing golden": {"model.onnx": model},
        "model does not match manifest": {"model.onnx": model[:-1] + b"\x00", "golden.npz": golden},
    }
    other = dict(manifest, version="2.3.0")
    for label, members in cases.items():
        with pytest.raises(StoreError):
            store.install(_bundle(tmp_path, members), other, "00" * 32)
        assert not store.version_dir("fomo-street", "2.3.0").exists(), label
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(StoreError, match="zip"):
        store.install(tmp_path / "junk.zip", other, "00" * 32)


def test_offer_trust_checks(tmp_path: Path) -> None:
    private_pem, public_pem = generate_keypair()
    key, public = load_private_key(private_pem), load_public_key(public_pem)
    newer = repackage(reference(), tmp_path / "v120", "2.2.0")
    offer, _ = make_offer(key, newer)
    manifest = verify_offer(offer, public)
    assert manifest.ref == "fomo-street@2.2.0"
    tampered = offer.model_copy(update={"version": "9.9.9"})
    with pytest.raises(OfferRejected, match="bad signature"):
        verify_offer(tampered, public)
    with pytest.raises(OfferRejected, match="unsigned"):
        verify_offer(offer.model_copy(update={"signature": None}), public)

    running = parse_manifest(json.loads((reference() / "manifest.json").read_text()))
    check_version(offer, manifest, running)  # 2.2.0 over 2.1.1: fine
    older, _ = make_offer(key, repackage(reference(), tmp_path / "v090", "0.9.0"))
    older_manifest = verify_offer(older, public)
    with pytest.raises(OfferRejected, match="downgrade refused"):
        check_version(older, older_manifest, running)
    rollback, _ = make_offer(key, tmp_path / "v090", rollback=True)
    check_version(rollback, verify_offer(rollback, public), running)
    other_bytes, _ = make_offer(
        key,
        repackage(reference(), tmp_path / "same", "2.1.1", {"description": "rebuilt"}),
        campaign_id="c-same",
    )
    # Same version, same model bytes: allowed (already running); different bytes would be refused.
    check_version(other_bytes, verify_offer(other_bytes, public), running)
    fake_running = running.model_copy(update={"sha256": "0" * 64})
    with pytest.raises(OfferRejected, match="different content"):
        check_version(other_bytes, verify_offer(other_bytes, public), fake_running)


def test_health_window_verdicts() -> None:
    def window(**cfg) -> HealthWindow:
        return HealthWindow("m@1", HealthConfig(min_inferences=10, **cfg), baseline_p50_ms=2.0)

    healthy = window()
    for _ in range(10):
        healthy.observe(2.5)
    assert healthy.done() and healthy.verdict().healthy
    errors = window()
    for i in range(10):
        errors.observe(2.0, ok=i % 2 == 0)
    assert errors.verdict().reason == "health: 5/10 inferences failed"
    insane = window()
    for i in range(10):
        insane.observe(2.0, sane=i != 0)
    assert "not sane" in insane.verdict().reason
    slow = window()
    for _ in range(10):
        slow.observe(9.0)
    assert slow.verdict().reason.startswith("health: median latency 9.00 ms > 4.0x previous 2.00 ms")
    spike = window()
    for i in range(10):
        spike.observe(50.0 if i == 3 else 2.0)
    assert spike.verdict().healthy, "one slow frame is not a slow model"
    budget = window(max_latency_ms_p95=1.0, max_latency_ratio=None)
    for _ in range(10):
        budget.observe(1.5)
    assert "budget" in budget.verdict().reason
    assert HealthWindow("m@1", HealthConfig(), None).verdict().healthy, "a quiet camera is not a failure"


@dataclass
class Det:
    label: str
    box: tuple[float, float, float, float]


def test_shadow_agreement_is_f1_against_the_active_model() -> None:
    a = [Det("person", (0.1, 0.1, 0.2, 0.3)), Det("car", (0.5, 0.5, 0.8, 0.7))]
    assert match_counts(a, a, 0.3) == (2, 0, 0)
    moved = [Det("person", (0.11, 0.1, 0.21, 0.3)), Det("car", (0.0, 0.0, 0.1, 0.1))]
    assert match_counts(a, moved, 0.3) == (1, 1, 1)
    relabelled = [Det("truck", d.box) for d in a]
    assert match_counts(a, relabelled, 0.3) == (0, 2, 2)
    stats = ShadowStats(0.3)
    stats.observe(a, a, 1.0, 1.2)
    stats.observe(a, relabelled, 1.0, 1.2)
    stats.observe(a, None, 1.0, 0.0)  # the candidate raised
    summary = stats.summary()
    assert summary["frames"] == 3 and summary["candidate_errors"] == 1
    assert summary["agreement"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 4), abs=1e-4)
    assert ShadowStats(0.3).summary()["agreement"] == 1.0, "nothing seen by either: no disagreement"


def test_store_prunes_all_but_the_committed_and_previous(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    dirs = []
    for version in ("2.2.0", "2.3.0", "2.3.0"):
        data, sha, manifest = bundle_of(repackage(reference(), tmp_path / version, version))
        (tmp_path / f"{version}.zip").write_bytes(data)
        dirs.append(store.install(tmp_path / f"{version}.zip", manifest, sha))
    removed = store.prune({dirs[2], dirs[1]})
    assert removed == [dirs[0]] and not dirs[0].exists() and dirs[1].exists() and dirs[2].exists()


def test_shadow_verdict_needs_agreement_and_latency() -> None:
    from cloud_hub.rollout.controller import shadow_verdict
    from cloud_hub.rollout.models import CampaignDevice

    thresholds = {"min_agreement": 0.9, "max_latency_ratio": 1.5, "min_frames": 20}

    def row(**stats) -> CampaignDevice:
        base = {"frames": 40.0, "agreement": 0.95, "active_ms_p50": 2.0, "candidate_ms_p50": 2.5}
        return CampaignDevice(device_id="cam", shadow={**base, **stats})

    assert shadow_verdict(row(), thresholds) is None
    assert shadow_verdict(row(agreement=0.5), thresholds) == "cam: agreement 0.500 < 0.9"
    slow = shadow_verdict(row(candidate_ms_p50=3.5), thresholds)
    assert slow == "cam: candidate latency 3.50 ms > 1.5x active 2.00 ms"
