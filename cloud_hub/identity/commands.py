"""``cloud-hub devices …``, ``cloud-hub certs …`` and ``cloud-hub broker-auth init``.

``devices`` needs the app (database, settings); ``certs`` and ``broker-auth`` only write files, so they
work on a machine with nothing configured yet — the first steps of a deployment.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from cloud_hub import db as hub_db
from shared.topics import DEFAULT_DISCOVERY_PREFIX, Topics

from .bootstrap import ServiceCredentials, write_dynsec_config, write_env_file
from .certs import init_certs, issue_client_cert, load_or_create_ca
from .dynsec import DynsecError
from .endpoint import BrokerEndpoint
from .registry import DeviceRegistry, ProvisioningError
from .wiring import DEFAULT_DEVICE_CA, UNMANAGED_WARNING, broker_managed, device_link, open_registry


# ------------------------------------------------------------------------------------------------ certs
@click.group("certs", help="A local certificate authority for the broker's TLS listener.")
def certs_group() -> None:
    pass


@certs_group.command("init", help="Create a CA (kept if present) and a broker certificate in DIR.")
@click.option(
    "--out", "out", type=click.Path(path_type=Path), default=Path("deploy/certs"), show_default=True
)
@click.option(
    "--name",
    "names",
    multiple=True,
    help="host name or IP the devices dial (repeatable); localhost and 127.0.0.1 are always in",
)
def certs_init(out: Path, names: tuple[str, ...]) -> None:
    ca, created, server = init_certs(out, list(names))
    verb = "created" if created else "kept existing"
    click.echo(f"{verb} CA: {ca.paths.cert} (key {ca.paths.key}: keep it offline)")
    click.echo(f"broker certificate: {server.cert} (key {server.key})")
    click.echo(f"devices trust {ca.paths.cert}: copy it to each device ({DEFAULT_DEVICE_CA})")


@certs_group.command(
    "client", help="Issue an optional client certificate (CN = DEVICE_ID) from the CA in --ca-dir."
)
@click.argument("device_id")
@click.option("--ca-dir", type=click.Path(path_type=Path), default=Path("deploy/certs"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="default: <ca-dir>/clients")
def certs_client(device_id: str, ca_dir: Path, out: Path | None) -> None:
    if not (ca_dir / "ca.key").exists():
        raise click.ClickException(f"no CA in {ca_dir}: run `cloud-hub certs init --out {ca_dir}` first")
    ca, _ = load_or_create_ca(ca_dir)
    paths = issue_client_cert(ca, out or ca_dir / "clients", device_id)
    click.echo(f"client certificate: {paths.cert} (key {paths.key}) — set mqtt.tls.cert_file/key_file")


# ------------------------------------------------------------------------------------------ broker-auth
@click.group("broker-auth", help="Mosquitto dynamic-security bootstrap for the hub's own clients.")
def broker_auth_group() -> None:
    pass


@broker_auth_group.command(
    "init", help="Write the broker's first dynamic-security.json and the hub's credentials."
)
@click.option(
    "--dynsec-file",
    type=click.Path(path_type=Path),
    required=True,
    help="where Mosquitto reads it (plugin_opt_config_file)",
)
@click.option(
    "--env-file",
    type=click.Path(path_type=Path),
    required=True,
    help="KEY=value file with the hub's broker URLs (compose reads .env)",
)
@click.option(
    "--internal-url",
    default="mqtt://mosquitto:1883",
    show_default=True,
    help="the broker address from the hub's processes",
)
@click.option("--prefix", default=Topics().prefix, show_default=True)
@click.option("--homeassistant-prefix", default=DEFAULT_DISCOVERY_PREFIX, show_default=True,
              help="Home Assistant's discovery prefix (the homeassistant roles' ACLs)")
@click.option("--force", is_flag=True, help="replace existing files (every device must be added again)")
def broker_auth_init(dynsec_file: Path, env_file: Path, internal_url: str, prefix: str,
                     homeassistant_prefix: str, force: bool) -> None:
    creds = ServiceCredentials.generate()
    endpoint = BrokerEndpoint.from_url(internal_url)
    try:
        write_dynsec_config(dynsec_file, Topics(prefix), creds, force=force,
                            discovery_prefix=homeassistant_prefix)
        write_env_file(env_file, creds, endpoint, force=force)
    except FileExistsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"broker clients and roles: {dynsec_file} (readable by the broker user only)")
    click.echo(f"hub credentials: {env_file} (EDGESIGHT_MQTT_INGEST_URL, _CONTROL_URL, _ADMIN_URL, "
               "_HOMEASSISTANT_URL)")


@broker_auth_group.command(
    "sync-acls", help="Add the ACLs a broker set up by an older hub lacks (idempotent; needs the admin URL)."
)
@with_appcontext
def broker_auth_sync_acls() -> None:
    with _registry() as registry:
        if registry.broker is None:
            raise click.ClickException("no EDGESIGHT_MQTT_ADMIN_URL: this hub does not manage the broker")
        active = [c.device_id for c in registry.list() if not c.revoked_at]
        added = registry.broker.sync_acls(  # type: ignore[attr-defined]
            registry.topics, active, current_app.config["HUB_SETTINGS"].homeassistant_prefix)
    click.echo(f"{added} ACL(s) added for {len(active)} device(s) and the hub's roles")


@broker_auth_group.command(
    "homeassistant-login",
    help="Create Home Assistant's broker login (read-only role `homeassistant`), or with --publisher the "
         "hub publisher's login on a broker set up before it existed; prints the password once.")
@click.option("--username", default=None,
              help="default: homeassistant (--publisher: edgesight-homeassistant)")
@click.option("--publisher", is_flag=True, help="the login `cloud-hub homeassistant` uses (its own role)")
@with_appcontext
def broker_auth_homeassistant_login(username: str | None, publisher: bool) -> None:
    from .acl import HOMEASSISTANT_READER_ROLE, HOMEASSISTANT_ROLE
    from .bootstrap import HOMEASSISTANT_USER
    from .credentials import new_secret

    settings = current_app.config["HUB_SETTINGS"]
    role = HOMEASSISTANT_ROLE if publisher else HOMEASSISTANT_READER_ROLE
    username = username or (HOMEASSISTANT_USER if publisher else "homeassistant")
    password = new_secret()
    with _registry() as registry:
        if registry.broker is None:
            raise click.ClickException("no EDGESIGHT_MQTT_ADMIN_URL: this hub does not manage the broker")
        # The roles first (a broker made by an older hub lacks them); idempotent.
        active = [c.device_id for c in registry.list() if not c.revoked_at]
        registry.broker.sync_acls(registry.topics, active, settings.homeassistant_prefix)  # type: ignore[attr-defined]
        registry.broker.create_service_client(  # type: ignore[attr-defined]
            username, password, role, "edgesight hub: Home Assistant discovery" if publisher
            else "Home Assistant (read-only)")
    click.echo(f"MQTT login for {'cloud-hub homeassistant' if publisher else 'Home Assistant'}: "
               f"username {username}  password {password}")
    click.echo("(shown once)")


# -------------------------------------------------------------------------------------------- devices
@click.group("devices", help="Provision device credentials (add, rotate, revoke, list).")
def devices_group() -> None:
    pass


@contextlib.contextmanager
def _registry() -> Iterator[DeviceRegistry]:
    settings = current_app.config["HUB_SETTINGS"]
    hub_db.upgrade(settings.database_url or "")  # idempotent, like `serve` and `ingest`
    if not broker_managed(settings):
        click.echo(f"warning: {UNMANAGED_WARNING}", err=True)
    try:
        with open_registry(settings, current_app.extensions["edgesight.engine"]) as registry:
            yield registry
    except (ProvisioningError, DynsecError, ValueError) as exc:  # from the login or the action itself
        raise click.ClickException(str(exc)) from None


@devices_group.command("add", help="Create NAME with a random secret; prints its agent config once.")
@click.argument("name")
@click.option("--group", default=None, help="rollout group, e.g. canary")
@click.option("--tag", "tags", multiple=True, help="free-form label (repeatable)")
@with_appcontext
def devices_add(name: str, group: str | None, tags: tuple[str, ...]) -> None:
    with _registry() as registry:
        issued = registry.add(name, group, tags)
    click.echo(f"device {issued.device_id} created; its secret is shown once, below.", err=True)
    sys.stdout.write(issued.snippet)


@devices_group.command("rotate", help="Give NAME a new secret (the old one and its session end now).")
@click.argument("name")
@with_appcontext
def devices_rotate(name: str) -> None:
    with _registry() as registry:
        issued = registry.rotate(name)
    click.echo(f"device {issued.device_id}: new secret, shown once, below.", err=True)
    sys.stdout.write(issued.snippet)


@devices_group.command("revoke", help="Revoke NAME: the broker refuses it and drops its connection.")
@click.argument("name")
@with_appcontext
def devices_revoke(name: str) -> None:
    with _registry() as registry:
        registry.revoke(name)
    click.echo(f"device {name} revoked")


@devices_group.command("list", help="Provisioned devices and their state.")
@with_appcontext
def devices_list() -> None:
    s = current_app.config["HUB_SETTINGS"]
    hub_db.upgrade(s.database_url or "")
    registry = DeviceRegistry(
        current_app.extensions["edgesight.engine"], None, Topics(s.mqtt_prefix), device_link(s)
    )
    for cred in registry.list():
        state = "revoked" if cred.revoked_at else "active"
        click.echo(f"{cred.device_id}\t{state}\tgroup={cred.group or '-'}\ttags={','.join(cred.tags) or '-'}")


COMMANDS = (certs_group, broker_auth_group, devices_group)


def register(cli: click.Group) -> None:
    for command in COMMANDS:
        cli.add_command(command)
