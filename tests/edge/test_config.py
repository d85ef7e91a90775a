"""Config validation: every error names the field path and the YAML line; the CLI exits non-zero."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import EXIT_CONFIG, main
from edge_agent.config import ConfigError, FileSource, StreamSource, SyntheticSource, UsbSource, parse_config

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
device:
  id: cam-1
mqtt:
  url: mqtt://127.0.0.1:1883
cameras:
  - name: front
    source: synthetic:street?seed=3&fps=5
    model:
      path: firmware_models/reference/fomo-street
    zones:
      - name: door
        polygon: [[0.1, 0.1], [0.5, 0.1], [0.5, 0.5]]
    lines:
      - name: gate
        a: [0.0, 0.5]
        b: [1.0, 0.5]
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="agent.yaml")
    return str(info.value)


def test_good_config_and_source_shorthands():
    config = parse_config(GOOD)
    source = config.cameras[0].source
    assert isinstance(source, SyntheticSource) and source.seed == 3 and source.fps == 5.0
    assert config.mqtt.prefix == "edgesight/v1" and config.mqtt.port == 1883
    for text, kind in [
        ("rtsp://cam/stream", StreamSource),
        ("http://cam/mjpeg", StreamSource),
        ("usb:2", UsbSource),
        ("/dev/video1", UsbSource),
        ("clips/a.mp4", FileSource),
    ]:
        parsed = parse_config(GOOD.replace("synthetic:street?seed=3&fps=5", text))
        assert isinstance(parsed.cameras[0].source, kind), text
    looped = parse_config(GOOD.replace("synthetic:street?seed=3&fps=5", "file:/clips/hall.mp4?loop=true"))
    source = looped.cameras[0].source
    assert isinstance(source, FileSource) and source.loop and str(source.path) == "/clips/hall.mp4"
    typo = GOOD.replace("synthetic:street?seed=3&fps=5", "file:/clips/hall.mp4?lop=true")
    assert "lop" in error_of(typo)


def test_unknown_key_names_path_and_line():
    text = GOOD.replace("  keepalive", "").replace("    detect", "") + "    detct_fps: 5\n"
    message = error_of(text)
    assert "agent.yaml:17: cameras.0.detct_fps: Extra inputs are not permitted" in message


def test_wrong_type_names_path_and_line():
    message = error_of(
        GOOD.replace("url: mqtt://127.0.0.1:1883", "url: mqtt://127.0.0.1:1883\n  keepalive_s: soon")
    )
    assert "agent.yaml:5: mqtt.keepalive_s: Input should be a valid integer" in message


def test_unknown_key_inside_typed_source():
    text = GOOD.replace(
        "source: synthetic:street?seed=3&fps=5",
        "source:\n      type: file\n      path: a.mp4\n      looping: true",
    )
    message = error_of(text)
    assert "agent.yaml:10: cameras.0.source.looping: Extra inputs are not permitted" in message


def test_zone_outside_frame_is_an_error_at_its_line():
    message = error_of(GOOD.replace("[0.5, 0.5]]", "[1.5, 0.5]]"))
    assert "agent.yaml:12: cameras.0.zones.0.polygon.2: point [1.5, 0.5] is outside the frame" in message


def test_line_outside_frame_and_missing_device():
    message = error_of(GOOD.replace("b: [1.0, 0.5]", "b: [1.0, -0.2]"))
    assert "agent.yaml:16: cameras.0.lines.0.b: point [1.0, -0.2] is outside the frame" in message
    message = error_of(GOOD.replace("device:\n  id: cam-1\n", ""))
    assert "device: Field required" in message


def test_bad_mqtt_url_and_bad_yaml():
    assert "mqtt.url: Value error, expected mqtt://host:port" in error_of(GOOD.replace("mqtt://", "http://"))
    assert "invalid YAML" in error_of("device: [unclosed\n")


def test_speed_rule_must_reference_known_lines():
    text = GOOD + "    speed:\n      - name: s\n        lines: [gate, nowhere]\n        distance_m: 5\n"
    assert "unknown line 'nowhere'" in error_of(text)


def test_cli_validate_config_exit_codes(tmp_path: Path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    assert main(["run", "--config", str(good), "--validate-config"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("detect", "x") + "    colour: red\n")
    assert main(["run", "--config", str(bad), "--validate-config"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"{bad}:17: cameras.0.colour: Extra inputs are not permitted" in err
    assert main(["check", "--config", str(tmp_path / "missing.yaml")]) == EXIT_CONFIG


def test_example_config_is_valid():
    main_rc = main(["run", "--config", str(REPO / "deploy/edge/example.yaml"), "--validate-config"])
    assert main_rc == 0


def test_mqtt_reconnect_bounds_are_validated_at_their_line():
    """``reconnect_max_s: 0.4`` used to validate and give paho a 0 s reconnect delay (a busy loop)."""
    url = "  url: mqtt://127.0.0.1:1883\n"
    text = GOOD.replace(url, url + "  reconnect_max_s: 0.4\n")
    assert "agent.yaml:5: mqtt.reconnect_max_s: Input should be greater than or equal to 1" in error_of(text)
    text = GOOD.replace(url, url + "  reconnect_min_s: 0.5\n")
    assert "agent.yaml:5: mqtt.reconnect_min_s: Input should be greater than or equal to 1" in error_of(text)
    text = GOOD.replace(url, url + "  reconnect_min_s: 20\n  reconnect_max_s: 10\n")
    message = error_of(text)
    assert message.startswith("agent.yaml:3: mqtt: ") and "reconnect_min_s (20) must not exceed" in message
    config = parse_config(GOOD.replace(url, url + "  reconnect_min_s: 2\n  reconnect_max_s: 2\n"))
    assert (config.mqtt.reconnect_min_s, config.mqtt.reconnect_max_s) == (2, 2)
