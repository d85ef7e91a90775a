"""``cloud-hub`` commands, registered on ``app.cli`` (flaskr style) and run by cloud_hub.cli:main."""

from __future__ import annotations

import logging
import signal
import sys
import threading

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub import auth, logs
from cloud_hub import db as hub_db
from cloud_hub.config import HubSettings
from cloud_hub.models import User

log = logging.getLogger("cloud_hub")


def settings() -> HubSettings:
    return current_app.config["HUB_SETTINGS"]


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (the one stop event of a foreground command)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


db_group = AppGroup("db", help="Database schema.")


@db_group.command("upgrade", help="Apply Alembic migrations up to the latest schema.")
@click.option("--revision", default="heads", show_default=True)
def db_upgrade(revision: str) -> None:
    url = settings().database_url or ""
    hub_db.upgrade(url, revision)
    click.echo(f"database at revision {revision}: {hub_db.make_engine(url).url.render_as_string()}")


@click.command("ingest", help="Subscribe to the fleet's topics and store what arrives (Ctrl-C stops).")
@click.option("--client-id", default=None, envvar="EDGESIGHT_INGEST_CLIENT_ID",
              help="stable MQTT client id (persistent session); required with --share")
@click.option("--worker", default=0, show_default=True, help="worker number, part of the default client id")
@click.option("--share", "share_group", default=None,
              help="shared-subscription group ($share/GROUP/...) to split load across workers")
@click.option("--session-expiry", "session_expiry_s", type=click.IntRange(1, 2**32 - 2), default=None,
              help="MQTT 5 session expiry in seconds [default: 300 with --share; without, never expires]")
@click.option("--metrics-port", type=int, default=None, help="serve Prometheus counters on this port")
@with_appcontext
def ingest(client_id: str | None, worker: int, share_group: str | None, session_expiry_s: int | None,
           metrics_port: int | None) -> None:
    from cloud_hub.ingest.records import TsWindow
    from cloud_hub.ingest.worker import IngestWorker, default_client_id

    if share_group and not client_id:
        # A derived id (the host name) changes when a container is re-created: the old session would
        # keep its share of the stream, queued for a client that never comes back.
        raise click.UsageError(
            "--share needs a stable --client-id (or EDGESIGHT_INGEST_CLIENT_ID), one per worker, "
            "the same across restarts", ctx=click.get_current_context())
    s = settings()
    logs.configure(s.log_format)
    hub_db.upgrade(s.database_url or "")
    engine = current_app.extensions["edgesight.engine"]
    worker_obj = IngestWorker(
        engine, s.mqtt_url, s.mqtt_prefix, client_id=client_id or default_client_id(worker),
        share_group=share_group, snapshot_dir=s.snapshot_dir, batch_size=s.ingest_batch_size,
        max_delay_s=s.ingest_max_delay_s, ca_file=s.mqtt_ca_file, session_expiry_s=session_expiry_s,
        ts_window=TsWindow(s.ingest_ts_past_s, s.ingest_ts_future_s),
        reconnect_min_s=s.mqtt_reconnect_min_s, reconnect_max_s=s.mqtt_reconnect_max_s,
    )
    if metrics_port:
        from cloud_hub.metrics import serve_ingest_metrics

        serve_ingest_metrics(worker_obj, metrics_port)
    worker_obj.start(wait_s=60)
    log.info("ingest running", extra={"mqtt": s.mqtt_url, "prefix": s.mqtt_prefix, "share": share_group})
    stop = threading.Event()
    if s.retention_days or s.snapshot_cap_mb:
        from cloud_hub.retention import Retention, RetentionThread

        policy = Retention(engine, s.snapshot_dir or "", s.retention_days, s.snapshot_cap_mb,
                           future_s=s.ingest_ts_future_s)
        RetentionThread(policy, stop).start()
    try:
        wait_for_signal()
    finally:
        stop.set()
        worker_obj.stop()
        log.info("ingest stopped", extra={"counters": worker_obj.snapshot()})


@click.command("serve", help="Run the web app (built-in server; production: gunicorn cloud_hub.wsgi:app).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True)
@with_appcontext
def serve(host: str, port: int) -> None:
    s = settings()
    logs.configure(s.log_format)
    hub_db.upgrade(s.database_url or "")
    log.info("web listening", extra={"url": f"http://{host}:{port}/"})
    # Not app.run(): Flask ignores it inside a `flask`-style CLI command (FLASK_RUN_FROM_CLI).
    from werkzeug.serving import run_simple

    run_simple(host, port, current_app._get_current_object(), threaded=True, use_reloader=False)


@click.command("broker", help="Run the embedded MQTT broker (amqtt) in the foreground.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=1883, show_default=True)
@with_appcontext
def broker(host: str, port: int) -> None:
    from cloud_hub.broker import EmbeddedBroker

    logs.configure(settings().log_format)
    embedded = EmbeddedBroker(host, port).start()
    click.echo(f"embedded MQTT broker on {embedded.url}")
    try:
        wait_for_signal()
    finally:
        embedded.stop()


users_group = AppGroup("users", help="Dashboard users (the first admin is made here, never by default).")


@users_group.command("add", help="Create a user; the password is prompted, or read from stdin.")
@click.argument("username")
@click.option("--role", type=click.Choice(auth.ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
def users_add(username: str, role: str, password_stdin: bool) -> None:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with Session(current_app.extensions["edgesight.engine"]) as db:
        try:
            user = auth.create_user(db, username, password, role)
        except auth.AuthError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"created {user.role} {user.username!r}")


@users_group.command("list", help="List users.")
def users_list() -> None:
    with Session(current_app.extensions["edgesight.engine"]) as db:
        for user in db.scalars(select(User).order_by(User.username)):
            state = "disabled" if user.disabled else "active"
            click.echo(f"{user.username}\t{user.role}\t{state}")


tokens_group = AppGroup("tokens", help="API tokens for scripts.")


@tokens_group.command("create", help="Create an API token for USERNAME and print it (shown once).")
@click.argument("username")
@click.option("--name", default="cli", show_default=True)
def tokens_create(username: str, name: str) -> None:
    with Session(current_app.extensions["edgesight.engine"]) as db:
        user = db.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        click.echo(auth.create_token(db, user, name).secret)


@click.command("retention", help="Delete events and snapshots older than the retention settings, now.")
@click.option("--days", type=float, default=None, help="override EDGESIGHT_RETENTION_DAYS")
@with_appcontext
def retention_command(days: float | None) -> None:
    from cloud_hub.retention import Retention

    s = settings()
    policy = Retention(current_app.extensions["edgesight.engine"], s.snapshot_dir or "",
                       days if days is not None else s.retention_days, s.snapshot_cap_mb,
                       future_s=s.ingest_ts_future_s)
    report = policy.run()
    click.echo(" ".join(f"{k}={v}" for k, v in report.items()))


def init_app(app: Flask) -> None:
    for command in (db_group, users_group, tokens_group, ingest, serve, broker, retention_command):
        app.cli.add_command(command)
