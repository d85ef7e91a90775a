"""The ingest worker: paho-mqtt subscriber → classify → batch commit → ack.

Acks are manual (paho ``manual_ack=True``): a PUBACK leaves only after the message's row is committed,
so a crash at any point makes the broker redeliver, and insert-or-ignore on (device_id, event_id)
absorbs the redelivery. The session is persistent (clean_session=False, stable client id), so
messages published while ingest is down wait in the broker.

After each commit the worker also tells every device in the batch which of its event seqs are now
stored (or dead-lettered for good) on ``{prefix}/devices/{id}/acks`` (shared.payloads.AckPayload): the
end-to-end acknowledgement the agent's outbox waits for before it forgets an event. It is sent after
the commit and before the MQTT acks, from whichever worker of a shared subscription committed them; a
lost ack only makes the agent publish again, which insert-or-ignore absorbs.

Scale-out: workers on a shared subscription (``share_group``) speak MQTT 5 with a stable client id and
a session that expires ``session_expiry_s`` (300 s) after the worker is gone, so the broker stops
routing a dead worker's share to its session and the living get it all; whatever the broker had queued
for the dead session is published again by the devices when their hub acknowledgement does not come.

Threads: paho's network loop only queues messages; one writer thread batches, commits and acks. One
stop event ends both, writer first draining what it holds. A supervisor (cloud_hub.supervisor)
restarts either if it dies; a restarted writer first replays, one message at a time, the batch it held
(still unacked), so the message that killed it becomes a dead letter instead of killing it again.
"""

from __future__ import annotations

import logging
import queue
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine

from cloud_hub.capture import ingest as capture_ingest
from cloud_hub.config import parse_mqtt_url
from cloud_hub.ingest.guard import guarded_classify
from cloud_hub.ingest.records import DEFAULT_WINDOW, Incoming, Record, TsWindow, rejected_event_seq
from cloud_hub.ingest.store import BatchWriter, TransientDatabaseError
from cloud_hub.snapshots import SnapshotStore
from cloud_hub.supervisor import Supervisor
from shared.payloads import AckPayload, seq_ranges
from shared.topics import QOS_RELIABLE, QOS_TELEMETRY, TopicKind, Topics

log = logging.getLogger(__name__)

SUBSCRIBED_KINDS = {
    TopicKind.EVENTS: QOS_RELIABLE,
    TopicKind.STATUS: QOS_RELIABLE,
    TopicKind.SNAPSHOT: QOS_RELIABLE,
    TopicKind.TELEMETRY: QOS_TELEMETRY,
    TopicKind.PREVIEW: QOS_TELEMETRY,
    TopicKind.CONFIG_STATE: QOS_RELIABLE,
    TopicKind.CAPTURE_CHUNK: QOS_RELIABLE,
    TopicKind.CAPTURE_STATE: QOS_RELIABLE,
}


@dataclass
class Counters:
    """Monotonic totals since start (exported to Prometheus by cloud_hub.metrics)."""

    received: int = 0
    events_stored: int = 0
    duplicates: int = 0
    statuses: int = 0
    telemetry: int = 0
    snapshots: int = 0
    dead_letters: int = 0
    batches: int = 0
    acked: int = 0
    acks_sent: int = 0
    db_retries: int = 0
    last_commit_at: float = 0.0
    last_batch_lag_s: float = 0.0


LATENCY_WINDOW = 20_000  # events whose edge-timestamp → commit latency the quantiles describe


def quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


SHARED_SESSION_EXPIRY_S = 300


def default_client_id(worker: int = 0) -> str:
    return f"edgesight-hub-ingest-{socket.gethostname()}-{worker}"


class IngestWorker:
    """Usable in process (tests, demo) and by ``cloud-hub ingest``: start(), stop(), counters."""

    def __init__(
        self,
        engine: Engine,
        mqtt_url: str,
        prefix: str,
        *,
        client_id: str | None = None,
        share_group: str | None = None,
        snapshot_dir: str | None = None,
        batch_size: int = 500,
        max_delay_s: float = 0.025,
        idle_flush_s: float = 0.005,
        persistent_session: bool = True,
        ca_file: str | None = None,
        send_acks: bool = True,
        session_expiry_s: int | None = None,
        ts_window: TsWindow = DEFAULT_WINDOW,
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 10.0,
    ):
        self.topics = Topics(prefix)
        self.address = parse_mqtt_url(mqtt_url)
        self.writer = BatchWriter(engine, SnapshotStore(snapshot_dir) if snapshot_dir else None)
        self.share_group = share_group
        self.send_acks = send_acks
        self.client_id = client_id or default_client_id()
        self.batch_size = batch_size
        self.max_delay_s = max_delay_s
        self.idle_flush_s = idle_flush_s
        self.ts_window = ts_window
        self.counters = Counters()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self._queue: queue.Queue[Incoming] = queue.Queue()
        self._pending: list[Incoming] = []  # the batch in hand: survives a writer restart, unacked
        self._writer_starts = 0
        self.supervisor = Supervisor("ingest-supervisor")
        self._lock = threading.Lock()
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)
        if share_group and session_expiry_s is None:
            session_expiry_s = SHARED_SESSION_EXPIRY_S
        self.session_expiry_s = session_expiry_s if persistent_session else None
        if self.session_expiry_s is not None:
            # MQTT 5: the session outlives a crash or restart, but not for ever (see the module doc).
            self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                      protocol=mqtt.MQTTv5, manual_ack=True)
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                clean_session=not persistent_session,
                protocol=mqtt.MQTTv311,
                manual_ack=True,
            )
        if self.address.username:
            self.client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self.client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)  # None: system CAs
        self.client.suppress_exceptions = True  # a callback's exception must not end the network loop
        self.client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    # -- lifecycle ---------------------------------------------------------------------------------
    def subscriptions(self) -> list[tuple[str, int]]:
        subs = []
        for kind, qos in SUBSCRIBED_KINDS.items():
            topic_filter = self.topics.all_devices(kind)
            if self.share_group:
                topic_filter = self.topics.shared(self.share_group, topic_filter)
            subs.append((topic_filter, qos))
        return subs

    def start(self, wait_s: float = 15.0) -> IngestWorker:
        """Connect, subscribe and start the writer; raises if the broker does not answer in ``wait_s``."""
        self.supervisor.spawn("ingest-writer", self._write_loop)
        if self.session_expiry_s is not None:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = self.session_expiry_s
            self.client.connect_async(self.address.host, self.address.port, keepalive=30,
                                      clean_start=False, properties=props)
        else:
            self.client.connect_async(self.address.host, self.address.port, keepalive=30)
        self.client.loop_start()
        # paho's loop_start thread clears ``client._thread`` when it ends, so loop_start() restarts it.
        self.supervisor.watch("ingest-mqtt", self._network_alive, self.client.loop_start)
        self.supervisor.start()
        if not self.subscribed.wait(wait_s):
            self.stop()
            raise ConnectionError(f"no MQTT subscription at {self.address.host}:{self.address.port} "
                                  f"after {wait_s}s")
        log.info("ingest subscribed", extra={"subscriptions": [s for s, _ in self.subscriptions()]})
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, commit and ack what is held, then disconnect."""
        self._stop.set()
        self.supervisor.stop()
        self.supervisor.join("ingest-writer", timeout)
        self.client.disconnect()
        self.client.loop_stop()

    def _network_alive(self) -> bool:
        thread = self.client._thread  # paho sets it in loop_start, clears it when the loop ends
        return thread is not None and thread.is_alive()

    def ready(self) -> bool:
        """Subscribed, connected, and every thread alive: what ``/readyz`` of the ingest process says."""
        return self.connected.is_set() and self.subscribed.is_set() and self.supervisor.healthy()

    def snapshot(self) -> dict:
        with self._lock:
            counters = asdict(self.counters)
            latencies = sorted(self._latencies)
        return counters | {"queued": self._queue.qsize(), "connected": self.connected.is_set(),
                           "thread_restarts": self.supervisor.total_restarts(),
                           "latency_p50_s": quantile(latencies, 0.50),
                           "latency_p99_s": quantile(latencies, 0.99), "latency_samples": len(latencies)}

    # -- paho callbacks (network thread) -----------------------------------------------------------
    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        self.connected.set()
        client.subscribe(self.subscriptions())

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            log.error("subscription refused: %s", failed)
            return
        self.subscribed.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); paho reconnects", reason_code)

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        if self._stop.is_set():
            return  # stopping: left unacked, the broker redelivers it to the next session
        try:
            topic = message.topic
        except UnicodeDecodeError:  # brokers should refuse these; a dead letter if one does not
            topic = bytes(message._topic).decode("utf-8", "backslashreplace")
        self._queue.put(Incoming(topic, bytes(message.payload), message.mid, message.qos, time.time()))

    # -- writer thread -----------------------------------------------------------------------------
    def _next_batch(self) -> list[Incoming]:
        """Wait for a first message, then take more until full, idle, or max_delay after the first."""
        try:
            first = self._queue.get(timeout=0.1)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.max_delay_s
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=min(self.idle_flush_s, remaining)))
            except queue.Empty:
                break
        return batch

    def _write_loop(self) -> None:
        self._writer_starts += 1
        # After a restart the batch in hand may be what killed the last writer: one message at a time.
        suspect = self._writer_starts > 1 and bool(self._pending)
        backoff = 0.1
        while True:
            if not self._pending:
                if self._stop.is_set() and self._queue.empty():
                    return
                self._pending = self._next_batch()
                if not self._pending:
                    continue
            pending = self._pending
            records = [guarded_classify(self.topics, m, self.ts_window) for m in pending]
            try:
                result = self.writer.write_each(records) if suspect else self.writer.write(records)
            except TransientDatabaseError as exc:
                with self._lock:
                    self.counters.db_retries += 1
                if self._stop.is_set():
                    log.error("database unavailable at shutdown; %d messages stay unacked for redelivery",
                              len(pending))
                    return
                log.warning("database unavailable (%s); retrying in %.1fs", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            except Exception:  # a bug must not kill ingest; the batch stays unacked, retried one by one
                log.exception("unexpected error writing a batch of %d; retrying one by one", len(pending))
                suspect = True
                if self._stop.is_set():
                    return
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            suspect = False
            self._committed(pending, records, result)
            self._pending = []

    def _committed(self, messages: list[Incoming], records: list[Record], result) -> None:
        """After the commit: tell devices what is stored, then ack the MQTT messages, then count."""
        if self.send_acks:
            try:
                self._send_device_acks(records)
            except Exception:  # a lost device ack only means a resend (absorbed); never a dead writer
                log.exception("sending device acks failed")
        self._ack(messages)
        self._count(records, result)

    def _send_device_acks(self, records: list[Record]) -> None:
        stored: dict[str, set[int]] = {}
        rejected: dict[str, set[int]] = {}
        for record in records:
            if record.kind == "event" and record.device_id:
                stored.setdefault(record.device_id, set()).add(record.row["seq"])
            elif record.kind == "dead":
                named = rejected_event_seq(self.topics, record.incoming)
                if named is not None:
                    rejected.setdefault(named[0], set()).add(named[1])
        self._send_capture_acks(records)
        now = time.time()
        for device_id in sorted(stored.keys() | rejected.keys()):
            ack = AckPayload(device_id=device_id, ts=now, stored=seq_ranges(stored.get(device_id, set())),
                             rejected=seq_ranges(rejected.get(device_id, set())), worker=self.client_id)
            # QoS 1 into the device's persistent session; paho queues it if we are disconnected.
            self.client.publish(self.topics.acks(device_id), ack.to_bytes(), qos=QOS_RELIABLE)
            with self._lock:
                self.counters.acks_sent += 1

    def _send_capture_acks(self, records: list[Record]) -> None:
        """Per capture in this batch: the frames the hub now holds (shared/capture.py, CaptureAck)."""
        touched = {(r.device_id, r.row["capture_id"]) for r in records
                   if r.kind in ("capture_chunk", "capture_state") and r.device_id}
        if not touched:
            return
        for ack in capture_ingest.acks(self.writer.engine, touched):
            self.client.publish(self.topics.capture_ack(ack.device_id), ack.to_bytes(), qos=QOS_RELIABLE)

    def _ack(self, messages: list[Incoming]) -> None:
        for message in messages:
            if message.qos > 0:
                self.client.ack(message.mid, message.qos)

    def _count(self, records: list[Record], result) -> None:
        now = time.time()
        with self._lock:
            c = self.counters
            c.received += len(records)
            c.events_stored += result.events_stored
            c.duplicates += result.duplicates
            c.statuses += result.statuses
            c.telemetry += result.telemetry
            c.snapshots += result.snapshots
            c.dead_letters += result.dead_letters
            c.batches += 1
            c.acked += sum(1 for r in records if r.incoming.qos > 0)
            c.last_commit_at = now
            c.last_batch_lag_s = now - min(r.incoming.received_at for r in records)
            self._latencies.extend(now - r.row["ts"] for r in records if r.kind == "event")
        for record in records:
            if record.kind == "dead":
                log.warning("dead letter: %s (%s)", record.reason, record.incoming.topic,
                            extra={"topic": record.incoming.topic, "reason": record.reason})
