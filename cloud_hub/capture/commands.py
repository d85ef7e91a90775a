"""``cloud-hub capture``: start a capture on one device, list captures, show one (JSON)."""

from __future__ import annotations

import getpass
import json

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.capture import service
from cloud_hub.models import User


def _session() -> Session:
    from cloud_hub import db as hub_db

    hub_db.upgrade(current_app.config["HUB_SETTINGS"].database_url or "")
    return Session(current_app.extensions["edgesight.engine"], expire_on_commit=False)


def _who(db: Session, by_user: str | None) -> str:
    """The name a capture is logged under: an admin user of the hub, or the OS user of this shell."""
    if by_user is None:
        return f"cli:{getpass.getuser()}"
    user = db.scalar(select(User).where(User.username == by_user))
    if user is None or user.role != "admin":
        raise click.ClickException(f"{by_user!r} is not an admin user: only admins start or cancel captures")
    return by_user


capture_group = AppGroup("capture", help="Site capture: ask a device for N frames (admins only).")


@capture_group.command("start", help="Ask DEVICE for --count frames, one every --interval seconds.")
@click.argument("device")
@click.option("--count", required=True, type=click.IntRange(1, 2000))
@click.option("--interval", "interval_s", required=True, type=click.FloatRange(0.05, 3600.0), help="seconds")
@click.option("--max-bytes", default=256 * 1024, show_default=True, type=click.IntRange(4096, 1024 * 1024),
              help="per JPEG (the agent lowers the quality, then the size, to fit)")
@click.option("--max-width", default=1280, show_default=True, type=click.IntRange(64, 4096))
@click.option("--mode", type=click.Choice(["uniform", "motion"]), default="uniform", show_default=True,
              help="motion: per interval, the frame that changed most since the last one kept")
@click.option("--camera", default=None, help="camera name (default: the agent's first camera)")
@click.option("--timeout", "timeout_s", default=service.DEFAULT_TIMEOUT_S, show_default=True, type=float,
              help="seconds without progress (device offline) after which the capture times out")
@click.option("--by", "by_user", default=None,
              help="the hub admin user this is logged under (default: cli:<OS user>)")
def capture_start(device: str, count: int, interval_s: float, max_bytes: int, max_width: int, mode: str,
                  camera: str | None, timeout_s: float, by_user: str | None) -> None:
    with _session() as db:
        who = _who(db, by_user)
        try:
            row = service.start(db, current_app.config["HUB_SETTINGS"], device, requested_by=who, count=count,
                                interval_s=interval_s, max_bytes=max_bytes, max_width=max_width, mode=mode,
                                camera=camera, timeout_s=timeout_s)
        except service.CaptureError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{row.id}: {count} frames from {device}, one every {interval_s:g} s ({mode}), requested "
                   f"by {who}")


@capture_group.command("cancel", help="Stop a capture: the device stops and deletes its frames not yet sent.")
@click.argument("capture_id")
@click.option("--by", "by_user", default=None, help="the hub admin user this is logged under")
def capture_cancel(capture_id: str, by_user: str | None) -> None:
    with _session() as db:
        who = _who(db, by_user)
        try:
            row = service.cancel(db, current_app.config["HUB_SETTINGS"], capture_id, by=who)
        except service.CaptureError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{row.id}: cancelled by {who} at {row.frames_received}/{row.count} frames")


@capture_group.command("list", help="Captures, newest first: state and frames received / asked.")
@click.option("--device", default=None)
def capture_list(device: str | None) -> None:
    with _session() as db:
        for row in service.listing(db, device, 200):
            reason = f"  ({row.reason})" if row.reason else ""
            click.echo(f"{row.id}  {row.device_id:20} {row.state:10} {row.frames_received:>4}/{row.count:<4} "
                       f"by {row.requested_by}{reason}")


@capture_group.command("show", help="One capture and its frames, as JSON.")
@click.argument("capture_id")
def capture_show(capture_id: str) -> None:
    with _session() as db:
        found = service.detail(db, capture_id)
        if found is None:
            raise click.ClickException(f"no capture {capture_id!r}")
        click.echo(json.dumps(service.as_dict(*found), indent=2))


def init_app(app: Flask) -> None:
    app.cli.add_command(capture_group)
