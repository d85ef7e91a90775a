"""``SyntheticVideo``: a seeded, deterministic, re-iterable rendered camera with per-frame ground truth."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from .actors import Actor, draw_actor, extent, lit_paint
from .background import render_background
from .camera import CameraEffects
from .events import truth_events
from .layout import Layout, indoor_layout, street_layout
from .lighting import Lighting, random_lighting
from .schedule import build_schedule
from .types import Frame, Point, TruthEvent, TruthObject

SCENES = ("street", "indoor", "static")


class SyntheticVideo:
    """A rendered street or indoor camera. Frame ``i`` depends only on (seed, parameters, i).

    ``scene="static"`` is a street where almost nothing happens (long stretches without motion), for
    testing motion gating. ``density`` scales how many actors arrive; ``lighting`` forces "day", "dusk"
    or "night" instead of a seeded choice.
    """

    def __init__(
        self,
        seed: int = 0,
        width: int = 320,
        height: int = 192,
        fps: float = 10.0,
        duration_s: float = 20.0,
        scene: str = "street",
        density: float = 1.0,
        lighting: str | None = None,
        effects: bool = True,
    ) -> None:
        if scene not in SCENES:
            raise ValueError(f"scene must be one of {SCENES}, got {scene!r}")
        if width < 16 or height < 16 or fps <= 0 or duration_s <= 0:
            raise ValueError("width/height must be >= 16 and fps, duration_s > 0")
        self.seed, self.width, self.height, self.fps, self.duration_s = seed, width, height, fps, duration_s
        self.scene = scene
        rng = np.random.default_rng([seed, SCENES.index(scene)])
        self.layout: Layout = indoor_layout(rng) if scene == "indoor" else street_layout(rng)
        light = random_lighting(rng)
        if lighting is not None:
            light = random_lighting(
                rng, weights=tuple(float(n == lighting) for n in ("day", "dusk", "night"))
            )
        self.lighting: Lighting = light
        self.background = render_background(self.layout, light, rng, width, height)
        self.effects = CameraEffects.random(rng, width, height, light.name == "night")
        if not effects:
            self.effects = CameraEffects(0, 0.0, None)
        self.actors: list[Actor] = build_schedule(
            self.layout, rng, duration_s, "static" if scene == "static" else self.layout.scene, density
        )
        self._paints = {a.track_id: lit_paint(a.colours, light) for a in self.actors}
        self._frames = int(math.floor(duration_s * fps + 1e-9))
        self._scratch = np.zeros((height, width), np.uint8)

    @property
    def lines(self) -> dict[str, tuple[Point, Point]]:
        return dict(self.layout.lines)

    @property
    def zones(self) -> dict[str, list[Point]]:
        return {k: list(v) for k, v in self.layout.zones.items()}

    def __len__(self) -> int:
        return self._frames

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self._frames):
            yield self.frame(i)

    def __getitem__(self, index: int) -> Frame:
        if not -self._frames <= index < self._frames:
            raise IndexError(index)
        return self.frame(index % self._frames)

    def _placed(self, t: float) -> list[tuple[Actor, float, float, float, float]]:
        """Actors on screen at ``t`` with pixel foot point and extent, far to near (painter's order)."""
        placed = []
        for actor in self.actors:
            foot = actor.foot(t)
            if foot is None:
                continue
            w, h = extent(actor.label, actor.size, self.layout.scale(foot[1]) * self.height)
            fx, fy = foot[0] * self.width, foot[1] * self.height
            if fx + w / 2 <= 0 or fx - w / 2 >= self.width or fy <= 0 or fy - h >= self.height:
                continue
            placed.append((actor, fx, fy, w, h))
        placed.sort(key=lambda p: (p[2], p[0].track_id))
        return placed

    def _truth(self, actor: Actor, fx: float, fy: float, w: float, h: float, visible: float) -> TruthObject:
        x1, x2 = max(0.0, fx - w / 2), min(float(self.width), fx + w / 2)
        y1, y2 = max(0.0, fy - h), min(float(self.height), fy)
        box = (x1 / self.width, y1 / self.height, x2 / self.width, y2 / self.height)
        return TruthObject(
            actor.track_id,
            actor.label,
            box,
            ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
            round(visible, 3),
        )

    def objects_at(self, index: int) -> list[TruthObject]:
        """Truth for frame ``index`` without rendering (``visible`` is only the in-frame fraction here)."""
        t = index / self.fps
        out = []
        for actor, fx, fy, w, h in self._placed(t):
            inside = (min(self.width, fx + w / 2) - max(0, fx - w / 2)) * (
                min(self.height, fy) - max(0, fy - h)
            )
            out.append(self._truth(actor, fx, fy, w, h, inside / max(w * h, 1e-6)))
        return out

    def frame(self, index: int) -> Frame:
        t = index / self.fps
        img = self.background.copy()
        ids = np.zeros((self.height, self.width), np.uint8)
        placed = self._placed(t)
        full: list[float] = []
        for k, (actor, fx, fy, w, h) in enumerate(placed, start=1):
            self._shadow(img, fx, fy, w, h)
            if self.lighting.lamps and actor.label in ("car", "truck"):
                self._beam(img, fx, fy, w, h, actor.facing)
            draw_actor(img, actor, fx, fy, w, h, t, self._paints[actor.track_id])
            draw_actor(ids, actor, fx, fy, w, h, t, lambda _part, k=k: k)
            full.append(self._own_pixels(actor, fx, fy, w, h, t))
        counts = np.bincount(ids.ravel(), minlength=len(placed) + 1) if placed else []
        objects = [
            self._truth(a, fx, fy, w, h, min(1.0, counts[k] / full[k - 1]) if full[k - 1] else 0.0)
            for k, (a, fx, fy, w, h) in enumerate(placed, start=1)
        ]
        return Frame(index, t, self.effects.apply(img, index), objects)

    def _own_pixels(self, actor: Actor, fx: float, fy: float, w: float, h: float, t: float) -> float:
        """Pixels the actor would cover alone, extrapolated to the part outside the frame."""
        x1, x2 = max(0, int(fx - w / 2) - 2), min(self.width, int(fx + w / 2) + 3)
        y1, y2 = max(0, int(fy - h) - 2), min(self.height, int(fy) + 3)
        if x2 <= x1 or y2 <= y1:
            return 0.0
        roi = self._scratch[y1:y2, x1:x2]
        roi[:] = 0
        draw_actor(self._scratch, actor, fx, fy, w, h, t, lambda _part: 1)
        drawn = float(np.count_nonzero(roi))
        roi[:] = 0
        clipped = (min(self.width, fx + w / 2) - max(0, fx - w / 2)) * (min(self.height, fy) - max(0, fy - h))
        return drawn / max(clipped / (w * h), 1e-3)

    def _shadow(self, img: np.ndarray, fx: float, fy: float, w: float, h: float) -> None:
        strength = self.lighting.shadow_strength
        if strength <= 0:
            return
        cx, cy = fx + self.lighting.shadow_dx * h * 0.3, fy
        ax, ay = w * 0.5 + abs(self.lighting.shadow_dx) * h * 0.3, max(2.0, h * 0.06)
        x1, x2 = max(0, int(cx - ax)), min(self.width, int(cx + ax) + 1)
        y1, y2 = max(0, int(cy - ay)), min(self.height, int(cy + ay) + 1)
        if x2 <= x1 or y2 <= y1:
            return
        mask = np.zeros((y2 - y1, x2 - x1), np.uint8)
        cv2.ellipse(mask, (int(cx) - x1, int(cy) - y1), (int(ax), int(ay)), 0, 0, 360, 1, -1)
        roi = img[y1:y2, x1:x2]
        roi[mask > 0] = (roi[mask > 0] * (1.0 - strength)).astype(np.uint8)

    def _beam(self, img: np.ndarray, fx: float, fy: float, w: float, h: float, facing: int) -> None:
        front = fx + facing * w / 2
        tip = front + facing * w * 0.6
        pts = np.array([(front, fy - 0.5 * h), (tip, fy - 0.1 * h), (tip, fy + 0.05 * h)], np.int32)
        cv2.fillConvexPoly(img, pts, (150, 200, 220))

    def truth_events(self) -> list[TruthEvent]:
        """Line crossings and zone transitions of every track's centroid (see ``events`` for conventions)."""
        frames = ((i / self.fps, self.objects_at(i)) for i in range(self._frames))
        return truth_events(frames, self.lines, self.zones)


def write_video(video: SyntheticVideo, path: str | Path, progress: bool = False) -> Path:
    """Write every frame to an MP4 (mp4v) file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), video.fps, (video.width, video.height)
    )
    if not writer.isOpened():
        raise OSError(f"cannot open video writer for {path}")
    try:
        frames = video
        if progress:
            from tqdm import tqdm

            frames = tqdm(video, total=len(video), desc=f"render {path.name}", unit="frame")
        for frame in frames:
            writer.write(frame.image)
    finally:
        writer.release()
    return path
