"""A broker set up before the end-to-end acknowledgement lacks the ``acks`` ACLs; ``sync_acls`` (behind
``cloud-hub broker-auth sync-acls``) adds exactly what is missing, on the real dynamic-security plugin."""

from __future__ import annotations

from cloud_hub.identity.acl import (
    INGEST_ROLE,
    PUBLISH_RECEIVE,
    PUBLISH_SEND,
    SUBSCRIBE_PATTERN,
    device_role_name,
)


def acls_of(admin, role: str) -> set[tuple[str, str]]:
    answer = admin.execute([{"command": "getRole", "rolename": role}])[0]
    return {(a["acltype"], a["topic"]) for a in answer["data"]["role"]["acls"]}


def test_sync_adds_the_acks_acls_an_older_broker_lacks(secure_broker, admin, devices):
    topics = secure_broker.topics
    acks = topics.acks("cam-a")
    old_device = [(SUBSCRIBE_PATTERN, acks), (PUBLISH_RECEIVE, acks)]
    old_ingest = [(PUBLISH_SEND, f"{topics.prefix}/devices/+/acks")]
    for role, rules in ((device_role_name("cam-a"), old_device), (INGEST_ROLE, old_ingest)):
        for acltype, topic in rules:
            remove = {"command": "removeRoleACL", "rolename": role, "acltype": acltype, "topic": topic}
            admin.execute([remove])
    assert not set(old_device) & acls_of(admin, device_role_name("cam-a"))
    assert not set(old_ingest) & acls_of(admin, INGEST_ROLE)

    assert admin.sync_acls(topics, ["cam-a", "cam-b"]) == 3
    assert set(old_device) <= acls_of(admin, device_role_name("cam-a"))
    assert set(old_ingest) <= acls_of(admin, INGEST_ROLE)
    assert admin.sync_acls(topics, ["cam-a", "cam-b"]) == 0  # idempotent


def test_sync_makes_the_home_assistant_roles_a_broker_from_before_them_lacks(secure_broker, admin):
    from cloud_hub.identity.acl import (
        HOMEASSISTANT_READER_ROLE,
        HOMEASSISTANT_ROLE,
        homeassistant_acls,
        homeassistant_reader_acls,
    )
    from shared.topics import HassTopics

    hass = HassTopics(secure_broker.topics.prefix)
    for role in (HOMEASSISTANT_ROLE, HOMEASSISTANT_READER_ROLE):
        admin.execute([{"command": "deleteRole", "rolename": role}])
    wanted = {HOMEASSISTANT_ROLE: homeassistant_acls(hass),
              HOMEASSISTANT_READER_ROLE: homeassistant_reader_acls(hass)}
    assert admin.sync_acls(secure_broker.topics, []) == sum(len(rules) for rules in wanted.values())
    for role, rules in wanted.items():
        assert acls_of(admin, role) == {(r.acltype, r.topic) for r in rules}
    assert admin.sync_acls(secure_broker.topics, []) == 0
