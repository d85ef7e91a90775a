"""Where the detector loses objects that a perfect model of its design would find.

    python -m benchmarks.detector --json [--videos 20] [--every 7] [--model DIR]

Renders street frames from seeds never used in training (930,000,001…), runs the model and
``PerfectGrid`` (the world painted on the model's own FOMO grid as its training targets, see
``benchmarks/events.py``) on each, and reports per label the recall of each, split by situation:

- ``crowd`` / ``alone``: another object's centroid within 3 grid cells (people side by side, a person
  beside a car) or not — where a FOMO map merges two objects into one blob;
- ``occluded`` / ``clear``: under 70 % of the object visible (behind another object or cut by the frame);
- ``small`` / ``large``: box under 22 % of the frame high (far people) or not.

An object is found when a detection of its label lies within 1.5 cells of its centroid (one-to-one).
``false_per_frame``: the model's detections that match no object (nor one under 30 % visible). The gap
between ``model`` and ``grid`` is what training could still win; ``grid`` below 1 is what the grid itself
costs. Last line: one JSON object ``{"model", "frames", "recall": {label: {situation: {"n", "model",
"grid"}}}, "false_per_frame"}``. A diagnostic: it has no goal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from benchmarks.events import DEFAULT_MODEL, PerfectGrid
from edge_agent.config import RuntimeConfig
from model_runtime import Detection, ModelRuntime
from synthetic_world import SyntheticVideo, TruthObject

FIRST_SEED = 930_000_001  # neither training (small seeds) nor the events benchmark's ranges
MIN_VISIBLE = 0.3  # the events truth's and the training targets' visibility
CROWD_CELLS = 3
SMALL_HEIGHT = 0.22


def situations(obj: TruthObject, others: Sequence[TruthObject], cell: tuple[float, float]) -> list[str]:
    """``all`` and the three splits the module docstring describes."""
    cw, ch = cell
    crowd = any(
        o is not obj
        and abs(o.centroid[0] - obj.centroid[0]) <= CROWD_CELLS * cw
        and abs(o.centroid[1] - obj.centroid[1]) <= CROWD_CELLS * ch
        for o in others
    )
    small = obj.bbox[3] - obj.bbox[1] < SMALL_HEIGHT
    return [
        "all",
        "crowd" if crowd else "alone",
        "occluded" if obj.visible < 0.7 else "clear",
        "small" if small else "large",
    ]


def found(
    objects: Sequence[TruthObject], dets: Sequence[Detection], cell: tuple[float, float]
) -> tuple[set[int], list[Detection]]:
    """Indices of ``objects`` with a detection of their label within 1.5 cells (one-to-one, best score
    first), and the detections left over."""
    cw, ch = cell
    hit: set[int] = set()
    rest = []
    for det in sorted(dets, key=lambda d: -d.score):
        cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
        match = next(
            (
                k
                for k, o in enumerate(objects)
                if k not in hit
                and o.label == det.label
                and abs(o.centroid[0] - cx) <= 1.5 * cw
                and abs(o.centroid[1] - cy) <= 1.5 * ch
            ),
            None,
        )
        if match is None:
            rest.append(det)
        else:
            hit.add(match)
    return hit, rest


def run(
    model_dir: Path, videos: int, every: int, first_seed: int = FIRST_SEED, duration: float = 30.0
) -> dict:
    model = ModelRuntime(model_dir, RuntimeConfig(intra_op_threads=1, warmup_runs=0))
    grid = PerfectGrid(MIN_VISIBLE, model)
    gh, gw = grid.grid
    cell = (1.0 / gw, 1.0 / gh)
    counts: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    frames = false = 0
    for i in range(videos):
        video = SyntheticVideo(seed=first_seed + i, width=320, height=192, fps=10.0, duration_s=duration)
        for index in range(0, len(video), every):
            frame = video.frame(index)
            seen = [o for o in frame.objects if o.visible >= MIN_VISIBLE and o.label in grid.labels]
            faint = [o for o in frame.objects if o.visible < MIN_VISIBLE]
            grid.objects = frame.objects
            by_model, extra = found(seen, model.detect(frame.image), cell)
            by_grid, _ = found(seen, grid.detect(frame.image), cell)
            false += len(extra) - len(found(faint, extra, cell)[0])
            frames += 1
            for k, obj in enumerate(seen):
                for situation in situations(obj, seen, cell):
                    tally = counts[obj.label][situation]
                    tally["n"] += 1
                    tally["model"] += k in by_model
                    tally["grid"] += k in by_grid
    recall = {
        label: {
            s: {"n": c["n"], "model": round(c["model"] / c["n"], 3), "grid": round(c["grid"] / c["n"], 3)}
            for s, c in sorted(per.items())
        }
        for label, per in sorted(counts.items())
    }
    return {
        "model": model.ref,
        "frames": frames,
        "recall": recall,
        "false_per_frame": round(false / max(1, frames), 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only JSON (last line: the result)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--every", type=int, default=7, help="every n-th frame of each 30 s video")
    parser.add_argument("--first-seed", type=int, default=FIRST_SEED)
    args = parser.parse_args(argv)
    result = run(args.model, args.videos, args.every, args.first_seed)
    if not args.json:
        for label, per in result["recall"].items():
            for situation, r in per.items():
                print(
                    f"{label:8s} {situation:9s} n={r['n']:5d}  model {r['model']:.3f}  grid {r['grid']:.3f}"
                )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
