"""Chaos: no crash loses an event or stores one twice — real processes, the shipped broker config.

    python -m benchmarks.chaos --json [--events 100000] [--agents 3] [--rate 700] [--db sqlite|postgresql]

One Mosquitto started from ``deploy/mosquitto/mosquitto.conf`` as shipped (only the listener and the
paths are moved), ``cloud-hub ingest`` processes (two on a shared subscription), and device processes
running the agent's real outbox and MQTT link (``benchmarks.chaos_agent``). While the devices stream,
a chaos loop picks at random: SIGKILL the broker and start it again, SIGKILL an ingest worker and start
it again, SIGKILL a device and start it again on its outbox, or freeze the broker (SIGSTOP) for a while.
The run ends when every device has made its events and the hub confirmed each one; then the database
must hold each (device, seq) exactly once. Prints one JSON line:
``{"sent", "stored", "duplicates", "lost", "broker_kills", "ingest_kills", "agent_kills",
"partitions", "thread_restarts", "seconds"}``. Goals: lost 0, duplicates 0 with ≥ 10 broker kills,
≥ 10 ingest kills and ≥ 3 agent kills over ≥ 100,000 events.

The same ``Cluster`` runs the sized-down versions in tests/e2e/test_chaos.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.pool import NullPool

from cloud_hub.db import make_engine, upgrade
from tests.support.mosquitto import MosquittoBroker

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks.chaos")


@dataclass
class Device:
    name: str
    count: int
    outbox: Path
    proc: subprocess.Popen | None = None
    rate: float = 300.0
    results: list[dict] = field(default_factory=list)
    kills: int = 0
    done: bool = False


class Cluster:
    """Broker, ingest workers and devices as separate OS processes, each killable on its own."""

    def __init__(self, workdir: Path, database_url: str, *, workers: int = 1, share: str | None = None,
                 session_expiry_s: int | None = None, ack_timeout_s: float = 2.0,
                 ack_timeout_max_s: float = 8.0, broker_port: int | None = None, hub_ack: bool = True):
        self.workdir = workdir
        self.database_url = database_url
        upgrade(database_url)
        (workdir / "broker").mkdir(parents=True, exist_ok=True)
        self.broker = MosquittoBroker(workdir / "broker", port=broker_port)
        self.share = share
        self.session_expiry_s = session_expiry_s
        self.ack_timeout_s, self.ack_timeout_max_s = ack_timeout_s, ack_timeout_max_s
        self.hub_ack = hub_ack
        self.workers: list[subprocess.Popen | None] = [None] * workers
        self.devices: dict[str, Device] = {}
        self.env = dict(os.environ, EDGESIGHT_DATABASE_URL=database_url, EDGESIGHT_MQTT_URL=self.broker.url,
                        EDGESIGHT_INSTANCE_PATH=str(workdir / "instance"), EDGESIGHT_LOG_FORMAT="text",
                        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.broker_kills = self.ingest_kills = self.agent_kills = self.partitions = 0
        self._engine = make_engine(database_url, poolclass=NullPool) if database_url else None

    # -------------------------------------------------------------------------------- processes
    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        log_file = open(self.workdir / log_name, "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen([sys.executable, *args], env=self.env, cwd=REPO, stdout=subprocess.PIPE,
                                stderr=log_file)

    def start_broker(self) -> None:
        self.broker.start()

    def kill_broker(self, forget: bool = False) -> None:
        """SIGKILL; with ``forget`` its persistence file goes too (a new disk, a broker that forgot all)."""
        self.broker.stop(kill=True)
        self.broker_kills += 1
        if forget:
            (self.broker.workdir / "mosquitto.db").unlink(missing_ok=True)

    def partition(self, seconds: float) -> None:
        """Freeze the broker: sockets stay open, nothing moves (a network partition, seen from both)."""
        assert self.broker.proc is not None
        self.broker.proc.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            self.broker.proc.send_signal(signal.SIGCONT)
        self.partitions += 1

    def start_worker(self, i: int) -> None:
        args = ["-m", "cloud_hub", "ingest", "--client-id", f"chaos-ingest-{i}"]
        if self.share:
            args += ["--share", self.share]
        if self.session_expiry_s is not None:
            args += ["--session-expiry", str(self.session_expiry_s)]
        self.workers[i] = self._spawn(args, f"ingest-{i}.log")

    def kill_worker(self, i: int) -> None:
        proc = self.workers[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
            self.ingest_kills += 1
        self.workers[i] = None

    def add_device(self, name: str, count: int, rate: float) -> Device:
        device = Device(name, count, self.workdir / f"{name}.outbox.db", rate=rate)
        self.devices[name] = device
        self.start_device(name)
        return device

    def start_device(self, name: str) -> None:
        d = self.devices[name]
        d.proc = self._spawn(["-m", "benchmarks.chaos_agent", "--device", name, "--url", self.broker.url,
                              "--outbox", str(d.outbox), "--count", str(d.count),
                              "--rate", str(d.rate),
                              "--ack-timeout", str(self.ack_timeout_s),
                              "--ack-timeout-max", str(self.ack_timeout_max_s),
                              *([] if self.hub_ack else ["--no-hub-ack"])], f"{name}.log")

    def kill_device(self, name: str) -> None:
        d = self.devices[name]
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)
            d.kills += 1
            self.agent_kills += 1
        d.proc = None

    def poll_devices(self) -> bool:
        """Collect devices that exited; start one again that gave up. True when all are done."""
        for d in self.devices.values():
            if d.done or d.proc is None:
                continue
            rc = d.proc.poll()
            if rc is None:
                continue
            out = d.proc.stdout.read().decode() if d.proc.stdout else ""
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if lines:
                d.results.append(json.loads(lines[-1]))
            d.proc = None
            if rc == 0:
                d.done = True
            else:
                log.warning("device %s exited %s; starting it again", d.name, rc)
                self.start_device(d.name)
        return all(d.done for d in self.devices.values())

    def wait_devices(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.poll_devices():
                return True
            time.sleep(0.2)
        return self.poll_devices()

    # ---------------------------------------------------------------------------------- results
    def counts(self) -> tuple[int, int]:
        """(rows, distinct (device, seq)) in the events table."""
        assert self._engine is not None
        with self._engine.connect() as conn:
            rows = conn.execute(text("SELECT COUNT(*) FROM events")).scalar_one()
            distinct = conn.execute(text(
                "SELECT COUNT(*) FROM (SELECT DISTINCT device_id, seq FROM events) AS k")).scalar_one()
        return int(rows), int(distinct)

    def thread_restarts(self) -> int:
        return sum(r.get("thread_restarts", 0) for d in self.devices.values() for r in d.results)

    def close(self) -> None:
        for name in list(self.devices):
            self.kill_device(name)
        for i, proc in enumerate(self.workers):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
            self.workers[i] = None
        if self.broker.proc is not None and self.broker.proc.poll() is None:
            self.broker.proc.send_signal(signal.SIGCONT)
        self.broker.stop()
        if self._engine is not None:
            self._engine.dispose()


def summary(cluster: Cluster, sent: int, seconds: float) -> dict:
    rows, distinct = cluster.counts()
    return {"sent": sent, "stored": distinct, "duplicates": rows - distinct, "lost": sent - distinct,
            "broker_kills": cluster.broker_kills, "ingest_kills": cluster.ingest_kills,
            "agent_kills": cluster.agent_kills, "partitions": cluster.partitions,
            "thread_restarts": cluster.thread_restarts(), "seconds": round(seconds, 1)}


def run(args: argparse.Namespace, workdir: Path, database_url: str) -> dict:
    rng = random.Random(args.seed)
    cluster = Cluster(workdir, database_url, workers=2, share="hub", session_expiry_s=args.session_expiry,
                      ack_timeout_s=args.ack_timeout, ack_timeout_max_s=args.ack_timeout_max,
                      hub_ack=not args.no_hub_ack)
    t0 = time.monotonic()
    try:
        cluster.start_broker()
        for i in range(2):
            cluster.start_worker(i)
        time.sleep(2)
        per = args.events // args.agents
        counts = [per + (1 if k < args.events % args.agents else 0) for k in range(args.agents)]
        for k, count in enumerate(counts):
            cluster.add_device(f"chaos-{k + 1}", count, args.rate)
        stream_s = max(counts) / args.rate
        deadline = t0 + stream_s * 3 + 600
        goals = {"broker": args.broker_kills, "ingest": args.ingest_kills, "agent": args.agent_kills}
        # Spread the actions over the stream: its length, less the partitions, less ~1 s per action.
        actions = sum(goals.values()) + args.partitions
        period = max(0.5, (stream_s - args.partitions * args.partition_s) / (actions + 1) - 1.0)
        partitions_left = args.partitions
        while time.monotonic() < deadline:
            if cluster.poll_devices():
                break
            time.sleep(rng.uniform(0.3, 1.7) * period)
            if cluster.poll_devices():
                break
            left = {
                "broker": goals["broker"] - cluster.broker_kills,
                "ingest": goals["ingest"] - cluster.ingest_kills,
                "agent": goals["agent"] - cluster.agent_kills,
            }
            choices = [k for k, v in left.items() if v > 0] + (["partition"] if partitions_left else [])
            if not choices:
                continue
            what = rng.choice(choices)
            if what == "broker":
                cluster.kill_broker()
                time.sleep(rng.uniform(0.0, 2.0))
                cluster.start_broker()
            elif what == "ingest":
                i = rng.randrange(2)
                cluster.kill_worker(i)
                time.sleep(rng.uniform(0.0, 1.0))
                cluster.start_worker(i)
            elif what == "agent":
                running = [n for n, d in cluster.devices.items() if d.proc is not None and not d.done]
                if running:
                    name = rng.choice(running)
                    cluster.kill_device(name)
                    time.sleep(rng.uniform(0.0, 1.0))
                    cluster.start_device(name)
            else:
                partitions_left -= 1
                cluster.partition(args.partition_s)
            log.info("chaos: %s (stored so far %d)", what, cluster.counts()[1])
        finished = cluster.wait_devices(60)
        if not finished:
            log.warning("devices did not all finish; see %s", workdir)
        time.sleep(1.0)  # the last commits
        return summary(cluster, sum(counts), time.monotonic() - t0)
    finally:
        cluster.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line (always last)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--rate", type=float, default=250.0, help="events/s per device")
    parser.add_argument("--broker-kills", type=int, default=12)
    parser.add_argument("--ingest-kills", type=int, default=12)
    parser.add_argument("--agent-kills", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--partition-s", type=float, default=30.0)
    parser.add_argument("--session-expiry", type=int, default=30)
    parser.add_argument("--ack-timeout", type=float, default=3.0)
    parser.add_argument("--ack-timeout-max", type=float, default=12.0)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--no-hub-ack", action="store_true", help="devices forget events on PUBACK (old)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    import tempfile

    with ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="edgesight-chaos-"))
        if args.db == "postgresql":
            from tests.support.postgres import temporary_database

            url = stack.enter_context(temporary_database())
        else:
            url = f"sqlite:///{workdir / 'hub.db'}"
        result = run(args, workdir, url)
        if not args.keep:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
        else:
            result["workdir"] = str(workdir)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and result["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
