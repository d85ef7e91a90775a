"""Motion gate: finds what moves, ignores masks and global light changes, and keeps the CNN idle."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.config import CameraConfig, MotionConfig, RuntimeConfig
from edge_agent.motion import MotionDetector
from edge_agent.pipeline import CameraPipeline
from edge_agent.replay import replay

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm


def scene(x: int | None, brightness: int = 160, noise_seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(noise_seed)
    img = np.clip(rng.normal(brightness, 3, (120, 200, 3)), 0, 255).astype(np.uint8)  # sensor noise
    if x is not None:
        cv2.rectangle(img, (x, 50), (x + 20, 80), (0, 0, 255), -1)  # luminance 76 vs 160
    return img


def gated_pipeline(model: Path, cnn_interval_s: float, lines: list[dict] | None = None) -> CameraPipeline:
    """A camera on the red-square model with the motion gate on: periodic 5 s, hold 0.5 s."""
    camera = CameraConfig.model_validate(
        {
            "name": "c",
            "source": "synthetic:street",
            "model": {"path": str(model)},
            "motion": {"periodic_s": 5.0, "hold_s": 0.5, "cnn_interval_s": cnn_interval_s},
            "lines": lines or [],
        }
    )
    return CameraPipeline(camera, RuntimeConfig(warmup_runs=0))


def test_still_noisy_scene_has_no_motion_and_a_moving_block_is_boxed():
    detector = MotionDetector(MotionConfig())
    assert all(not detector.detect(scene(None, noise_seed=i)).moving for i in range(10))
    result = detector.detect(scene(120, noise_seed=11))
    assert result.moving
    x1, y1, x2, y2 = max(result.boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    assert x1 <= 120 / 200 <= x2 and y1 <= 65 / 120 <= y2


def test_masked_region_never_counts():
    mask = [[[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]]
    detector = MotionDetector(MotionConfig(mask=mask))
    detector.detect(scene(None))
    assert not detector.detect(scene(150)).moving  # right half is masked
    assert detector.detect(scene(30)).moving


def test_lights_switching_on_recalibrates_instead_of_triggering():
    detector = MotionDetector(MotionConfig())
    detector.detect(scene(None, brightness=60))
    result = detector.detect(scene(None, brightness=200))
    assert result.calibrating and not result.moving
    assert not detector.detect(scene(None, brightness=200, noise_seed=5)).moving


def test_cnn_runs_only_around_motion_plus_periodic_checks(red_model: Path):
    pipeline = gated_pipeline(red_model, cnn_interval_s=0.0)
    # 20 s at 10 fps: still for 10 s, a block crosses in 2 s, still again.
    frames = [scene(None, noise_seed=i) for i in range(100)]
    frames += [scene(10 + 9 * i, noise_seed=100 + i) for i in range(20)]
    frames += [scene(None, noise_seed=200 + i) for i in range(80)]
    result = replay(pipeline, frames, fps=10.0)
    share = pipeline.stats.cnn_frames / result.processed
    assert 20 <= pipeline.stats.cnn_frames <= 40, pipeline.stats.cnn_frames  # motion + hold + periodic
    assert share < 0.2
    flags = list(pipeline.stats.cnn_flags)
    assert all(flags[101:120])  # every frame while the block moves (the first moving frame is 100)


def test_known_tracks_skip_inferences_except_near_a_line(red_model: Path):
    """cnn_interval_s > 0: a tracked object far from every rule is inferred at most every interval, but
    on every frame near the line it crosses, so the crossing is still counted exactly once."""
    pipeline = gated_pipeline(
        red_model, cnn_interval_s=0.6, lines=[{"name": "middle", "a": [0.5, 0.0], "b": [0.5, 1.0]}]
    )
    # 10 fps: still for 1 s, then the block crosses at 0.15 frame widths a second, then still again.
    frames = [scene(None, noise_seed=i) for i in range(10)]
    frames += [scene(3 * i, noise_seed=100 + i) for i in range(60)]
    frames += [scene(None, noise_seed=200 + i) for i in range(30)]
    result = replay(pipeline, frames, fps=10.0)
    crossings = [e for e in result.events if e.line == "middle"]
    assert len(crossings) == 1
    assert sum(1 for e in result.events if e.phase.value == "start" and e.kind.value == "object") == 1
    flags = list(pipeline.stats.cnn_flags)
    moving = flags[10:70]
    assert sum(moving) < 0.7 * len(moving)  # skipped while far from the line
    near_line = [10 + i for i in range(60) if abs((3 * i + 10) / 200 - 0.5) <= 0.03]
    assert near_line and all(flags[i] for i in near_line)


def test_area_pyramid_matches_a_direct_area_resize_and_is_shared_per_frame():
    from model_runtime.imaging import Pyramid

    yy, xx = np.mgrid[0:432, 0:768]
    image = np.dstack([(xx / 3) % 256, (yy / 2) % 256, ((xx + yy) / 5) % 256]).astype(np.uint8)
    cv2.circle(image, (300, 200), 60, (0, 0, 255), -1)
    pyramid = Pyramid.of(image)
    assert Pyramid.of(image) is pyramid and Pyramid.of(image.copy()) is not pyramid
    ours = pyramid.resized(160, 96).astype(float)
    direct = cv2.resize(image, (160, 96), interpolation=cv2.INTER_AREA).astype(float)
    assert ours.shape == (96, 160, 3) and np.abs(ours - direct).mean() < 2.0  # same box average, cheaper
    assert Pyramid(image).nearest_height(120).shape[0] == 108  # 432 → 216 → 108


def flag_scene(t: int, red_x: int | None, noise_seed: int) -> np.ndarray:
    """A blue flag waving in the top-left corner (the red model does not know it), and maybe a red block."""
    img = scene(red_x, noise_seed=noise_seed)
    x = 10 + (6 if t % 2 else 0)
    cv2.rectangle(img, (x, 5), (x + 15, 30), (255, 0, 0), -1)  # luminance 29 vs 160: it moves every frame
    return img


def test_motion_the_cnn_found_nothing_in_waits_but_a_new_object_is_looked_at_at_once(red_model: Path):
    """A flag waving all the time: the CNN looks, finds nothing there, and looks again only every
    cnn_interval_s (not on every frame); a red block entering elsewhere still gets the CNN on its first
    moving frame, and is tracked as one object."""
    pipeline = gated_pipeline(red_model, cnn_interval_s=0.6)
    # 10 fps: the flag waves for 6 s, then a red block crosses (from x=60) while it keeps waving.
    frames = [flag_scene(t, None, noise_seed=t) for t in range(60)]
    frames += [flag_scene(60 + i, 60 + 4 * i, noise_seed=100 + i) for i in range(30)]
    result = replay(pipeline, frames, fps=10.0)
    flags = list(pipeline.stats.cnn_flags)
    waving = flags[10:60]  # after the background has settled
    assert sum(waving) <= len(waving) / 6 + 1, waving  # at most every 0.6 s, not on every frame
    assert sum(waving) >= len(waving) / 6 - 1  # but still every 0.6 s: the flag is not forgotten
    assert flags[60]  # the block's first frame: new motion outside where the CNN found nothing
    starts = [e for e in result.events if e.kind.value == "object" and e.phase.value == "start"]
    assert len(starts) == 1
