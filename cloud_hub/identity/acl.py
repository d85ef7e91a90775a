"""Broker access rules generated from the wire contract (shared.topics), never copied by hand.

``EDGE_TO_HUB`` and ``HUB_TO_EDGE`` in shared.topics decide who may publish each topic kind; this module
turns them into Mosquitto dynamic-security ACL entries for three kinds of principal:

* a device ``d``: publish ``{p}/devices/d/<edge→hub kind>``, subscribe/receive ``{p}/devices/d/<hub→edge>``;
* the hub's ingest/control services: read every device's edge → hub topics (also through
  ``$share/<group>/…``); ingest publishes the ``acks`` of ``INGEST_TO_EDGE``, control every device's
  hub → edge topics;
* the dynsec admin: only the plugin's ``$CONTROL`` topics;
* the hub's Home Assistant publisher: HA discovery configs and ``{p}/hass/…`` states, nothing of devices;
* Home Assistant itself (read-only): discovery configs and ``{p}/hass/…``, plus its own birth message.

Everything else is denied by the default access in the broker's initial config (see bootstrap.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.topics import (
    DEFAULT_DISCOVERY_PREFIX,
    EDGE_TO_HUB,
    HUB_TO_EDGE,
    INGEST_TO_EDGE,
    HassTopics,
    TopicKind,
    Topics,
    validate_device_id,
)

PUBLISH_SEND = "publishClientSend"
PUBLISH_RECEIVE = "publishClientReceive"
SUBSCRIBE_PATTERN = "subscribePattern"

DYNSEC_TOPIC = "$CONTROL/dynamic-security/#"

ADMIN_ROLE = "edgesight-admin"
INGEST_ROLE = "edgesight-ingest"
CONTROL_ROLE = "edgesight-control"
HOMEASSISTANT_ROLE = "edgesight-homeassistant"  # the hub's publisher (cloud-hub homeassistant)
HOMEASSISTANT_READER_ROLE = "homeassistant"  # Home Assistant's own login: reads, never writes a device


@dataclass(frozen=True)
class AclRule:
    """One dynamic-security ACL entry (allow unless said otherwise)."""

    acltype: str
    topic: str
    allow: bool = True

    def to_dynsec(self) -> dict[str, object]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow}


def device_role_name(device_id: str) -> str:
    return f"edgesight-device:{validate_device_id(device_id)}"


def read_filter(topics: Topics, device: str, kind: TopicKind) -> str:
    """What may be subscribed to / received: the contract's own filter (``Topics.all_devices``) for one
    device (``+`` = any). Kinds with a trailing argument end in ``/#`` there, so subscribers may use
    ``…/signal/#`` or ``…/model/chunks/+`` alike — both are what edge and hub code actually subscribe with.
    """
    fleet = topics.all_devices(kind)
    head = f"{topics.prefix}/devices/+/"
    assert fleet.startswith(head), fleet
    return f"{topics.prefix}/devices/{device}/{fleet[len(head):]}"


def write_filter(topics: Topics, device: str, kind: TopicKind) -> str:
    """What may be published: one topic level per argument (an argument never contains ``/``; the hub's
    parser rejects deeper topics anyway, the broker need not carry them)."""
    topic = read_filter(topics, device, kind)
    return topic[:-2] + "/+" if topic.endswith("/#") else topic


def device_acls(topics: Topics, device_id: str) -> list[AclRule]:
    validate_device_id(device_id)
    rules = [AclRule(PUBLISH_SEND, write_filter(topics, device_id, kind)) for kind in EDGE_TO_HUB]
    for kind in HUB_TO_EDGE + INGEST_TO_EDGE:
        topic = read_filter(topics, device_id, kind)
        rules += [AclRule(SUBSCRIBE_PATTERN, topic), AclRule(PUBLISH_RECEIVE, topic)]
    return rules


def _read_edge_to_hub(topics: Topics) -> list[AclRule]:
    rules: list[AclRule] = []
    for kind in EDGE_TO_HUB:
        topic = read_filter(topics, "+", kind)
        rules += [
            AclRule(SUBSCRIBE_PATTERN, topic),
            # N ingest workers split one stream through a shared subscription; any group name.
            # (Mosquitto 2.0.11 checks the whole "$share/<group>/<filter>" string against the ACL.)
            AclRule(SUBSCRIBE_PATTERN, topics.shared("+", topic)),
            AclRule(PUBLISH_RECEIVE, topic),
        ]
    return rules


def ingest_acls(topics: Topics) -> list[AclRule]:
    """Ingest reads what devices send, and tells each device what it stored (``acks``)."""
    send = [AclRule(PUBLISH_SEND, write_filter(topics, "+", kind)) for kind in INGEST_TO_EDGE]
    return send + _read_edge_to_hub(topics)


def control_acls(topics: Topics) -> list[AclRule]:
    """Control (rollouts, remote config) publishes hub → edge topics and reads chunk requests/states."""
    send = [AclRule(PUBLISH_SEND, write_filter(topics, "+", kind)) for kind in HUB_TO_EDGE]
    return send + _read_edge_to_hub(topics)


def admin_acls() -> list[AclRule]:
    """The dynsec admin manages clients and roles; it cannot read or write a single device topic."""
    return [
        AclRule(PUBLISH_SEND, DYNSEC_TOPIC),
        AclRule(SUBSCRIBE_PATTERN, DYNSEC_TOPIC),
        AclRule(PUBLISH_RECEIVE, DYNSEC_TOPIC),
    ]


def homeassistant_acls(hass: HassTopics) -> list[AclRule]:
    """The publisher sends configs and states (retained), reads its configs back (removals across restarts)
    and hears HA's birth message. It reads nothing a device sends: its input is the database."""
    configs = hass.discovery_filter()
    return [
        AclRule(PUBLISH_SEND, configs),
        AclRule(PUBLISH_SEND, hass.all_states()),
        AclRule(SUBSCRIBE_PATTERN, configs),
        AclRule(PUBLISH_RECEIVE, configs),
        AclRule(SUBSCRIBE_PATTERN, hass.birth()),
        AclRule(PUBLISH_RECEIVE, hass.birth()),
    ]


def homeassistant_reader_acls(hass: HassTopics) -> list[AclRule]:
    """Home Assistant subscribes to ``<discovery prefix>/#`` and the states the configs name, and publishes
    only its birth and last will (``<discovery prefix>/status``)."""
    everything = f"{hass.discovery_prefix}/#"
    return [
        AclRule(SUBSCRIBE_PATTERN, everything),
        AclRule(PUBLISH_RECEIVE, everything),
        AclRule(SUBSCRIBE_PATTERN, hass.all_states()),
        AclRule(PUBLISH_RECEIVE, hass.all_states()),
        AclRule(PUBLISH_SEND, hass.birth()),
    ]


def service_roles(topics: Topics, discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX,
                  ) -> dict[str, list[AclRule]]:
    hass = HassTopics(topics.prefix, discovery_prefix)
    return {ADMIN_ROLE: admin_acls(), INGEST_ROLE: ingest_acls(topics), CONTROL_ROLE: control_acls(topics),
            HOMEASSISTANT_ROLE: homeassistant_acls(hass),
            HOMEASSISTANT_READER_ROLE: homeassistant_reader_acls(hass)}
