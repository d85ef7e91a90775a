"""Hub ingest throughput and latency through a real Mosquitto, on SQLite and PostgreSQL.

    python -m benchmarks.ingest --json [--events 50000] [--rate 1000] [--paced-seconds 10]

For each database (sqlite, postgresql) and each worker count (1, 2), on a fresh broker and database:

1. ``cloud-hub ingest`` processes start (2 workers share ``$share/hub/...``);
2. paced phase: ``--rate`` events/s for ``--paced-seconds``; latency = edge timestamp → committed, as
   measured by each worker after its commit (the quantiles its /metrics exports); with 2 workers the
   p50 is the mean and the p99 the worse of the two;
3. flood: ``--events`` QoS 1 events published by 10 ``mosquitto_pub -l`` processes (C, so the publisher
   is not the bottleneck); ``events_per_s`` is events / (last commit − first publish).
   ``events_stored`` counts the flood's rows, ``duplicates`` rows
   stored twice (the unique key makes it 0 by construction; ``redeliveries_ignored`` shows how often it
   had to), ``publish_per_s`` how fast the publisher went (the flood can't be faster).

``broker_drain_per_s``: the same flood drained by ``mosquitto_sub`` alone (the broker-side limit).
Progress goes to stderr; the last stdout line is one JSON object. Goals on a 2-core machine:
PostgreSQL ≥ 5,000 events/s with events_stored == events_sent and 0 duplicates; p99 < 250 ms at 1,000/s.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool

from cloud_hub.db import make_engine, upgrade
from cloud_hub.models import Event
from shared.payloads import EventPayload
from shared.topics import TopicKind, Topics
from tests.support.mosquitto import MosquittoBroker, free_port
from tests.support.postgres import temporary_database

REPO = Path(__file__).resolve().parents[1]
TOPICS = Topics()
DEVICES = 50
log = logging.getLogger("benchmarks.ingest")


MOSQUITTO_PUB = shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub"


def device_name(k: int) -> str:
    return f"bench-{k:02d}"


def payload(i: int, ts: float | None = None, device: int | None = None) -> tuple[str, bytes]:
    device = device_name(i % DEVICES if device is None else device)
    event = EventPayload(event_id=f"ev{i:010d}", device_id=device, seq=i, ts=ts or time.time(), kind="line",
                         label="person" if i % 3 else "car", score=0.8, line="door", direction="A->B")
    return TOPICS.events(device), event.to_bytes()


FLOOD_PUBLISHERS = 10


def flood(broker: MosquittoBroker, first: int, count: int, workdir: Path) -> float:
    """Publish ``count`` events at QoS 1 with ``mosquitto_pub -l`` (one process per device, C speed, so
    the flood measures the hub and not a Python publisher); returns seconds until every PUBACK."""
    files = []
    for k in range(FLOOD_PUBLISHERS):
        path = workdir / f"flood-{k}.jsonl"
        with open(path, "wb") as fh:
            for i in range(first + k, first + count, FLOOD_PUBLISHERS):
                fh.write(payload(i, device=k)[1] + b"\n")
        files.append(path)
    started = time.perf_counter()
    procs = []
    for k, path in enumerate(files):
        with open(path, "rb") as stdin:
            procs.append(subprocess.Popen(
                [MOSQUITTO_PUB, "-h", broker.host, "-p", str(broker.port), "-q", "1", "-l", "-M", "200",
                 "-i", f"bench-flood-{k}-{time.monotonic_ns()}", "-t", TOPICS.events(device_name(k))],
                stdin=stdin))
    for proc in procs:
        if proc.wait(600) != 0:
            raise RuntimeError(f"mosquitto_pub failed with {proc.returncode}")
    return time.perf_counter() - started


class Publisher:
    def __init__(self, broker: MosquittoBroker):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{time.monotonic_ns()}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def paced(self, first: int, rate: float, seconds: float) -> int:
        count = int(rate * seconds)
        started = time.perf_counter()
        infos = []
        for n in range(count):
            delay = started + n / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            infos.append(self.client.publish(*payload(first + n), qos=1))
        for info in infos:
            info.wait_for_publish(60)
        return count

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def scrape(port: int) -> dict[str, float]:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
            values[key] = sample.value
    return values


class Workers:
    """``cloud-hub ingest`` processes, as deployed (one process per worker)."""

    def __init__(self, count: int, database_url: str, broker: MosquittoBroker, workdir: Path):
        self.ports = [free_port() for _ in range(count)]
        env = dict(os.environ, EDGESIGHT_DATABASE_URL=database_url, EDGESIGHT_MQTT_URL=broker.url,
                   EDGESIGHT_INSTANCE_PATH=str(workdir / "instance"), EDGESIGHT_LOG_FORMAT="text")
        self.procs = []
        for i, port in enumerate(self.ports):
            args = [sys.executable, "-m", "cloud_hub", "ingest", "--client-id", f"bench-ingest-{i}",
                    "--metrics-port", str(port)]
            if count > 1:
                args += ["--share", "hub"]
            log_file = open(workdir / f"ingest-{i}.log", "wb")  # noqa: SIM115 - owned by the child
            self.procs.append(subprocess.Popen(args, env=env, cwd=REPO, stdout=log_file, stderr=log_file))
        deadline = time.monotonic() + 60
        for port in self.ports:
            while True:
                try:
                    if scrape(port).get("edgesight_ingest_connected") == 1:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ingest did not come up; see {workdir}")
                time.sleep(0.2)
        time.sleep(0.5)  # SUBACK follows CONNACK

    def metrics(self) -> list[dict[str, float]]:
        return [scrape(port) for port in self.ports]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(30)


def stored(engine) -> tuple[int, float | None]:
    with engine.connect() as conn:
        total, last = conn.execute(select(func.count(), func.max(Event.received_at))).one()
    return int(total), last


def distinct_keys(engine) -> int:
    with engine.connect() as conn:
        keys = select(Event.device_id, Event.event_id).distinct().subquery()
        return int(conn.execute(select(func.count()).select_from(keys)).scalar_one())


def wait_stored(engine, target: int, stall_s: float = 60.0) -> int:
    last_count, last_change = -1, time.monotonic()
    while True:
        count = stored(engine)[0]
        if count >= target:
            return count
        if count != last_count:
            last_count, last_change = count, time.monotonic()
            log.info("  stored %d / %d", count, target)
        elif time.monotonic() - last_change > stall_s:
            log.warning("  stalled at %d / %d", count, target)
            return count
        time.sleep(0.5)


def run_once(db: str, workers: int, args, workdir: Path) -> dict:
    with ExitStack() as stack:
        if db == "postgresql":
            url = stack.enter_context(temporary_database())
        else:
            url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url, poolclass=NullPool)
        stack.callback(engine.dispose)
        (workdir / "broker").mkdir()
        broker = MosquittoBroker(workdir / "broker").start()
        stack.callback(broker.stop)
        pool = Workers(workers, url, broker, workdir)
        stack.callback(pool.stop)
        publisher = Publisher(broker)
        stack.callback(publisher.close)

        log.info("[%s, %d worker(s)] paced: %d events/s for %ss", db, workers, args.rate, args.paced_seconds)
        paced = publisher.paced(0, args.rate, args.paced_seconds)
        wait_stored(engine, paced)
        metrics = pool.metrics()
        p50 = sum(m['edgesight_ingest_event_latency_seconds{quantile=0.5}'] for m in metrics) / len(metrics)
        p99 = max(m['edgesight_ingest_event_latency_seconds{quantile=0.99}'] for m in metrics)

        log.info("[%s, %d worker(s)] flood: %d events", db, workers, args.events)
        flood_start = time.time()
        publish_s = flood(broker, paced, args.events, workdir)
        total = wait_stored(engine, paced + args.events)
        _, last_commit = stored(engine)
        elapsed = (last_commit or time.time()) - flood_start
        redeliveries = sum(m.get("edgesight_ingest_duplicates_total", 0) for m in pool.metrics())
        result = {
            "db": db, "workers": workers, "events_sent": args.events, "events_stored": total - paced,
            "duplicates": total - distinct_keys(engine), "events_per_s": round(args.events / elapsed, 1),
            "latency_p50_ms": round(p50 * 1000, 1), "latency_p99_ms": round(p99 * 1000, 1),
            "latency_events": paced, "publish_per_s": round(args.events / publish_s, 1),
            "redeliveries_ignored": int(redeliveries),
        }
        log.info("  %s", result)
        return result


def broker_drain(args, workdir: Path) -> float:
    """How fast mosquitto_sub alone takes the same flood (QoS 1, same broker config)."""
    (workdir / "drain").mkdir()
    broker = MosquittoBroker(workdir / "drain").start()
    sub = subprocess.Popen([shutil.which("mosquitto_sub") or "mosquitto_sub", "-h", broker.host, "-p",
                            str(broker.port), "-q", "1", "-t", TOPICS.all_devices(TopicKind.EVENTS),
                            "-C", str(args.events), "-i", "bench-drain"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # mosquitto_sub has subscribed
        started = time.perf_counter()
        flood(broker, 0, args.events, workdir)
        sub.wait(300)
        drain = args.events / (time.perf_counter() - started)
    finally:
        if sub.poll() is None:
            sub.kill()
        broker.stop()
    log.info("broker drain (mosquitto_sub): %.0f events/s", drain)
    return round(drain, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line (always last)")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s of the latency phase")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--dbs", default="sqlite,postgresql")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("cloud_hub").setLevel(logging.WARNING)
    runs = []
    for db in args.dbs.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            with tempfile.TemporaryDirectory(prefix="edgesight-bench-") as tmp:
                runs.append(run_once(db, workers, args, Path(tmp)))
    with tempfile.TemporaryDirectory(prefix="edgesight-bench-") as tmp:
        drain = broker_drain(args, Path(tmp))
    result = {"runs": runs, "broker_drain_per_s": drain}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
