"""A device for the chaos harness: the agent's real outbox and MQTT link, fed by a paced event counter.

    python -m benchmarks.chaos_agent --device chaos-1 --url mqtt://127.0.0.1:1883 \
        --outbox /tmp/chaos-1.db --count 10000 --rate 300 [--ack-timeout 2 --ack-timeout-max 8]

Everything from the outbox to the broker is the shipped agent code (``edge_agent.outbox.Outbox``,
``edge_agent.mqtt_link.MqttLink``, the supervisor); only the camera pipeline is replaced by a counter, so
a 100,000-event run costs seconds of CPU, not hours of video. Killed (SIGKILL) and started again on the
same outbox, it continues after the last seq it took, like the agent. It exits 0 once all ``--count``
events exist and the hub has confirmed every one (the outbox is empty), printing one JSON line.
``--no-hub-ack`` runs the delivery the agent had before issue 21 (an event leaves on PUBACK), to
measure what that loses under the same chaos.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time

from edge_agent.config import AgentConfig
from edge_agent.mqtt_link import MqttLink
from edge_agent.outbox import Outbox
from shared.payloads import DeviceState, EventPayload, StatusPayload
from shared.topics import Topics


def event_id(device: str, seq: int) -> str:
    return f"{device}-{seq:09d}"


def config(args: argparse.Namespace) -> AgentConfig:
    return AgentConfig.model_validate({
        "device": {"id": args.device},
        "mqtt": {"url": args.url, "reconnect_min_s": 1, "reconnect_max_s": 2, "max_inflight": 100},
        "outbox": {"path": args.outbox, "ack_timeout_s": args.ack_timeout,
                   "ack_timeout_max_s": args.ack_timeout_max, "hub_ack": not args.no_hub_ack},
        "cameras": [{"name": "chaos", "source": {"type": "file", "path": "none.mp4"},
                     "model": {"path": "none"}}],
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--outbox", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--rate", type=float, default=300.0, help="events per second")
    parser.add_argument("--ack-timeout", type=float, default=30.0)
    parser.add_argument("--ack-timeout-max", type=float, default=600.0)
    parser.add_argument("--no-hub-ack", action="store_true",
                        help="the old delivery: forget an event on the broker's PUBACK (for comparison)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up (exit 1) after this long")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s {args.device} %(levelname)s %(name)s: %(message)s")
    cfg = config(args)
    topics = Topics(cfg.mqtt.prefix)
    outbox = Outbox(cfg.outbox.path)
    started = time.time()

    def status(state: DeviceState) -> StatusPayload:
        return StatusPayload(device_id=args.device, state=state, ts=time.time(), agent_version="chaos",
                             uptime_s=round(time.time() - started, 1))

    link = MqttLink(cfg, outbox, status)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    link.start()
    last = outbox.last_seq()
    next_seq = 0 if last is None else last + 1

    def build(seq: int) -> tuple[str, bytes]:
        event = EventPayload(event_id=event_id(args.device, seq), device_id=args.device, seq=seq,
                             ts=time.time(), kind="line", label="person", score=0.9, line="door",
                             direction="A->B")
        return topics.events(args.device), event.to_bytes()

    deadline = time.monotonic() + args.timeout
    t0, made = time.monotonic(), 0
    ok = False
    while not stop.is_set() and time.monotonic() < deadline:
        if next_seq < args.count:
            due = int((time.monotonic() - t0) * args.rate) - made
            for _ in range(max(0, min(due, args.count - next_seq))):
                next_seq = outbox.add_event(build) + 1
                made += 1
            link.wake()
            stop.wait(0.01)
            continue
        if outbox.depth() == 0:
            ok = True
            break
        stop.wait(0.1)
    result = {"device": args.device, "last_seq": next_seq - 1, "confirmed": link.confirmed,
              "resent": link.resent, "published": link.published, "thread_restarts": link.restarts.total,
              "left": outbox.depth()}
    link.stop()
    outbox.close()
    print(json.dumps(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
