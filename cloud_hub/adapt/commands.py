"""``cloud-hub adapt``: start, list, show and cancel adaptation jobs; ``cloud-hub adapt-worker`` runs them."""

from __future__ import annotations

import json
import logging
import threading

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from cloud_hub.adapt import service
from cloud_hub.capture.commands import _session, _who

log = logging.getLogger("cloud_hub")

adapt_group = AppGroup(
    "adapt", help="Site adaptation: fine-tune a device's model to its own view (admins only)."
)


def _f1_text(values: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in values.items()) or "-"


@adapt_group.command(
    "start",
    help="Adapt DEVICE's current model to its view: with the frames of --capture ID, "
    "or a new capture of --frames N, one every --interval S seconds.",
)
@click.argument("device")
@click.option("--capture", "capture_id", default=None, help="an existing capture of DEVICE")
@click.option(
    "--frames",
    type=click.IntRange(10, 2000),
    default=None,
    help=f"frames to capture [default: {service.DEFAULT_FRAMES}]",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(0.05, 3600.0),
    default=None,
    help=f"seconds between captured frames [default: {service.DEFAULT_INTERVAL_S:g}]",
)
@click.option("--teacher", default=None, help="NAME@VERSION of a registered teacher (default: the newest)")
@click.option(
    "--capture-timeout",
    "capture_timeout_s",
    type=float,
    default=service.capture_service.DEFAULT_TIMEOUT_S,
    show_default=True,
    help="seconds without progress (device offline) after which the capture and the job give up",
)
@click.option(
    "--by", "by_user", default=None, help="the hub admin user this is logged under (default: cli:<OS user>)"
)
def adapt_start(
    device: str,
    capture_id: str | None,
    frames: int | None,
    interval_s: float | None,
    teacher: str | None,
    capture_timeout_s: float,
    by_user: str | None,
) -> None:
    with _session() as db:
        who = _who(db, by_user)
        try:
            job = service.start(
                db,
                current_app.config["HUB_SETTINGS"],
                device,
                created_by=who,
                capture_id=capture_id,
                frames=frames,
                interval_s=interval_s,
                teacher=teacher,
                capture_timeout_s=capture_timeout_s,
            )
        except service.AdaptStartError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(
            f"{job.id}: adapting {job.base_ref} on {device} with teacher {job.teacher_ref}, frames from "
            f"capture {job.capture_id}; {job.state}; started by {who}"
        )


@adapt_group.command("cancel", help="Stop a job: its capture and its campaign stop too.")
@click.argument("job_id")
@click.option("--by", "by_user", default=None, help="the hub admin user this is logged under")
def adapt_cancel(job_id: str, by_user: str | None) -> None:
    with _session() as db:
        who = _who(db, by_user)
        try:
            job = service.cancel(db, current_app.config["HUB_SETTINGS"], job_id, by=who)
        except service.AdaptStartError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{job.id}: cancelled by {who}")


@adapt_group.command("list", help="Adaptation jobs, newest first: state, progress, outcome.")
@click.option("--device", default=None)
def adapt_list(device: str | None) -> None:
    with _session() as db:
        for job in service.listing(db, device, 200):
            tail = f"  ({job.reason})" if job.reason else f"  -> {job.result_ref}" if job.result_ref else ""
            click.echo(
                f"{job.id}  {job.device_id:20} {service.progress_bar(job, 10)}  by {job.created_by}{tail}"
            )


@adapt_group.command("show", help="One job: state, progress, reason, before/after F1; --json for all of it.")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="the whole job and its log as JSON")
def adapt_show(job_id: str, as_json: bool) -> None:
    with _session() as db:
        found = service.detail(db, job_id)
        if found is None:
            raise click.ClickException(f"no adaptation {job_id!r}")
        data = service.as_dict(db, *found)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    lines = [
        f"{data['id']}  device {data['device_id']}  by {data['created_by']}",
        f"  {data['progress_text']}",
        f"  base {data['base']}  teacher {data['teacher']}  capture {data['capture_id']}",
    ]
    if data["message"]:
        lines.append(f"  now: {data['message']}")
    if data["reason"]:
        lines.append(f"  reason: {data['reason']}")
    if data["frames_train"] is not None:
        lines.append(
            f"  frames: {data['frames_train']} train (earlier), {data['frames_judge']} judge (later)"
        )
    if data["before"] is not None or data["after"] is not None:
        lines.append(
            f"  F1 vs teacher on the judge frames: before {_f1_text(data['before_f1'])}; "
            f"after {_f1_text(data['after_f1'])}"
        )
    if data["model"]:
        lines.append(f"  model {data['model']}  campaign {data['campaign_id']}")
    lines += [f"  | {line['line']}" for line in data["log"][-15:]]
    click.echo("\n".join(lines))


@click.command(
    "adapt-worker", help="Run adaptation jobs one at a time (needs the `train` extra; Ctrl-C stops)."
)
@click.option(
    "--lease",
    "lease_s",
    default=60.0,
    show_default=True,
    type=click.FloatRange(2, 3600),
    help="seconds a claimed job stays ours without a heartbeat; a killed worker's job is taken up "
    "again after this",
)
@click.option("--poll", "poll_s", default=2.0, show_default=True, type=click.FloatRange(0.1, 60))
@click.option(
    "--shadow-min-frames",
    type=click.IntRange(1),
    default=None,
    help="sampled frames the shadow phase needs before the gate is read [default: 50]",
)
@click.option(
    "--shadow-timeout",
    "shadow_timeout_s",
    default=3600.0,
    show_default=True,
    type=float,
    help="seconds a device may stay silent during shadow and promotion before the job fails",
)
@click.option("--steps", type=click.IntRange(1), default=None, help="training steps (default: adapt()'s own)")
@click.option(
    "--min-gain",
    type=click.FloatRange(-1, 1),
    default=None,
    help="macro F1 (vs the teacher, later frames) the adapted model must gain to be registered "
    "[default: adapt()'s, 0: any gain]",
)
@click.option("--smoke", is_flag=True, help="a tiny training run (tests, a first look); not for real use")
@with_appcontext
def adapt_worker(
    lease_s: float,
    poll_s: float,
    shadow_min_frames: int | None,
    shadow_timeout_s: float,
    steps: int | None,
    min_gain: float | None,
    smoke: bool,
) -> None:
    from cloud_hub import db as hub_db
    from cloud_hub import logs
    from cloud_hub.adapt.gate import ADAPT_GATE
    from cloud_hub.adapt.worker import AdaptWorker, WorkerOptions
    from cloud_hub.commands import wait_for_signal

    settings = current_app.config["HUB_SETTINGS"]
    logs.configure(settings.log_format)
    hub_db.upgrade(settings.database_url or "")
    gate = dict(ADAPT_GATE)
    if shadow_min_frames is not None:
        gate["min_frames"] = shadow_min_frames
    worker = AdaptWorker(
        current_app.extensions["edgesight.engine"],
        current_app.instance_path,
        settings.snapshot_dir or "",
        WorkerOptions(
            lease_s=lease_s,
            poll_s=poll_s,
            gate=gate,
            shadow_timeout_s=shadow_timeout_s,
            smoke=smoke,
            steps=steps,
            min_gain=min_gain,
        ),
    )
    thread = threading.Thread(target=worker.run, name="adapt-worker", daemon=True)
    thread.start()
    log.info("adapt-worker running", extra={"worker": worker.id, "lease_s": lease_s, "smoke": smoke})
    try:
        wait_for_signal()
    finally:
        worker.stop_event.set()
        thread.join(60)  # adapt() stops at its next progress report; the lease is released
        log.info("adapt-worker stopped", extra={"worker": worker.id})


def init_app(app: Flask) -> None:
    app.cli.add_command(adapt_group)
    app.cli.add_command(adapt_worker)
