"""Remote zone/line configs are checked like the YAML file (plus what an eye sees on a drawing) and
previews stay within the contract's size bound."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import yaml

from edge_agent.camera_view import RemoteConfigRefused, merged_camera
from edge_agent.config import PreviewConfig, parse_config
from edge_agent.sources import Frame
from shared.camera import MAX_PREVIEW_JPEG_BYTES, CameraGeometry, LineGeometry, PreviewPayload, ZoneGeometry

CONFIG = {
    "device": {"id": "cam-1"},
    "cameras": [{
        "name": "street", "source": "synthetic:street", "model": {"path": "/nonexistent"},
        "zones": [{"name": "door", "polygon": [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4]], "loiter_s": 12}],
        "lines": [{"name": "gate", "a": [0.5, 0.0], "b": [0.5, 1.0], "min_frames": 3}],
    }],
}


@pytest.fixture
def camera():
    return parse_config(yaml.safe_dump(CONFIG)).cameras[0]


def square(name: str, x: float = 0.2) -> ZoneGeometry:
    return ZoneGeometry(name=name, polygon=[(x, 0.2), (x + 0.3, 0.2), (x + 0.3, 0.5), (x, 0.5)])


def test_applied_geometry_keeps_the_settings_of_a_zone_or_line_that_keeps_its_name(camera):
    new = merged_camera(camera, CameraGeometry(
        zones=[square("door"), square("new", 0.6)],
        lines=[LineGeometry(name="gate", a=(0.3, 0.0), b=(0.3, 1.0), positive="east", negative="west")]))
    door, added = new.zones
    assert door.loiter_s == 12 and door.polygon[0] == (0.2, 0.2)
    assert added.loiter_s is None
    assert new.lines[0].min_frames == 3 and new.lines[0].positive == "east"
    assert new.model == camera.model and new.source == camera.source


@pytest.mark.parametrize(("geometry", "reason"), [
    (CameraGeometry(zones=[ZoneGeometry(name="bow",
                                        polygon=[(0.1, 0.1), (0.5, 0.5), (0.5, 0.1), (0.1, 0.5)])]),
     "zone 'bow': its edges cross each other"),
    (CameraGeometry(zones=[ZoneGeometry(name="out", polygon=[(0.1, 0.1), (1.5, 0.1), (0.5, 0.5)])]),
     "zone 'out': point [1.5, 0.1] is outside the frame"),
    (CameraGeometry(zones=[ZoneGeometry(name="two", polygon=[(0.1, 0.1), (0.5, 0.5)])]),
     "zone 'two': a zone needs at least 3 points"),
    (CameraGeometry(zones=[ZoneGeometry(name="flat", polygon=[(0.1, 0.1), (0.5, 0.1), (0.9, 0.1001)])]),
     "zone 'flat': its area"),
    (CameraGeometry(lines=[LineGeometry(name="dot", a=(0.5, 0.5), b=(0.505, 0.5))]),
     "line 'dot': shorter than"),
    (CameraGeometry(lines=[LineGeometry(name="same", a=(0.1, 0.5), b=(0.9, 0.5),
                                        positive="x", negative="x")]),
     "line 'same': both directions"),
    (CameraGeometry(zones=[square("a"), square("a", 0.6)]), "duplicate zone names"),
])
def test_a_bad_drawing_is_refused_with_a_reason_an_operator_can_act_on(camera, geometry, reason):
    with pytest.raises(RemoteConfigRefused) as refused:
        merged_camera(camera, geometry)
    assert reason in str(refused.value)


def test_preview_is_a_small_jpeg_within_the_contract():
    from edge_agent.camera_view import CameraView

    class Pipe:
        camera = parse_config(yaml.safe_dump(CONFIG)).cameras[0]
        last_boxes = [("person", 0.8, (0.1, 0.2, 0.3, 0.9), 5)]
        # Noise is the worst case for JPEG: the encoder must step its quality down to fit.
        last_frame = Frame(np.random.default_rng(0).integers(0, 255, (720, 1280, 3), np.uint8), 1, 100.0)

    class FakeAgent:
        device_id = "cam-1"

    payload = CameraView(FakeAgent()).preview(Pipe(), PreviewConfig(enabled=True, max_width=640, quality=95))
    assert payload is not None and (payload.width, payload.height) == (640, 360)
    assert len(base64.b64decode(payload.jpeg_b64)) <= MAX_PREVIEW_JPEG_BYTES
    assert PreviewPayload.model_validate_json(payload.to_bytes()) == payload
    assert payload.boxes[0].track_id == 5 and [z.name for z in payload.zones] == ["door"]
