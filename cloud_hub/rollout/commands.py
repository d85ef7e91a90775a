"""``cloud-hub keys …``, ``cloud-hub models …`` and ``cloud-hub rollout …`` (registered on app.cli)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from cloud_hub.rollout import campaigns as c
from cloud_hub.rollout import registry
from cloud_hub.rollout.keys import KeyError_, init_keys, key_dir, load_signing_key
from cloud_hub.rollout.models import TEACHER
from cloud_hub.rollout.validate import ModelRejected

log = logging.getLogger("cloud_hub")


def _instance() -> Path:
    return Path(current_app.instance_path)


def _session() -> Session:
    from cloud_hub import db as hub_db

    settings = current_app.config["HUB_SETTINGS"]
    hub_db.upgrade(settings.database_url or "")
    return Session(current_app.extensions["edgesight.engine"], expire_on_commit=False)


def _key():
    try:
        return load_signing_key(key_dir(_instance()))
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from None


# ------------------------------------------------------------------------------------------ keys
@click.group("keys", cls=AppGroup, help="The hub's Ed25519 signing key pair.")
def keys_group() -> None:
    pass


@keys_group.command("init", help="Create the key pair; prints the public key agents need.")
@click.option("--force", is_flag=True, help="replace an existing pair (every agent needs the new public key)")
def keys_init(force: bool) -> None:
    try:
        old = load_signing_key(key_dir(_instance())) if force else None
    except KeyError_:
        old = None  # nothing to replace
    try:
        private, public = init_keys(key_dir(_instance()), force=force)
    except KeyError_ as exc:
        raise click.ClickException(str(exc)) from None
    if old is not None:  # campaigns check registry records against the hub key: carry them over
        with _session() as db:
            done, left = registry.resign(db, old.public_key(), load_signing_key(key_dir(_instance())))
        click.echo(f"re-signed {done} registry record(s) with the new key")
        if left:
            click.echo(f"warning: {len(left)} record(s) did not verify with the old key and stay unsigned "
                       f"by the new one (never offered): {', '.join(left)}", err=True)
    click.echo(f"private key: {private} (mode 0600, keep it on the hub)")
    click.echo(f"public key:  {public} — put it in each agent's config as updater.hub_public_key:")
    click.echo(public.read_text())


# ---------------------------------------------------------------------------------------- models
@click.group("models", cls=AppGroup, help="The model registry.")
def models_group() -> None:
    pass


@models_group.command(
    "add", help="Validate, store and sign a model: FILE (the .onnx beside its golden file) with --manifest, "
    "or a package folder with --teacher DIR (a hub-side labeller, never offered to devices)."
)
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--manifest", "manifest_path", type=click.Path(exists=True, path_type=Path))
@click.option("--teacher", "teacher_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="register the package folder DIR (manifest.json + model) as a teacher")
@click.option("--device-scope", "device_scope", default=None, metavar="DEVICE",
              help="this version may only ever be offered to DEVICE (a model adapted to its view)")
def models_add(file: Path | None, manifest_path: Path | None, teacher_dir: Path | None,
               device_scope: str | None) -> None:
    if teacher_dir is not None and (file is not None or manifest_path is not None):
        raise click.UsageError("--teacher DIR takes the whole package folder: no FILE, no --manifest")
    if teacher_dir is None and (file is None or manifest_path is None):
        raise click.UsageError("give FILE and --manifest (a student), or --teacher DIR")
    with _session() as db:
        try:
            if teacher_dir is not None:
                row, created = registry.register_package(db, teacher_dir, registry.blob_dir(_instance()),
                                                         _key(), TEACHER, device_scope=device_scope)
            else:
                assert file is not None and manifest_path is not None
                row, created = registry.register(db, file, manifest_path, registry.blob_dir(_instance()),
                                                 _key(), device_scope=device_scope)
        except ModelRejected as exc:
            raise click.ClickException(f"model rejected: {exc}") from None
        verb = "registered" if created else "already registered"
        click.echo(f"{verb} {row.ref}: bundle sha256 {row.sha256}, {row.size_bytes} bytes, signed, kind "
                   + (f"{row.kind} (never offered to devices)" if row.kind == TEACHER else row.kind)
                   + (f", scoped to {row.device_scope}" if row.device_scope else ""))


def _scope(row) -> str:
    return f"{row.device_scope} only" if row.device_scope else ("any device" if row.kind != TEACHER else "-")


@models_group.command("list", help="Registered models, oldest version first; the scope is the one device "
                      "a version may be offered to (a site-adapted model), else any device.")
@click.option("--name", default=None)
def models_list(name: str | None) -> None:
    with _session() as db:
        for row in registry.versions(db, name):
            click.echo(f"{row.ref:40} {row.kind:8} {_scope(row):20} {row.size_bytes:>9} B  "
                       f"{row.sha256[:16]}…")


@models_group.command("show", help="One registered model (NAME@VERSION, or NAME for the newest) as JSON, "
                      "with its device scope and whether its signed registry record verifies.")
@click.argument("ref")
def models_show(ref: str) -> None:
    from cloud_hub.rollout.views import model_summary

    with _session() as db:
        try:
            row = registry.find(db, ref)
        except LookupError as exc:
            raise click.ClickException(str(exc)) from None
        try:
            public_key = load_signing_key(key_dir(_instance())).public_key()
        except KeyError_:
            public_key = None
        click.echo(json.dumps(model_summary(row, public_key), indent=2))


# --------------------------------------------------------------------------------------- rollout
@click.group("rollout", cls=AppGroup, help="Rollout campaigns and the rollout service.")
def rollout_group() -> None:
    pass


@rollout_group.command("create", help="Start a campaign: canary first, then waves.")
@click.option("--model", "model_ref", required=True, help="NAME@VERSION")
@click.option("--target", required=True, help="group:G, tag:T, all, or device ids separated by commas")
@click.option("--canary", default=1, show_default=True, type=click.IntRange(min=0))
@click.option("--waves", default="10%,50%,100%", show_default=True)
@click.option("--max-failure", default="10%", show_default=True)
@click.option(
    "--max-concurrent",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="at most this many transfers at once",
)
@click.option("--chunk-size", default=32 * 1024, show_default=True, type=click.IntRange(1024, 256 * 1024))
@click.option("--shadow", is_flag=True, help="run the candidate beside the active model; promote on pass")
@click.option("--min-agreement", default=0.9, show_default=True, type=click.FloatRange(0, 1))
@click.option("--max-latency-ratio", default=1.5, show_default=True, type=click.FloatRange(min=0))
@click.option("--min-frames", default=20, show_default=True, type=click.IntRange(min=1))
def rollout_create(
    model_ref: str,
    target: str,
    canary: int,
    waves: str,
    max_failure: str,
    max_concurrent: int,
    chunk_size: int,
    shadow: bool,
    min_agreement: float,
    max_latency_ratio: float,
    min_frames: int,
) -> None:
    with _session() as db:
        try:
            model = registry.find(db, model_ref)
            campaign = c.create(
                db,
                _key(),
                model,
                target,
                canary=canary,
                waves=c.parse_percentages(waves),
                max_failure=c.parse_fraction(max_failure),
                max_concurrent=max_concurrent,
                chunk_size=chunk_size,
                shadow=shadow,
                shadow_thresholds={
                    "min_agreement": min_agreement,
                    "max_latency_ratio": max_latency_ratio,
                    "min_frames": min_frames,
                },
            )
        except (LookupError, c.CampaignError) as exc:
            raise click.ClickException(str(exc)) from None
        waves_plan = {}
        for row in c.devices_of(db, campaign.id):
            waves_plan.setdefault(row.wave, []).append(row.device_id)
        click.echo(f"campaign {campaign.id}: {model.ref} → {target} ({campaign.phase})")
        for wave, members in waves_plan.items():
            click.echo(f"  wave {wave}: {len(members)} device(s): {', '.join(members)}")
        _, never_seen = c.by_readiness(db, [d for m in waves_plan.values() for d in m])
        if never_seen:
            click.echo(f"warning: {len(never_seen)} target device(s) never connected to the hub: "
                       f"{', '.join(never_seen)} — the campaign waits for them (they get the offer when "
                       "they first connect)", err=True)


def _action(fn, campaign_id: str, *args) -> None:
    with _session() as db:
        try:
            campaign = fn(db, *args, campaign_id) if args else fn(db, campaign_id)
        except c.CampaignError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{campaign.id}: {campaign.state}{' — ' + campaign.reason if campaign.reason else ''}")


@rollout_group.command("pause")
@click.argument("campaign_id")
def rollout_pause(campaign_id: str) -> None:
    _action(c.pause, campaign_id)


@rollout_group.command("resume")
@click.argument("campaign_id")
def rollout_resume(campaign_id: str) -> None:
    _action(c.resume, campaign_id)


@rollout_group.command("abort")
@click.argument("campaign_id")
def rollout_abort(campaign_id: str) -> None:
    _action(c.abort, campaign_id)


@rollout_group.command("rollback", help="A signed rollback campaign to an earlier version for these devices.")
@click.argument("campaign_id")
@click.option("--to", "to_version", default=None, help="version (default: the newest older one)")
def rollout_rollback(campaign_id: str, to_version: str | None) -> None:
    with _session() as db:
        try:
            new = c.rollback(db, _key(), campaign_id, to_version)
        except c.CampaignError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"rollback campaign {new.id} for {campaign_id}")


@rollout_group.command("show", help="A campaign and its devices, as JSON.")
@click.argument("campaign_id")
def rollout_show(campaign_id: str) -> None:
    from cloud_hub.rollout.views import campaign_summary

    with _session() as db:
        try:
            click.echo(json.dumps(campaign_summary(db, c.get(db, campaign_id)), indent=2))
        except c.CampaignError as exc:
            raise click.ClickException(str(exc)) from None


@rollout_group.command("list")
def rollout_list() -> None:
    from cloud_hub.rollout.views import campaign_list

    with _session() as db:
        for item in campaign_list(db):
            click.echo(f"{item['id']}  {item['model']:30} {item['state']:10} {item['done']}/{item['total']}")


@rollout_group.command("serve", help="Run the rollout controller and chunk server (Ctrl-C stops).")
@click.option("--max-bytes-per-s", type=float, default=None, help="cap on chunk bytes sent per second")
@click.option(
    "--device-timeout",
    type=float,
    default=3600.0,
    show_default=True,
    help="seconds without a report after which an offered device counts as failed (TIMED_OUT)",
)
def rollout_serve(max_bytes_per_s: float | None, device_timeout: float) -> None:
    from cloud_hub import logs
    from cloud_hub.commands import wait_for_signal
    from cloud_hub.rollout.service import RolloutService

    settings = current_app.config["HUB_SETTINGS"]
    logs.configure(settings.log_format)
    _session().close()  # migrate
    service = RolloutService(
        current_app.extensions["edgesight.engine"],
        settings.mqtt_url,
        settings.mqtt_prefix,
        registry.blob_dir(_instance()),
        _key(),
        max_bytes_per_s=max_bytes_per_s,
        ca_file=settings.mqtt_ca_file,
        device_timeout_s=device_timeout,
    ).start()
    log.info("rollout service running", extra={"mqtt": settings.mqtt_url})
    try:
        wait_for_signal()
    finally:
        service.stop()


def init_app(app: Flask) -> None:
    for group in (keys_group, models_group, rollout_group):
        app.cli.add_command(group)
