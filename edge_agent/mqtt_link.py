"""MQTT side of the agent (paho-mqtt 2, CallbackAPIVersion.VERSION2).

- client id = username = device id; ``clean_session=False`` so QoS 1 state survives reconnects;
- a retained ``online`` status on every connect, and the retained ``offline`` status as the last will;
- a drain thread that publishes outbox rows in order (QoS 1, a bounded in-flight window) and deletes
  a row only when its PUBACK arrives: ``on_publish`` records the acknowledged message ids, the drain
  thread matches them to its rows. (Not ``MQTTMessageInfo.is_published``: with paho 2.2 it raises when
  ``publish`` returned NO_CONN — a publish racing a dying socket — although paho keeps that message
  queued and sends it after the reconnect; that exception once killed the drain thread for good.)
- end-to-end acknowledgement (``outbox.hub_ack``, on by default): a PUBACK only marks an event SENT;
  the hub's ``acks`` message (after its database commit) deletes it; what stays unconfirmed past the ack
  timeout, or everything SENT when the broker shows it lost our session, is published again
  (edge_agent/outbox.py has the states);
- the drain loop runs under ``edge_agent.supervisor.supervise``: if it ever raises, it is logged,
  counted and restarted, never silently gone;
- paho's own loop thread reconnects with backoff, also when the broker is down at start.

A row handed to paho stays with paho until PUBACK: paho re-sends unacknowledged QoS 1 messages itself
after a reconnect, so the drain thread never publishes the same row twice within one process. After a
restart paho's memory is gone and the outbox re-publishes whatever is still on disk.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.config import AgentConfig
from edge_agent.outbox import Outbox
from edge_agent.supervisor import Restarts, supervise
from shared.payloads import AckPayload, DeviceState, PayloadError, StatusPayload, decode
from shared.topics import QOS_RELIABLE, QOS_TELEMETRY, TopicError, TopicKind, Topics

log = logging.getLogger(__name__)

SignalHandler = Callable[[str, str], None]


def parse_signal(raw: bytes) -> str | None:
    """A signal payload is a bare state (``red``) or JSON ``{"state": "red"}``; returns it lower-cased."""
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        return None
    if text.startswith("{"):
        try:
            value = json.loads(text).get("state")
        except (json.JSONDecodeError, AttributeError):
            return None
        return str(value).lower() if value is not None else None
    return text.lower() or None


# A PUBACK'd message id nobody claims (a status or telemetry publish) is forgotten after this long; ids
# wrap only after 65,535 publishes, so a forgotten one can never be mistaken for a later publish's.
STALE_MID_S = 30.0


class MqttLink:
    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        status: Callable[[DeviceState], StatusPayload],
        restarts: Restarts | None = None,
    ):
        self.config = config
        self.device_id = config.device.id
        self.topics = Topics(config.mqtt.prefix)
        self.outbox = outbox
        self.status = status
        self._closing = threading.Event()
        self.close_grace_s = 3.0
        self.connected = threading.Event()
        self.signal_handlers: list[SignalHandler] = []
        # Other device-side services on this one connection (the updater): (filter, handler) pairs,
        # subscribed on every connect, and callbacks run after each (re)connect.
        self.extra_subscriptions: list[tuple[str, Callable[[str, bytes], None]]] = []
        self.connect_listeners: list[Callable[[], None]] = []
        self.published = 0
        self.connects = 0
        self._wake = threading.Condition()
        self._woken = False
        self.restarts = restarts or Restarts()
        self._inflight: dict[int, int] = {}  # MQTT message id -> outbox row id, in publish order
        self._acked_mids: dict[int, float] = {}  # message id -> when its PUBACK came (on_publish)
        self._mid_lock = threading.Lock()
        self._acks: list[AckPayload] = []  # from paho's thread to the drain thread (under _mid_lock)
        self._session_lost = False
        self._next_requeue = 0.0
        self.hub_ack = config.outbox.hub_ack
        self.confirmed = 0  # events the hub said it stored
        self.rejected = 0  # events the hub dead-lettered (it will never store them)
        self.resent = 0  # events published again for want of a hub acknowledgement
        self.client = self._make_client()
        self._drainer = threading.Thread(target=self._drain, name="outbox-drain", daemon=True)

    def _make_client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.username_pw_set(self.device_id, self.config.device.password)
        if cfg.tls is not None or cfg.url.startswith("mqtts://"):
            tls = cfg.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                keyfile=str(tls.key_file) if tls and tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(bool(tls and tls.insecure))
        offline = self.status(DeviceState.OFFLINE)
        client.will_set(self.topics.status(self.device_id), offline.to_bytes(), qos=QOS_RELIABLE, retain=True)
        client.reconnect_delay_set(
            min_delay=max(1, round(cfg.reconnect_min_s)), max_delay=max(1, round(cfg.reconnect_max_s))
        )
        client.max_inflight_messages_set(cfg.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.suppress_exceptions = True  # a failing callback is logged; the network loop keeps running
        client.enable_logger(logging.getLogger("edge_agent.paho"))
        return client

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        cfg = self.config.mqtt
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        self.client.loop_start()  # retries the first connection too (paho 2)
        self._drainer.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Let in-flight messages get their PUBACK (so a restart does not send them again), publish the
        offline status (a clean disconnect does not fire the will), then disconnect."""
        self._closing.set()
        self.wake()
        self._drainer.join(timeout + 1)
        if self.connected.is_set():
            info = self.client.publish(
                self.topics.status(self.device_id),
                self.status(DeviceState.OFFLINE).to_bytes(),
                qos=QOS_RELIABLE,
                retain=True,
            )
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.warning("offline status not acknowledged before shutdown")
        self.client.disconnect()
        self.client.loop_stop()

    def wake(self) -> None:
        with self._wake:
            self._woken = True
            self._wake.notify_all()

    # ----------------------------------------------------------------------------------- callbacks
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused connection: %s", reason_code)
            return
        self.connects += 1
        log.info("connected to %s (session present: %s)", self.config.mqtt.url, flags.session_present)
        client.publish(
            self.topics.status(self.device_id),
            self.status(DeviceState.ONLINE).to_bytes(),
            qos=QOS_RELIABLE,
            retain=True,
        )
        client.subscribe(self.topics.device(self.device_id, TopicKind.SIGNAL) + "/#", qos=QOS_RELIABLE)
        if self.hub_ack:
            client.subscribe(self.topics.acks(self.device_id), qos=QOS_RELIABLE)
            if not flags.session_present:
                # The broker has no session of ours: it may have lost what it PUBACK'd, too.
                with self._mid_lock:
                    self._session_lost = True
        for topic_filter, _handler in self.extra_subscriptions:
            client.subscribe(topic_filter, qos=QOS_RELIABLE)
        for listener in self.connect_listeners:
            listener()
        self.connected.set()
        self.wake()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._closing.is_set():
            log.info("disconnected from broker")
        elif self.connected.is_set():
            log.warning("disconnected from broker: %s; paho reconnects with backoff", reason_code)
        self.connected.clear()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        # Runs inside paho's message lock: only note the id; the drain thread does the outbox work.
        with self._mid_lock:
            self._acked_mids[mid] = time.monotonic()
        self.wake()

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        for topic_filter, handler in self.extra_subscriptions:
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                try:
                    handler(message.topic, message.payload)
                except Exception:  # a bad message must not kill paho's network thread
                    log.exception("handler for %s failed on a message", message.topic)
                return
        try:
            parsed = self.topics.parse(message.topic)
        except TopicError:
            log.warning("ignoring message on unexpected topic %s", message.topic)
            return
        if parsed.kind is TopicKind.ACKS and parsed.device_id == self.device_id:
            try:
                ack = decode(AckPayload, message.payload, topic_device_id=self.device_id)
            except PayloadError as exc:
                log.warning("ignoring malformed ack: %s", exc.reason)
                return
            with self._mid_lock:
                self._acks.append(ack)
            self.wake()
            return
        if parsed.kind is not TopicKind.SIGNAL or parsed.arg is None:
            return
        state = parse_signal(message.payload)
        if state is None:
            log.warning("ignoring malformed signal on %s: %r", message.topic, message.payload[:64])
            return
        for handler in self.signal_handlers:
            handler(parsed.arg, state)

    # ---------------------------------------------------------------------------------------- drain
    def _drain(self) -> None:
        supervise("outbox-drain", self._drain_loop, self._closing, self.restarts)

    def _drain_loop(self) -> None:
        window = self.config.mqtt.max_inflight
        closing_deadline: float | None = None
        while True:
            with self._wake:
                if not self._woken:
                    self._wake.wait(0.5)
                self._woken = False
            self._reap()
            self._apply_acks()
            self._requeue()
            if self._closing.is_set():
                # Shutting down: keep draining for a short grace period while connected (the events
                # of the last frames), then leave the rest on disk for the next start.
                closing_deadline = closing_deadline or time.monotonic() + self.close_grace_s
                idle = self.idle()
                if idle or not self.connected.is_set() or time.monotonic() > closing_deadline:
                    return
            if not self.connected.is_set() or len(self._inflight) >= window:
                continue
            self._publish_rows(window - len(self._inflight))

    def _publish_rows(self, room: int) -> None:
        held = set(self._inflight.values())
        for row in self.outbox.pending(0, room + len(held)):
            if row.id in held:
                continue
            info = self.client.publish(row.topic, row.payload, qos=row.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # Not queued by paho (e.g. its queue is full): the row stays for the next round.
                log.warning("publish of outbox row %d not queued: %s", row.id, mqtt.error_string(info.rc))
                return
            # NO_CONN (the socket died under us): paho still holds the message and sends it after the
            # reconnect, and its PUBACK reaches on_publish like any other.
            self._inflight[info.mid] = row.id

    def _take_acked(self) -> list[int]:
        """Row ids whose PUBACK arrived, in publish order; forgets unclaimed old message ids."""
        now = time.monotonic()
        done: list[int] = []
        with self._mid_lock:
            for mid in [m for m in self._inflight if m in self._acked_mids]:
                del self._acked_mids[mid]
                done.append(self._inflight.pop(mid))
            for mid, at in list(self._acked_mids.items()):
                if now - at > STALE_MID_S:
                    del self._acked_mids[mid]
        return done

    def _reap(self) -> None:
        done = self._take_acked()
        if not done:
            return
        if self.hub_ack:
            self.outbox.mark_sent(done)  # events now wait for the hub's word; snapshots are done
        else:
            self.outbox.delete_many(done)
        self.published += len(done)
        self.wake()  # room in the window: look for more rows right away

    def _apply_acks(self) -> None:
        with self._mid_lock:
            acks, self._acks = self._acks, []
        for ack in acks:
            self.confirmed += self.outbox.confirm(ack.stored)
            rejected = self.outbox.confirm(ack.rejected)
            if rejected:
                self.rejected += rejected
                self.outbox.bump("events_rejected", rejected)
                log.warning("the hub rejected %d event(s) for good (seqs %s); see its dead letters",
                            rejected, ack.rejected[:5])

    def _requeue(self) -> None:
        """Publish again what the hub has not confirmed in time, or all of it after a lost session."""
        if not self.hub_ack:
            return
        with self._mid_lock:
            lost, self._session_lost = self._session_lost, False
        now = time.monotonic()
        if lost:
            count = self.outbox.requeue_sent()
            if count:
                log.warning("broker had no session of ours: publishing %d unconfirmed event(s) again", count)
        elif now >= self._next_requeue:
            self._next_requeue = now + 1.0
            cfg = self.config.outbox
            count = self.outbox.requeue_expired(cfg.ack_timeout_s, cfg.ack_timeout_max_s)
            if count:
                log.info("no hub acknowledgement in time: publishing %d event(s) again", count)
        else:
            return
        if count:
            self.resent += count
            self.wake()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    # ------------------------------------------------------------------------------------ telemetry
    def publish_telemetry(self, topic: str, payload: bytes) -> bool:
        """Best effort (QoS 0): skipped while offline instead of queueing stale numbers."""
        if not self.connected.is_set():
            return False
        return self.client.publish(topic, payload, qos=QOS_TELEMETRY).rc == mqtt.MQTT_ERR_SUCCESS

    def wait_idle(self, timeout: float) -> bool:
        """Wait until everything is published and PUBACK'd (tests, graceful stop); events may still
        wait for the hub's acknowledgement (``wait_confirmed``)."""
        deadline = time.monotonic() + timeout
        while True:  # checks at least once, so wait_idle(0) answers "idle now?"
            if self.idle():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def idle(self) -> bool:
        return not self._inflight and self.outbox.unsent() == 0

    def wait_confirmed(self, timeout: float) -> bool:
        """Wait until the hub has confirmed every event (the outbox is empty)."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._inflight and self.outbox.depth() == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
