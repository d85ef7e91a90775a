"""Throughput of the edge pipeline against the decode limit, and how rarely the CNN has to run.

    python -m benchmarks.pipeline --json [--duration 300] [--density 0.5] [--model DIR]

Runs pinned to one CPU core (onnxruntime and OpenCV single-threaded), on:
- a rendered mostly-static street (``scene="static"``, 300 s, arrival density 0.5: objects on screen
  ~15 % of the time, long empty stretches), written to MP4 so decoding is real;
- ``../shared/data/video/one-by-one-person-detection.mp4`` when present.

For each source: ``decode_fps`` = decode-only throughput (every frame grabbed and converted to BGR: the
limit), ``pipeline_fps`` = decode + motion gate + CNN where needed + tracker + rules (frames the detector
does not use are grabbed, not converted, as the live capture does), ``cnn_frame_share`` = processed
frames that reached the CNN, ``inference_p50_ms``, ``events``. Decode-only and pipeline runs alternate
three times and the best of each is kept (a shared machine: both see the same load). For the rendered
scene the truth is known, so it also reports ``missed_events`` (true line crossings / zone transitions
the agent did not report within 1 s), ``true_events`` and ``object_share`` (processed frames with any
object on screen: how static the scene really is). Last line: ``{"runs": [...]}``. Goals:
pipeline_fps ≥ 0.5 × decode_fps; on the static scene cnn_frame_share ≤ 0.15 with missed_events == 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from benchmarks.events import DEFAULT_MODEL, FIRST_SEED, camera_for, parse_overrides, stride, zone_matches
from edge_agent.config import CameraConfig, RuntimeConfig
from edge_agent.pipeline import CameraPipeline
from edge_agent.replay import replay
from shared.payloads import EventKind, EventPhase
from synthetic_world import SyntheticVideo, write_video

REPO = Path(__file__).resolve().parents[1]
REAL_VIDEO = REPO.parent / "shared" / "data" / "video" / "one-by-one-person-detection.mp4"
log = logging.getLogger("benchmarks.pipeline")


def frames_of(path: Path, stride: int = 1) -> Iterator[np.ndarray | None]:
    """Every frame is decoded; only every ``stride``-th is converted to BGR (the agent's capture does the
    same: frames the detector will not look at are grabbed, not retrieved). Others are None."""
    cap = cv2.VideoCapture(str(path))
    index = 0
    try:
        while cap.grab():
            if index % stride == 0:
                ok, image = cap.retrieve()
                if not ok:
                    return
                yield image
            else:
                yield None
            index += 1
    finally:
        cap.release()


def decode_fps(path: Path) -> tuple[int, float]:
    started = time.perf_counter()
    count = sum(1 for _ in frames_of(path))
    return count, count / (time.perf_counter() - started)


def run_source(
    name: str, path: Path, camera: CameraConfig, runtime: RuntimeConfig, fps: float, repeat: int = 3
) -> tuple[dict, list]:
    """Decode-only and full-pipeline runs alternate ``repeat`` times and the best of each is kept: the
    machine is shared, and alternating exposes both measurements to the same load."""
    decodes, speeds = [], []
    every = stride(fps, camera.detect_fps)
    for _ in range(repeat):
        frames, decode = decode_fps(path)
        decodes.append(decode)
        pipeline = CameraPipeline(camera, runtime)
        result = replay(pipeline, frames_of(path, every), fps=fps, stride=every)
        speeds.append(result.fps)
    run = {
        "source": name,
        "frames": frames,
        "detect_fps": camera.detect_fps,
        "processed_frames": result.processed,
        "decode_fps": round(max(decodes), 1),
        "pipeline_fps": round(max(speeds), 1),
        "cnn_frame_share": round(pipeline.stats.cnn_frames / max(1, result.processed), 4),
        "inference_p50_ms": round(float(np.median(pipeline.stats.inference_ms)), 3)
        if pipeline.stats.inference_ms
        else None,
        "events": len(result.events),
    }
    log.info(
        "%s: %s (decode fps %s, pipeline fps %s)",
        name,
        run,
        [round(d) for d in decodes],
        [round(v) for v in speeds],
    )
    return run, result.events


def missed(events: list, video: SyntheticVideo, tolerance: float = 1.0) -> tuple[int, int]:
    truth = video.truth_events()
    true_events = [(e.name, e.direction or e.kind, e.t) for e in truth]
    pred = []
    for e in events:
        if e.kind is EventKind.LINE:
            pred.append((e.line, e.direction, e.ts))
        elif e.kind is EventKind.ZONE:
            pred.append((e.zone, "zone_enter" if e.phase is EventPhase.START else "zone_exit", e.ts))
    return len(true_events) - zone_matches(pred, true_events, tolerance)[0], len(true_events)


def object_share(video: SyntheticVideo, every: int) -> float:
    """Share of processed frames with any object on screen: how static the scene really is."""
    indices = range(0, len(video), every)
    busy = sum(1 for i in indices if any(o.visible > 0 for o in video.objects_at(i)))
    return round(busy / max(1, len(indices)), 4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--duration", type=float, default=300.0, help="length of the rendered scene (s)")
    parser.add_argument(
        "--density",
        type=float,
        default=0.5,
        help="arrival rate factor of the static scene (0.5: objects on screen ~15%% of the time)",
    )
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--real-video", type=Path, default=REAL_VIDEO)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a camera config key, e.g. --set motion.cnn_interval_s=0.4",
    )
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.set)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cv2.setNumThreads(1)
    runtime = RuntimeConfig(intra_op_threads=1)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        video = SyntheticVideo(
            seed=FIRST_SEED + 1000,
            width=320,
            height=192,
            fps=10.0,
            duration_s=args.duration,
            scene="static",
            density=args.density,
        )
        log.info("rendering the static scene (%d frames)", len(video))
        clip = write_video(video, Path(tmp) / "static.mp4")
        camera = camera_for(video, args.model, **overrides)
        run, events = run_source("rendered-static", clip, camera, runtime, video.fps)
        run["missed_events"], run["true_events"] = missed(events, video)
        run["object_share"] = object_share(video, stride(video.fps, camera.detect_fps))
        runs.append(run)
    if args.real_video.exists():
        cap = cv2.VideoCapture(str(args.real_video))
        fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
        cap.release()
        # Same camera settings as the rendered run, without that scene's lines and zones.
        camera = camera_for(video, args.model, **overrides).model_copy(
            update={"name": "real", "zones": [], "lines": [], "speed": [], "red_light": []}
        )
        runs.append(run_source(args.real_video.name, args.real_video, camera, runtime, fps)[0])
    else:
        log.info("%s not present: skipping the real video", args.real_video)
    print(json.dumps({"runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
