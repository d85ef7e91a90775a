"""Settings precedence and errors (pure logic)."""

from __future__ import annotations

import pytest

from cloud_hub.config import ConfigError, load_settings, normalise_database_url, parse_mqtt_url


def test_defaults_environment_and_fallback():
    assert load_settings(environ={}).mqtt_url == "mqtt://127.0.0.1:1883"
    assert load_settings(environ={}).mqtt_prefix == "edgesight/v1"
    assert load_settings(environ={"DATABASE_URL": "sqlite:///a.db"}).database_url == "sqlite:///a.db"
    both = {"DATABASE_URL": "sqlite:///a.db", "EDGESIGHT_DATABASE_URL": "sqlite:///b.db"}
    assert load_settings(environ=both).database_url == "sqlite:///b.db"
    overridden = load_settings({"mqtt_prefix": "x/y"}, environ={"EDGESIGHT_MQTT_PREFIX": "a/b"})
    assert overridden.mqtt_prefix == "x/y"


def test_config_file_is_overridden_by_environment(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text("mqtt_url: mqtt://broker:1884\nretention_days: 30\n")
    env = {"EDGESIGHT_CONFIG": str(path), "EDGESIGHT_RETENTION_DAYS": "7"}
    settings = load_settings(environ=env)
    assert settings.mqtt_url == "mqtt://broker:1884"
    assert settings.retention_days == 7


def test_errors_name_the_source_and_the_field(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text("mqtt_urll: mqtt://x\n")
    with pytest.raises(ConfigError, match=r"hub.yaml: mqtt_urll: Extra inputs are not permitted"):
        load_settings(environ={"EDGESIGHT_CONFIG": str(path)})
    with pytest.raises(ConfigError, match=r"environment EDGESIGHT_RETENTION_DAYS: retention_days"):
        load_settings(environ={"EDGESIGHT_RETENTION_DAYS": "-1"})
    path.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_settings(environ={"EDGESIGHT_CONFIG": str(path)})


def test_urls():
    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"
    address = parse_mqtt_url("mqtts://hub:secret@broker.example")
    assert (address.host, address.port, address.tls) == ("broker.example", 8883, True)
    assert (address.username, address.password) == ("hub", "secret")
    with pytest.raises(ConfigError, match="scheme"):
        parse_mqtt_url("http://broker")


def test_reconnect_bounds_are_validated():
    """Before: a zero or inverted reconnect delay validated."""
    with pytest.raises(ConfigError, match=r"EDGESIGHT_MQTT_RECONNECT_MIN_S: mqtt_reconnect_min_s: .*"
                                          r"greater than or equal to 1"):
        load_settings(environ={"EDGESIGHT_MQTT_RECONNECT_MIN_S": "0.4"})
    inverted = {"EDGESIGHT_MQTT_RECONNECT_MIN_S": "20", "EDGESIGHT_MQTT_RECONNECT_MAX_S": "5"}
    with pytest.raises(ConfigError, match=r"min_s \(20\) must not exceed mqtt_reconnect_max_s"):
        load_settings(environ=inverted)
    ok = load_settings(environ={"EDGESIGHT_MQTT_RECONNECT_MIN_S": "2",
                                "EDGESIGHT_MQTT_RECONNECT_MAX_S": "30"})
    assert (ok.mqtt_reconnect_min_s, ok.mqtt_reconnect_max_s) == (2, 30)


@pytest.mark.parametrize("command", [["db", "upgrade"], ["ingest"], ["serve"]])
def test_a_config_error_is_one_line_naming_field_and_source_exit_2(tmp_path, command):
    """Before: a 25-line traceback."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, EDGESIGHT_INSTANCE_PATH=str(tmp_path), EDGESIGHT_RETENTION_DAYS="-1",
               EDGESIGHT_DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    out = subprocess.run([sys.executable, "-m", "cloud_hub", *command], env=env, capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "retention_days" in lines[0] and "EDGESIGHT_RETENTION_DAYS" in lines[0], lines[0]
