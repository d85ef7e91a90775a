"""Device identity: how fast the broker applies provisioning, and the two ACL back ends compared.

Runs a real Mosquitto (the secure deploy config) and measures, over N devices: create (dynsec
createRole+createClient round trip), revoke → the device's live connection closed, and, for comparison,
password/ACL files reloaded by SIGHUP (revocation latency and client-id takeover). Last line: one JSON object.

    .venv/bin/python -m benchmarks.identity --devices 20 --fleet 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from cloud_hub.identity.credentials import new_secret
from cloud_hub.identity.dynsec import DynsecAdmin
from cloud_hub.identity.endpoint import BrokerEndpoint
from tests.identity.probe import Probe, wait_until
from tests.identity.secure_broker import start_secure_broker
from tests.support.mosquitto import MosquittoBroker

log = logging.getLogger("benchmarks.identity")


def _ms(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values) * 1000, 2), "max_ms": round(max(values) * 1000, 2)}


def dynsec(workdir: Path, devices: int, fleet: int) -> dict[str, object]:
    """The plugin rewrites its whole JSON file on every change: cost grows with the fleet size."""
    broker = start_secure_broker(workdir)
    create, revoke = [], []
    try:
        with DynsecAdmin(broker.plain, *broker.login("admin"), timeout=60) as admin:
            for i in range(fleet):
                admin.create_device(broker.topics, f"fleet-{i:05d}", new_secret())
                if (i + 1) % 250 == 0:
                    log.info("dynsec: fleet %d/%d devices provisioned", i + 1, fleet)
            for i in range(devices):
                device, secret = f"cam-{i:04d}", new_secret()
                start = time.perf_counter()
                admin.create_device(broker.topics, device, secret)
                create.append(time.perf_counter() - start)
                probe = Probe(broker.tls, device, secret, client_id=device)
                assert not probe.connect().is_failure
                start = time.perf_counter()
                admin.delete_device(device)
                assert wait_until(probe.disconnected.is_set, 5.0, step=0.0005), "not disconnected in 5 s"
                revoke.append(time.perf_counter() - start)
                probe.close()
                if (i + 1) % 10 == 0:
                    log.info("dynsec: %d/%d devices", i + 1, devices)
    finally:
        broker.stop()
    return {
        "fleet": fleet,
        "dynsec_file_bytes": (workdir / "dynamic-security.json").stat().st_size,
        "create_device": _ms(create),
        "revoke_to_disconnect": _ms(revoke),
    }


def password_files(workdir: Path) -> dict[str, object]:
    """The alternative: mosquitto_passwd + an ACL file with %u patterns, reloaded by SIGHUP."""
    workdir.mkdir(parents=True)
    passwd, acl = workdir / "passwd", workdir / "acl"
    passwd.write_text("")
    for user in ("cam-x", "cam-y"):
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, "pw"], check=True)
    acl.write_text("pattern write edgesight/v1/devices/%u/events\n")
    config = (
        f"per_listener_settings false\nallow_anonymous false\npassword_file {passwd}\nacl_file {acl}\n"
        f"listener 1883\npersistence false\npersistence_location {workdir}/\n"
        f"log_dest file {workdir}/mosquitto.log\n" + ("user root\n" if os.geteuid() == 0 else "")
    )
    broker = MosquittoBroker(workdir, base_config=config).start()
    endpoint = BrokerEndpoint(broker.host, broker.port)
    try:
        victim = Probe(endpoint, "cam-x", "pw", client_id="cam-x")
        victim.connect()
        thief = Probe(endpoint, "cam-y", "pw", client_id="cam-x")
        thief.connect()
        takeover = wait_until(victim.disconnected.is_set, 2.0)
        thief.close()
        victim.close()
        live = Probe(endpoint, "cam-x", "pw", client_id="cam-x")
        live.connect()
        subprocess.run(["mosquitto_passwd", "-D", str(passwd), "cam-x"], check=True)
        start = time.perf_counter()
        broker.proc.send_signal(signal.SIGHUP)
        kicked = wait_until(live.disconnected.is_set, 5.0, step=0.0005)
        elapsed = time.perf_counter() - start
        live.close()
    finally:
        broker.stop()
    return {
        "revoke_to_disconnect_ms": round(elapsed * 1000, 2) if kicked else None,
        "clientid_takeover_kicks_victim": takeover,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20, help="devices created, connected and revoked")
    parser.add_argument("--fleet", type=int, default=1000, help="devices already provisioned")
    parser.add_argument(
        "--json", action="store_true", help="accepted for `make bench`; output is JSON anyway"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="edgesight-identity-"))
    try:
        result = {
            "devices": args.devices,
            "dynsec": dynsec(workdir / "dynsec", args.devices, args.fleet),
            "password_files_sighup": password_files(workdir / "files"),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
