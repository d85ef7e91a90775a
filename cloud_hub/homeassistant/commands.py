"""``cloud-hub homeassistant``: the Home Assistant publisher in the foreground (Ctrl-C stops)."""

from __future__ import annotations

import logging

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from cloud_hub import db as hub_db
from cloud_hub import logs
from cloud_hub.commands import settings, wait_for_signal
from shared.topics import HassTopics

log = logging.getLogger("cloud_hub")


@click.command("homeassistant", help="Publish devices, zones, lines and snapshots to Home Assistant by MQTT "
               "discovery (off unless this runs; see docs/hub/README.md).")
@click.option("--client-id", default="edgesight-homeassistant", show_default=True)
@with_appcontext
def homeassistant(client_id: str) -> None:
    from cloud_hub.homeassistant.publisher import HomeAssistantPublisher

    s = settings()
    logs.configure(s.log_format)
    hub_db.upgrade(s.database_url or "")
    topics = HassTopics(s.mqtt_prefix, s.homeassistant_prefix)
    publisher = HomeAssistantPublisher(
        current_app.extensions["edgesight.engine"], s.mqtt_url, topics, s.snapshot_dir or "",
        interval_s=s.homeassistant_interval_s, client_id=client_id, ca_file=s.mqtt_ca_file,
    ).start()
    log.info("homeassistant publisher running",
             extra={"mqtt": s.mqtt_url, "discovery_prefix": topics.discovery_prefix, "states": topics.root})
    try:
        wait_for_signal()
    finally:
        publisher.stop()
        log.info("homeassistant publisher stopped",
                 extra={"polls": publisher.polls, "errors": publisher.errors})


def init_app(app: Flask) -> None:
    app.cli.add_command(homeassistant)
