"""Microcontroller fixtures: the Makefile builds what a test needs once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from firmware_models.mcu_board import build
from firmware_models.mcu_board.clips import DEFAULT_CLIP, clip_frames, video_dir
from firmware_models.mcu_board.reference import OrtReference


@pytest.fixture(scope="session")
def host_build() -> None:
    build.make("host")


@pytest.fixture(scope="session")
def reference() -> OrtReference:
    return OrtReference(build.DEFAULT_MODEL)


@pytest.fixture(scope="session")
def golden_pixels() -> list[np.ndarray]:
    """Every golden input of the shipped model, back as the pixels it was made from."""
    data = np.load(build.DEFAULT_MODEL / "golden.npz")
    inputs = [data[k] for k in sorted(data.files) if k.startswith("input_")]
    pixels = [np.rint(x[0] * 255.0).astype(np.uint8) for x in inputs]
    for x, p in zip(inputs, pixels, strict=True):
        assert np.array_equal(p.astype(np.float32) * np.float32(1 / 255), x[0]), (
            "golden input is not pixels/255"
        )
    return pixels


@pytest.fixture(scope="session")
def clip_path() -> Path:
    return video_dir() / DEFAULT_CLIP


@pytest.fixture(scope="session")
def clip_pixels(reference: OrtReference, clip_path: Path) -> list[np.ndarray]:
    """Twenty frames of a real clip (every second frame), at the model's size."""
    return list(clip_frames(clip_path, reference.manifest.input, count=20, step=2))


@pytest.fixture(scope="session")
def board_build() -> None:
    build.make("board")
