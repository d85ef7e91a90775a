"""MQTT topic layout (DESIGN.md, "Topics") — builders, subscription filters and one parser.

Every topic is ``{prefix}/devices/{device_id}/{kind}[/{arg}]``. The device id is also the MQTT username
and client id, so the broker's ACL and the hub's spoofing check both key on the same string.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_PREFIX = "edgesight/v1"

# QoS per topic kind: everything that must not be lost is QoS 1; telemetry is best effort.
QOS_RELIABLE = 1
QOS_TELEMETRY = 0

DEVICE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TopicKind(StrEnum):
    STATUS = "status"
    EVENTS = "events"
    SNAPSHOT = "snapshots"
    TELEMETRY = "telemetry"
    MODEL_OFFER = "model/offer"
    MODEL_CHUNK_REQUEST = "model/chunks/req"
    MODEL_CHUNK = "model/chunks"
    MODEL_STATE = "model/state"
    CONFIG = "config"
    SIGNAL = "signal"
    PREVIEW = "preview"
    CONFIG_STATE = "config/state"
    ACKS = "acks"  # hub -> device: which event seqs are stored (end-to-end acknowledgement, issue 21)
    # Site capture (issue 24, shared/capture.py)
    CAPTURE_REQUEST = "capture/req"  # hub -> device, retained
    CAPTURE_CHUNK = "capture/chunks"  # device -> hub, /<capture_id>
    CAPTURE_STATE = "capture/state"  # device -> hub
    CAPTURE_ACK = "capture/ack"  # hub's ingest -> device


# Direction of each kind: which side may publish it (the broker ACL is generated from this).
EDGE_TO_HUB = (
    TopicKind.STATUS,
    TopicKind.EVENTS,
    TopicKind.SNAPSHOT,
    TopicKind.TELEMETRY,
    TopicKind.MODEL_CHUNK_REQUEST,
    TopicKind.MODEL_STATE,
    TopicKind.PREVIEW,
    TopicKind.CONFIG_STATE,
    TopicKind.CAPTURE_CHUNK,
    TopicKind.CAPTURE_STATE,
)
HUB_TO_EDGE = (TopicKind.MODEL_OFFER, TopicKind.MODEL_CHUNK, TopicKind.CONFIG, TopicKind.SIGNAL,
               TopicKind.CAPTURE_REQUEST)
# Published by the hub's ingest workers (not its control service): a device reads them like HUB_TO_EDGE.
INGEST_TO_EDGE = (TopicKind.ACKS, TopicKind.CAPTURE_ACK)
# Kinds whose topic carries one more level (an event id, a chunk index, a signal name, a capture id).
WITH_ARG = (TopicKind.SNAPSHOT, TopicKind.MODEL_CHUNK, TopicKind.SIGNAL, TopicKind.CAPTURE_CHUNK)


class TopicError(ValueError):
    """A topic that is not part of the contract."""


def validate_device_id(device_id: str) -> str:
    if not DEVICE_ID_RE.match(device_id or ""):
        raise TopicError(
            f"invalid device id {device_id!r}: 1-64 chars of letters, digits, '_', '.', '-'"
        )
    return device_id


@dataclass(frozen=True)
class ParsedTopic:
    device_id: str
    kind: TopicKind
    arg: str | None = None


@dataclass(frozen=True)
class Topics:
    """Topic builder bound to one prefix."""

    prefix: str = DEFAULT_PREFIX

    def device(self, device_id: str, kind: TopicKind, arg: str | int | None = None) -> str:
        validate_device_id(device_id)
        base = f"{self.prefix}/devices/{device_id}/{kind.value}"
        return base if arg is None else f"{base}/{arg}"

    def status(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.STATUS)

    def events(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.EVENTS)

    def snapshot(self, device_id: str, event_id: str) -> str:
        return self.device(device_id, TopicKind.SNAPSHOT, event_id)

    def telemetry(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.TELEMETRY)

    def model_offer(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.MODEL_OFFER)

    def model_chunk_request(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.MODEL_CHUNK_REQUEST)

    def model_chunk(self, device_id: str, index: int) -> str:
        return self.device(device_id, TopicKind.MODEL_CHUNK, index)

    def model_state(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.MODEL_STATE)

    def config(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.CONFIG)

    def preview(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.PREVIEW)

    def config_state(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.CONFIG_STATE)

    def signal(self, device_id: str, name: str) -> str:
        return self.device(device_id, TopicKind.SIGNAL, name)

    def acks(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.ACKS)

    def capture_request(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.CAPTURE_REQUEST)

    def capture_chunk(self, device_id: str, capture_id: str) -> str:
        return self.device(device_id, TopicKind.CAPTURE_CHUNK, capture_id)

    def capture_state(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.CAPTURE_STATE)

    def capture_ack(self, device_id: str) -> str:
        return self.device(device_id, TopicKind.CAPTURE_ACK)

    def all_devices(self, kind: TopicKind) -> str:
        """Subscription filter for one kind across the fleet (``+`` for the device id)."""
        suffix = "/#" if kind in WITH_ARG else ""
        return f"{self.prefix}/devices/+/{kind.value}{suffix}"

    def shared(self, group: str, topic_filter: str) -> str:
        """MQTT 5 / Mosquitto shared subscription: N workers split one stream."""
        return f"$share/{group}/{topic_filter}"

    def parse(self, topic: str) -> ParsedTopic:
        head = f"{self.prefix}/devices/"
        if not topic.startswith(head):
            raise TopicError(f"topic {topic!r} is not under {head!r}")
        device_id, _, rest = topic[len(head) :].partition("/")
        validate_device_id(device_id)
        # Longest kinds first so "model/chunks/req" wins over "model/chunks".
        for kind in sorted(TopicKind, key=lambda k: -len(k.value)):
            if rest == kind.value:
                return ParsedTopic(device_id, kind)
            if rest.startswith(kind.value + "/") and kind in WITH_ARG:
                arg = rest[len(kind.value) + 1 :]
                if not arg or "/" in arg:
                    break
                return ParsedTopic(device_id, kind, arg)
        raise TopicError(f"unknown topic kind in {topic!r}")


# --------------------------------------------------------------------------------- Home Assistant
# The hub's optional Home Assistant publisher (cloud_hub.homeassistant) writes discovery configs under
# HA's discovery prefix and entity states under ``{prefix}/hass/``: a subtree of its own, so no device
# ACL ever matches it and Home Assistant's read-only login needs nothing under ``devices/``.
DEFAULT_DISCOVERY_PREFIX = "homeassistant"
HASS_SEGMENT = "hass"
HASS_ONLINE = "online"  # availability payloads: Home Assistant's defaults
HASS_OFFLINE = "offline"
_SLUG_RE = re.compile(r"[^a-z0-9_-]+")


def hass_slug(name: str, max_len: int = 40) -> str:
    """A name as one topic level and HA object id (``[a-zA-Z0-9_-]``, HA's rule for node and object ids).

    A name that had to change (case, spaces, ``/``, ``#``, ``+``, non-ASCII, length) gets a short hash
    of the original appended, so two different names never share a slug ("Door A" vs "door_a")."""
    slug = _SLUG_RE.sub("_", name.lower()).strip("_")[:max_len] or "x"
    if slug == name:
        return slug
    return f"{slug}-{hashlib.sha1(name.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class HassTopics:
    """Topics of the Home Assistant integration; ``node`` is a device's slug (``hass_slug``)."""

    prefix: str = DEFAULT_PREFIX
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX

    @property
    def root(self) -> str:
        return f"{self.prefix}/{HASS_SEGMENT}"

    def bridge(self) -> str:
        """The publisher's own availability (its MQTT last will says offline)."""
        return f"{self.root}/bridge"

    def availability(self, node: str) -> str:
        """A device's online state: ``online`` / ``offline`` (retained)."""
        return f"{self.root}/{node}/availability"

    def state(self, node: str, *parts: str) -> str:
        return "/".join((self.root, node, *parts))

    def all_states(self) -> str:
        return f"{self.root}/#"

    def discovery(self, component: str, node_id: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{node_id}/{object_id}/config"

    def discovery_filter(self) -> str:
        """Every discovery config (``<prefix>/<component>/<node_id>/<object_id>/config``)."""
        return f"{self.discovery_prefix}/+/+/+/config"

    def birth(self) -> str:
        """Home Assistant announces itself here (``online``) when it starts: send everything again."""
        return f"{self.discovery_prefix}/status"
