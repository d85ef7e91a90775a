"""compose.yaml and the Dockerfile: parsed and checked for the services and wiring the hub relies on."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def load_compose() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_compose_has_broker_database_web_and_ingest_with_healthchecks():
    compose = load_compose()
    services = compose["services"]
    assert {"mosquitto", "postgres", "migrate", "web", "ingest"} <= set(services)
    for name in ("mosquitto", "postgres", "web", "ingest"):
        assert services[name]["healthcheck"]["test"], name
    assert services["mosquitto"]["image"].startswith("eclipse-mosquitto:2")
    mounted = services["mosquitto"]["volumes"][0].split(":")
    assert (REPO / mounted[0]).resolve() == REPO / "deploy/mosquitto/mosquitto.conf"
    assert mounted[1] == "/mosquitto/config/mosquitto.conf"
    assert any(v.startswith("postgres-data:") for v in services["postgres"]["volumes"])
    assert "postgres-data" in compose["volumes"]


def test_compose_web_runs_gunicorn_and_ingest_shares_the_subscription():
    services = load_compose()["services"]
    assert services["web"]["command"][0] == "gunicorn"
    assert "cloud_hub.wsgi:app" in services["web"]["command"]
    assert services["ingest"]["command"][:2] == ["cloud-hub", "ingest"]
    command = services["ingest"]["command"]
    assert "--share" in command
    # A stable id, not the container's host name (which changes when the container is re-created).
    assert command[command.index("--client-id") + 1] == "edgesight-ingest-1"
    for name in ("web", "ingest", "migrate"):
        env = services[name]["environment"]
        assert env["EDGESIGHT_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert env["EDGESIGHT_MQTT_URL"] == "mqtt://mosquitto:1883"
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_mosquitto_config_does_not_drop_bursts():
    conf = (REPO / "deploy/mosquitto/mosquitto.conf").read_text().splitlines()
    settings = dict(line.split(None, 1) for line in conf if line and not line.startswith("#"))
    assert settings["max_queued_messages"] == "0"
    assert settings["persistence"] == "true"


def test_dockerfile_installs_the_hub_and_runs_as_a_user():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "pip install '.[hub]'" in dockerfile
    assert "\nUSER " in dockerfile
    for path in ("shared", "cloud_hub", "pyproject.toml"):
        assert path in dockerfile and (REPO / path).exists()
    # Every first-party package the hub imports (model_runtime validates models) is in the image.
    import ast

    first_party = {p.name for p in REPO.iterdir() if (p / "__init__.py").exists()} - {"tests", "benchmarks"}
    imported: set[str] = set()
    for module in (REPO / "cloud_hub").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
    for package in sorted(imported & first_party):
        assert f"COPY {package} ./{package}" in dockerfile, package


def test_example_settings_file_is_valid():
    from cloud_hub.config import load_settings

    settings = load_settings(environ={"EDGESIGHT_CONFIG": str(REPO / "deploy/hub/hub.example.yaml")})
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.retention_days == 90


def test_systemd_units_run_the_console_script():
    web = (REPO / "deploy/hub/cloud-hub-web.service").read_text()
    ingest = (REPO / "deploy/hub/cloud-hub-ingest@.service").read_text()
    assert "cloud_hub.wsgi:app" in web and "db upgrade" in web
    assert "cloud-hub ingest --worker %i --share hub --client-id edgesight-ingest-%H-%i" in ingest


def test_the_default_broker_is_not_anonymous_on_every_interface():
    """Before: compose published the anonymous broker as "1883:1883" (all interfaces)."""
    services = load_compose()["services"]
    conf = (REPO / services["mosquitto"]["volumes"][0].split(":")[0]).read_text()
    anonymous = any(line.split() == ["allow_anonymous", "true"] for line in conf.splitlines())
    for port in services["mosquitto"].get("ports", []):
        assert not anonymous or str(port).startswith("127.0.0.1:"), port


def test_compose_runs_home_assistant_discovery_only_when_its_profile_is_asked_for():
    services = load_compose()["services"]
    assert services["homeassistant"]["profiles"] == ["homeassistant"]  # `docker compose up` leaves it out
    assert services["homeassistant"]["command"] == ["cloud-hub", "homeassistant"]
    assert services["homeassistant"]["healthcheck"]["test"][-1] == "cloud_hub.mqtt_health"
    assert not [name for name, s in services.items() if "homeassistant" in " ".join(s.get("command") or [])
                and name != "homeassistant"]


def test_compose_runs_the_adapt_worker_only_in_its_profile_from_the_torch_image():
    services = load_compose()["services"]
    worker = services["adapt-worker"]
    assert worker["profiles"] == ["adapt"]  # `docker compose up` leaves it (and torch) out
    assert worker["command"] == ["cloud-hub", "adapt-worker"] and worker["build"]["target"] == "adapt"
    assert worker["environment"] == services["web"]["environment"]  # same database, broker, instance
    dockerfile = (REPO / "Dockerfile").read_text()
    stages = [line.split()[-1] for line in dockerfile.splitlines() if line.startswith("FROM ")]
    assert stages[-1] == "hub"  # a plain `docker build .` (compose's other services) stays torch-free
    adapt = dockerfile.split("AS adapt", 1)[1].split("FROM ", 1)[0]
    assert "'.[hub,train]'" in adapt and "COPY firmware_models ./firmware_models" in adapt
    assert "COPY synthetic_world ./synthetic_world" in adapt and "\nUSER edgesight" in adapt
