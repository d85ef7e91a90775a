"""Rollout throughput: one model to a fleet of simulated devices over a real Mosquitto.

    python -m benchmarks.rollout --json [--devices 100] [--canary 0] [--waves 100%] [--max-concurrent 100]

Starts Mosquitto (from deploy/mosquitto), a hub instance (SQLite, keys, registry) and the rollout
service (controller + chunk server), then ``--devices`` devices in this process, each the real
updater code with its own MQTT client, model store and a simulated camera running the real int8
model on rendered frames. The committed fomo-street model is registered as a new version (same
network, re-packaged) and rolled out. ``seconds`` runs from campaign creation until every device
reported ACTIVE (downloaded, sha256 + signature checked, installed, self-tested, swapped and through
its health window: errors and output sanity; the latency-ratio check is off because 100 cameras
sharing a few cores measure each other, not the model). ``wire_bytes`` is every payload byte the
broker delivered to the devices (offers, chunks, and the devices' own chunk requests echoed on their
``chunks/+`` subscription).

Last line: ``{"devices", "active", "seconds", "model_bytes", "wire_bytes"}``. Goals: all ACTIVE in
under 30 s; wire_bytes ≤ 1.1 × model_bytes × devices.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy.orm import Session
from tqdm import tqdm

from benchmarks.fleet_sim import SimulatedDevice, synthetic_frames
from cloud_hub import db as hub_db
from cloud_hub.rollout import campaigns
from cloud_hub.rollout.keys import init_keys, key_dir, load_signing_key
from cloud_hub.rollout.models import CampaignDevice
from cloud_hub.rollout.registry import blob_dir, register
from cloud_hub.rollout.service import RolloutService
from edge_agent.updater.config import HealthConfig
from tests.rollout.support import repackage
from tests.support.mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "firmware_models" / "reference" / "fomo-street"
log = logging.getLogger("benchmarks.rollout")


def run(args: argparse.Namespace, work: Path) -> dict:
    (work / "mosquitto").mkdir()
    broker = MosquittoBroker(work / "mosquitto").start()
    devices: list[SimulatedDevice] = []
    service = None
    try:
        instance = work / "hub"
        url = f"sqlite:///{instance / 'hub.db'}"
        hub_db.upgrade(url)
        engine = hub_db.make_engine(url)
        _, public_key = init_keys(key_dir(instance))
        key = load_signing_key(key_dir(instance))
        with Session(engine, expire_on_commit=False) as db:
            candidate = repackage(args.model, work / "candidate", "99.0.0")
            model, _ = register(
                db, candidate / "model.onnx", candidate / "manifest.json", blob_dir(instance), key
            )
        service = RolloutService(
            engine, broker.url, "edgesight/v1", blob_dir(instance), key, tick_s=0.1
        ).start()

        frames = synthetic_frames(count=20)
        # 100 cameras share this machine's cores, so a device's latency here measures the simulation
        # (who else was self-testing at that moment), not the model: the relative latency check is off.
        health = HealthConfig(min_inferences=args.health_inferences, max_seconds=60, max_latency_ratio=None)
        ids = [f"bench-{i:03d}" for i in range(args.devices)]
        for device_id in tqdm(ids, desc="starting devices", disable=not args.progress):
            devices.append(
                SimulatedDevice(
                    device_id,
                    broker.host,
                    broker.port,
                    work / "stores" / device_id,
                    public_key,
                    args.model,
                    frames,
                    fps=args.fps,
                    health=health,
                ).start()
            )
        deadline = time.monotonic() + 60
        while not all(d.transport.client.is_connected() for d in devices) and time.monotonic() < deadline:
            time.sleep(0.05)

        started = time.monotonic()
        with Session(engine, expire_on_commit=False) as db:
            campaign = campaigns.create(
                db,
                key,
                model,
                ",".join(ids),
                canary=args.canary,
                waves=campaigns.parse_percentages(args.waves),
                max_failure=0.1,
                max_concurrent=args.max_concurrent,
            )
        active = 0
        with tqdm(total=len(ids), desc="ACTIVE", disable=not args.progress) as bar:
            while time.monotonic() - started < args.timeout:
                with Session(engine) as db:
                    rows = db.query(CampaignDevice).filter(CampaignDevice.campaign_id == campaign.id).all()
                now_active = sum(1 for r in rows if r.state == "ACTIVE")
                bar.update(now_active - active)
                active = now_active
                if active == len(ids) or any(r.state in campaigns.FAILURE for r in rows):
                    break
                time.sleep(0.05)
        seconds = time.monotonic() - started
        failures = [(r.device_id, r.state, r.reason) for r in rows if r.state in campaigns.FAILURE]
        if failures:
            log.error("failures: %s", failures[:5])
        on_new_model = sum(1 for d in devices if d.camera.active_ref == model.ref)
        return {
            "devices": len(ids),
            "active": active,
            "seconds": round(seconds, 2),
            "model_bytes": model.size_bytes,
            "wire_bytes": sum(d.transport.bytes_received for d in devices),
            "running_new_model": on_new_model,
            "chunk_bytes_sent": service.chunks.counters.bytes,
            "chunk_requests": service.chunks.counters.requests,
            "failures": len(failures),
        }
    finally:
        for device in devices:
            device.stop()
        if service is not None:
            service.stop()
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON result line")
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--canary", type=int, default=0)
    parser.add_argument("--waves", default="100%")
    parser.add_argument("--max-concurrent", type=int, default=100)
    parser.add_argument("--fps", type=float, default=5.0, help="frames per second of each simulated camera")
    parser.add_argument("--health-inferences", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    args.progress = not args.json
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="rollout-bench-") as tmp:
        result = run(args, Path(tmp))
    if not args.json:
        goal_time = result["active"] == result["devices"] and result["seconds"] < 30
        goal_wire = result["wire_bytes"] <= 1.1 * result["model_bytes"] * result["devices"]
        print(f"all ACTIVE in < 30 s: {goal_time}; wire_bytes ≤ 1.1 × model × devices: {goal_wire}")
    print(
        json.dumps(
            {k: result[k] for k in ("devices", "active", "seconds", "model_bytes", "wire_bytes")}
            | {
                "details": {
                    k: v
                    for k, v in result.items()
                    if k not in ("devices", "active", "seconds", "model_bytes", "wire_bytes")
                }
            }
        )
    )
    return 0 if result["active"] == result["devices"] else 1


if __name__ == "__main__":
    sys.exit(main())
