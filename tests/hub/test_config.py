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
    with pytest.raises(ConfigError, match=r"environment: retention_days"):
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
