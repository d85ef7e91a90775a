"""Replay frames through a camera pipeline offline, in video time (benchmarks, evaluation, debugging).

Live runs stamp frames with the wall clock and drop what the detector cannot keep up with; a replay
processes every ``stride``-th frame with timestamp ``index / fps``, so the same video always yields
the same events and can be compared with ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from edge_agent.pipeline import CameraPipeline
from edge_agent.rules import RuleEvent
from edge_agent.sources import Frame


@dataclass
class ReplayResult:
    events: list[RuleEvent] = field(default_factory=list)
    final_events: list[RuleEvent] = field(default_factory=list)  # tracks closed because the video ended
    frames: int = 0
    processed: int = 0
    seconds: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def replay(
    pipeline: CameraPipeline, images: Iterable[np.ndarray | None], fps: float, stride: int = 1
) -> ReplayResult:
    """Process every ``stride``-th image; the others may be ``None`` (grabbed but never decoded, as live)."""
    result = ReplayResult()
    started = time.perf_counter()
    index = -1
    for index, image in enumerate(images):
        result.frames += 1
        if index % stride:
            continue
        result.processed += 1
        result.events.extend(pipeline.process(Frame(image, index, index / fps)))
    result.final_events = pipeline.finish((index + 1) / fps)
    result.seconds = time.perf_counter() - started
    return result
