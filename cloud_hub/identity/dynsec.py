"""Manage Mosquitto's dynamic security plugin over MQTT (``$CONTROL/dynamic-security/v1``).

The hub is the only writer: it creates a client and a per-device role when a device is provisioned,
changes the password on rotation and deletes both on revocation. Deleting or disabling a client makes
the broker drop that client's live connection at once — the reason this backend was chosen over
password/ACL files reloaded by SIGHUP, which leave an open connection alone (docs/security.md).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.topics import DEFAULT_DISCOVERY_PREFIX, Topics, validate_device_id

from .acl import AclRule, device_acls, device_role_name, service_roles
from .endpoint import BrokerEndpoint

REQUEST_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = REQUEST_TOPIC + "/response"


class DynsecError(RuntimeError):
    """The broker refused a command, or did not answer in time."""


class DynsecAdmin:
    """A synchronous request/response client for the plugin; use as a context manager."""

    def __init__(self, endpoint: BrokerEndpoint, username: str, password: str, *, timeout: float = 10.0):
        self.endpoint = endpoint
        self.timeout = timeout
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edgesight-admin-{uuid.uuid4().hex[:8]}"
        )
        self._client.username_pw_set(username, password)
        endpoint.configure(self._client)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._cond = threading.Condition()
        self._connect_rc: Any = None
        self._subscribed = False
        self._responses: dict[str, dict[str, Any]] = {}

    # -- connection ------------------------------------------------------------------------------------
    def __enter__(self) -> DynsecAdmin:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        try:
            self._client.connect(self.endpoint.host, self.endpoint.port, keepalive=30)
        except OSError as exc:  # refused, unreachable, or a TLS certificate that does not verify
            raise DynsecError(f"cannot reach the broker at {self.endpoint.url}: {exc}") from None
        self._client.loop_start()
        with self._cond:
            if not self._cond.wait_for(
                lambda: self._subscribed or self._connect_rc is not None and self._connect_rc.is_failure,
                self.timeout,
            ):
                self.close()
                raise DynsecError(f"no answer from the broker at {self.endpoint.url} in {self.timeout}s")
            if not self._subscribed:
                rc = self._connect_rc
                self.close()
                raise DynsecError(f"broker at {self.endpoint.url} refused the admin login: {rc}")

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, userdata: object, flags: object, rc: Any, props: object
    ) -> None:
        with self._cond:
            self._connect_rc = rc
            self._cond.notify_all()
        if not rc.is_failure:
            client.subscribe(RESPONSE_TOPIC, qos=1)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: object, mid: int, codes: list, props: object
    ) -> None:
        with self._cond:
            self._subscribed = all(not code.is_failure for code in codes)
            if not self._subscribed:
                self._connect_rc = codes[0]
            self._cond.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            responses = json.loads(msg.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._cond:
            for response in responses:
                if isinstance(response, dict) and "correlationData" in response:
                    self._responses[response["correlationData"]] = response
            self._cond.notify_all()

    # -- commands --------------------------------------------------------------------------------------
    def execute(self, commands: Iterable[dict[str, Any]], *, allow_errors: Iterable[str] = ()) -> list[dict]:
        """Send commands in one message, wait for every answer, raise on the first error not allowed."""
        batch = [dict(command, correlationData=uuid.uuid4().hex) for command in commands]
        info = self._client.publish(REQUEST_TOPIC, json.dumps({"commands": batch}), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DynsecError(f"could not send to the broker: {mqtt.error_string(info.rc)}")
        ids = [command["correlationData"] for command in batch]
        with self._cond:
            if not self._cond.wait_for(lambda: all(i in self._responses for i in ids), self.timeout):
                raise DynsecError(
                    f"the broker did not answer {[c['command'] for c in batch]} in {self.timeout}s "
                    "(is the dynamic security plugin loaded?)"
                )
            answers = [self._responses.pop(i) for i in ids]
        tolerated = set(allow_errors)
        for command, answer in zip(batch, answers, strict=True):
            error = answer.get("error")
            if error and error not in tolerated:
                raise DynsecError(
                    f"{command['command']} {command.get('username') or command.get('rolename')}: {error}"
                )
        return answers

    def create_device(self, topics: Topics, device_id: str, password: str) -> None:
        """A client whose username and client id are both the device id, holding only its own role.

        If the client cannot be created, the role made for it is removed again (nothing half-made stays).
        """
        validate_device_id(device_id)
        role = device_role_name(device_id)
        acls = [rule.to_dynsec() for rule in device_acls(topics, device_id)]
        self.execute(
            [
                {
                    "command": "createRole",
                    "rolename": role,
                    "acls": acls,
                    "textname": f"edgesight device {device_id}",
                }
            ]
        )
        try:
            self.execute(
                [
                    {
                        "command": "createClient",
                        "username": device_id,
                        "password": password,
                        "clientid": device_id,
                        "textname": f"edgesight device {device_id}",
                        "roles": [{"rolename": role}],
                    }
                ]
            )
        except DynsecError:
            self.execute([{"command": "deleteRole", "rolename": role}], allow_errors={"Role not found"})
            raise

    def ensure_acls(self, rolename: str, rules: Iterable[AclRule]) -> int:
        """Add the rules a role lacks (kept ones stay as they are); returns how many were added."""
        added = 0
        for rule in rules:
            answer = self.execute(
                [{"command": "addRoleACL", "rolename": rolename, **rule.to_dynsec()}],
                allow_errors={"ACL with this topic already exists"},
            )[0]
            added += 0 if answer.get("error") else 1
        return added

    def sync_acls(self, topics: Topics, device_ids: Iterable[str],
                  discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX) -> int:
        """Bring roles made by an older hub up to today's contract (e.g. the ``acks`` topic of issue 21:
        ingest may publish it, each device may read its own; the Home Assistant roles, made if missing).
        Idempotent."""
        added = 0
        for name, rules in service_roles(topics, discovery_prefix).items():
            self.execute([{"command": "createRole", "rolename": name}], allow_errors={"Role already exists"})
            added += self.ensure_acls(name, rules)
        for device_id in device_ids:
            added += self.ensure_acls(device_role_name(device_id), device_acls(topics, device_id))
        return added

    def create_service_client(self, username: str, password: str, rolename: str, text: str) -> None:
        """A login holding one of the service roles (e.g. Home Assistant's read-only ``homeassistant``)."""
        self.execute([{"command": "createClient", "username": username, "password": password,
                       "textname": text, "roles": [{"rolename": rolename}]}])

    def set_password(self, device_id: str, password: str) -> None:
        self.execute([{"command": "setClientPassword", "username": device_id, "password": password}])

    def delete_device(self, device_id: str) -> None:
        """Remove the client (dropping its connection) and its role; missing ones are fine (idempotent)."""
        self.execute(
            [
                {"command": "deleteClient", "username": device_id},
                {"command": "deleteRole", "rolename": device_role_name(device_id)},
            ],
            allow_errors={"Client not found", "Role not found"},
        )

    def get_client(self, username: str) -> dict[str, Any] | None:
        answer = self.execute(
            [{"command": "getClient", "username": username}], allow_errors={"Client not found"}
        )[0]
        return answer.get("data", {}).get("client") if not answer.get("error") else None

    def list_clients(self) -> list[str]:
        answer = self.execute([{"command": "listClients", "verbose": False, "count": -1}])[0]
        return list(answer.get("data", {}).get("clients", []))
