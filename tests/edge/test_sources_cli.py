"""Sources (file, synthetic, unreachable stream, missing USB camera), capture buffer, `edge-agent check`."""

from __future__ import annotations

import platform
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from edge_agent.capture import Backoff, CaptureThread, LatestFrame
from edge_agent.cli import EXIT_RUNTIME, main
from edge_agent.config import FileSource, StreamSource, SyntheticSource, UsbSource
from edge_agent.sources import Frame, SourceEnded, SourceError, create_source
from shared import cpu_features
from shared.int8_precision import PRECISION_KEY, ort_session_config

pytestmark = pytest.mark.arm64  # also runs on aarch64: make test-arm


def test_file_source_reads_and_ends(red_clip: Path):
    source = create_source(FileSource(path=red_clip, loop=False))
    source.open()
    frames = []
    try:
        while True:
            frames.append(source.read())
    except SourceEnded:
        pass
    assert len(frames) == 60 and frames[0].image.shape == (96, 160, 3) and source.fps == 20


def test_synthetic_source_carries_ground_truth():
    source = create_source(SyntheticSource(seed=11, width=160, height=96, fps=10, duration_s=2, loop=False))
    source.open()
    frame = source.read()
    assert frame.image.shape == (96, 160, 3) and frame.image.dtype == np.uint8
    assert hasattr(frame.truth, "objects")


def test_latest_frame_buffer_drops_stale_frames_and_counts_them():
    buffer = LatestFrame()
    image = np.zeros((2, 2, 3), np.uint8)
    for i in range(5):
        buffer.put(Frame(image, i, float(i)))
    got = buffer.get(timeout=0.1)
    assert got is not None and got.index == 4  # always the freshest
    assert buffer.dropped == 4 and buffer.frames_in == 5
    assert buffer.get(timeout=0.01) is None  # nothing new


def test_unreachable_stream_is_retried_with_backoff_without_crashing():
    stop = threading.Event()
    source = create_source(StreamSource(url="rtsp://127.0.0.1:9/none", open_timeout_s=0.5))
    thread = CaptureThread("cam", source, LatestFrame(), stop, Backoff(0.05, 0.1))
    thread.start()
    try:
        deadline = threading.Event()
        deadline.wait(1.5)
        assert thread.is_alive() and thread.backoff.delay == 0.1  # backed off to its ceiling
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_a_missing_usb_camera_is_a_clear_error_and_the_capture_keeps_retrying():
    # No device node: V4L2 cannot open it (the same path a camera unplugged before start takes).
    index = next(i for i in range(63, 0, -1) if not Path(f"/dev/video{i}").exists())
    source = create_source(UsbSource(index=index))
    with pytest.raises(SourceError, match=f"cannot open usb camera /dev/video{index}"):
        source.open()
    stop = threading.Event()
    thread = CaptureThread("cam", source, LatestFrame(), stop, Backoff(0.05, 0.1))
    thread.start()
    try:
        threading.Event().wait(1.0)
        assert thread.is_alive() and thread.backoff.delay == 0.1  # retried, backed off to its ceiling
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def write(tmp_path: Path, model: Path, clip: Path, broker: str = "mqtt://127.0.0.1:1",
          outbox: Path | None = None) -> Path:
    data = {
        "device": {"id": "cam-chk"},
        "mqtt": {"url": broker},
        "outbox": {"path": str(outbox or tmp_path / "outbox" / "outbox.db")},
        "cameras": [{"name": "front", "source": str(clip), "model": {"path": str(model)}}],
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_check_command_opens_source_loads_model_and_infers(
    tmp_path: Path, red_model: Path, red_clip: Path, capsys, mosquitto
):
    assert main(["check", "--config", str(write(tmp_path, red_model, red_clip, mosquitto.url))]) == 0
    out = capsys.readouterr().out
    assert "source ok" in out and "model ok (red-fomo@1.0.0" in out and "inference ok" in out
    assert f"broker ok ({mosquitto.url} accepted cam-chk)" in out and "outbox ok" in out
    precise = ort_session_config()[PRECISION_KEY] == "1"
    assert ("int8 kernels u8 x u8" in out) is precise and ("int8 kernels u8 x s8" in out) is not precise
    cpu = cpu_features.current()
    assert f"cpu: {platform.machine().lower()}, int8 features: " in out
    assert all(name in out.split("cpu: ", 1)[1].splitlines()[0] for name in cpu.int8)


def test_check_fails_on_an_unreachable_broker_and_an_unwritable_outbox(
    tmp_path: Path, red_model: Path, red_clip: Path, capsys
):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the outbox directory should be")
    config = write(tmp_path, red_model, red_clip, "mqtt://127.0.0.1:1", blocker / "outbox.db")
    assert main(["check", "--config", str(config)]) == EXIT_RUNTIME
    out = capsys.readouterr().out
    assert "outbox FAILED: outbox directory" in out and "not writable" in out
    assert "broker FAILED: cannot reach mqtt://127.0.0.1:1" in out
    assert "check FAILED (2 problem(s))" in out and "check passed" not in out


def test_check_command_refuses_a_corrupt_model(tmp_path: Path, red_model: Path, red_clip: Path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(red_model, broken)
    with open(broken / "model.onnx", "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    missing_clip = tmp_path / "nope.mp4"
    assert main(["check", "--config", str(write(tmp_path, broken, missing_clip))]) == EXIT_RUNTIME
    out = capsys.readouterr().out
    assert "source FAILED" in out and "does not exist" in out
    assert "model FAILED: refusing model" in out and "does not match manifest" in out


def test_run_refuses_a_corrupt_model_with_a_clear_error(
    tmp_path: Path, red_model: Path, red_clip: Path, capsys
):
    broken = tmp_path / "broken"
    shutil.copytree(red_model, broken)
    (broken / "model.onnx").write_bytes((broken / "model.onnx").read_bytes()[:-10])
    config = write(tmp_path, broken, red_clip)
    text = config.read_text() + f"outbox:\n  path: {tmp_path / 'outbox.db'}\n"
    config.write_text(text)
    assert main(["run", "--config", str(config)]) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert "refusing model" in err and "sha256" in err
