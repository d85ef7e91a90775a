"""Distillation: a tiny FOMO student learns where a real teacher's objects are on real frames.

Two stages, both on CPU in minutes: pretraining on the rendered world (hard targets from its truth),
then fine-tuning on teacher-labelled real frames mixed with rendered ones. Real frames get **soft**
targets: the cell holding a teacher box's centre learns the teacher's score as that class's probability
(a 0.35 person is "maybe", not "yes"). Cells around the centre of a big box are "don't care" (weight 0):
a student lighting a near person's whole torso is grouped into one object by the decoder and should not
be punished for it. Every sample goes through the augmentations real cameras need (random scale and
crop, zoom-out, flips, colour, blur, noise, JPEG), and boxes follow the crop.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from model_runtime.preprocessing import fit, to_tensor
from shared.manifest import InputSpec
from synthetic_world import still_samples

from .label import Frame, LabelError
from .nets import FomoNet

log = logging.getLogger(__name__)

# (label, score, x1, y1, x2, y2), normalised; score < 0 marks a "don't care" region (rendered, hidden)
Box = tuple[str, float, float, float, float, float]
RENDERED_TO_STUDENT = {"person": "person", "car": "car", "truck": "car", "bicycle": "bicycle"}
OBJECT_WEIGHT = 10.0  # an object cell costs this many background cells (objects are rare)
REAL_SIDE = 384  # real frames are kept at this width in memory (the input is 256 wide; crops zoom in)


@dataclass(frozen=True)
class StudentSpec:
    name: str
    version: str
    description: str
    labels: tuple[str, ...]  # background first
    input: InputSpec
    stride: int = 4
    width: int = 32
    pretrain_frames: int = 3000
    pretrain_steps: int = 500
    steps: int = 500  # fine-tuning steps on real + rendered
    batch_size: int = 32
    lr: float = 3e-3
    finetune_lr: float = 1.5e-3
    real_fraction: float = 0.6  # share of each fine-tuning batch drawn from real frames
    seed: int = 1
    calibration_count: int = 120
    threads: int = 1

    @property
    def grid(self) -> tuple[int, int]:
        return self.input.height // self.stride, self.input.width // self.stride

    def smoke(self) -> StudentSpec:
        """A few steps on a few frames: proves every stage runs, not that the model is good."""
        return replace(self, pretrain_frames=16, pretrain_steps=3, steps=3, batch_size=4, calibration_count=8)

    def pretrain_key(self) -> str:
        keys = ("labels", "stride", "width", "pretrain_frames", "pretrain_steps", "batch_size", "lr", "seed")
        facts = {k: asdict(self)[k] for k in keys} | {"input": list(self.input.shape)}
        return hashlib.sha256(json.dumps(facts, sort_keys=True, default=list).encode()).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------- targets


def targets(
    boxes: Sequence[Box], labels: tuple[str, ...], grid: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Soft per-cell class distribution ``[C, gh, gw]`` and per-cell loss weight ``[gh, gw]``.

    A box's centre cell gets its score as that class's probability (the rest background), weight
    ``OBJECT_WEIGHT``; the cells within the middle half of a box around it are "don't care" (weight 0);
    a box with a negative score is all "don't care". Bigger boxes first, so a small object in front of
    a big one keeps its cell.
    """
    gh, gw = grid
    soft = np.zeros((len(labels), gh, gw), np.float32)
    soft[0] = 1.0
    weight = np.ones((gh, gw), np.float32)
    centres = []
    for label, score, x1, y1, x2, y2 in sorted(boxes, key=lambda b: -(b[4] - b[2]) * (b[5] - b[3])):
        if label not in labels:
            continue
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        if score < 0:  # don't care: the whole box
            weight[int(y1 * gh) : int(np.ceil(y2 * gh)), int(x1 * gw) : int(np.ceil(x2 * gw))] = 0.0
            continue
        qx1, qx2 = int((cx - (x2 - x1) / 4) * gw), int(np.ceil((cx + (x2 - x1) / 4) * gw))
        qy1, qy2 = int((cy - (y2 - y1) / 4) * gh), int(np.ceil((cy + (y2 - y1) / 4) * gh))
        weight[max(qy1, 0) : max(qy2, 0), max(qx1, 0) : max(qx2, 0)] = 0.0
        centres.append((labels.index(label), float(np.clip(score, 0, 1)), cx, cy))
    for k, p, cx, cy in centres:
        i, j = min(gh - 1, int(cy * gh)), min(gw - 1, int(cx * gw))
        soft[:, i, j] = 0.0
        soft[k, i, j] = p
        soft[0, i, j] = 1.0 - p
        weight[i, j] = OBJECT_WEIGHT
    return soft, weight


def rendered_boxes(objects) -> list[Box]:
    """The rendered world's truth as boxes: hidden objects (< 30 % visible) are "don't care"."""
    out: list[Box] = []
    for o in objects:
        label = RENDERED_TO_STUDENT.get(o.label)
        if label:
            out.append((label, 1.0 if o.visible >= 0.3 else -1.0, *o.bbox))
    return out


# ------------------------------------------------------------------------------------------ augmentation


def _crop_boxes(boxes: Sequence[Box], x0: float, y0: float, cw: float, ch: float) -> list[Box]:
    """Boxes in a crop's normalised coordinates; mostly-outside boxes become "don't care"."""
    out: list[Box] = []
    for label, score, x1, y1, x2, y2 in boxes:
        nx1, ny1 = (x1 - x0) / cw, (y1 - y0) / ch
        nx2, ny2 = (x2 - x0) / cw, (y2 - y0) / ch
        cx1, cy1, cx2, cy2 = max(nx1, 0), max(ny1, 0), min(nx2, 1), min(ny2, 1)
        if cx2 <= cx1 or cy2 <= cy1:
            continue
        inside = (cx2 - cx1) * (cy2 - cy1) / max((nx2 - nx1) * (ny2 - ny1), 1e-9)
        out.append((label, score if inside >= 0.5 or score < 0 else -1.0, cx1, cy1, cx2, cy2))
    return out


def augment(
    image: np.ndarray, boxes: Sequence[Box], spec: InputSpec, rng: np.random.Generator, strong: bool = True
) -> tuple[np.ndarray, list[Box]]:
    """A random camera's view of ``image``: scale/crop (or zoom-out), flip, colour, blur, noise, JPEG;
    returns the image at the model's input size and its boxes."""
    h, w = image.shape[:2]
    r = rng.random()
    if strong and r < 0.6:  # zoom in: a crop of 55–100 % of the frame's side, aspect kept ±10 %
        s = rng.uniform(0.55, 1.0)
        cw, ch = s * rng.uniform(0.9, 1.1), s
        cw, ch = min(cw, 1.0), min(ch, 1.0)
        x0, y0 = rng.uniform(0, 1 - cw), rng.uniform(0, 1 - ch)
        crop = image[int(y0 * h) : int((y0 + ch) * h), int(x0 * w) : int((x0 + cw) * w)]
        boxes = _crop_boxes(boxes, x0, y0, cw, ch)
    elif strong and r < 0.75:  # zoom out: the frame smaller on a plain canvas (objects further away)
        s = rng.uniform(0.6, 0.95)
        nw, nh = int(w * s), int(h * s)
        ox, oy = int(rng.integers(0, w - nw + 1)), int(rng.integers(0, h - nh + 1))
        crop = np.empty_like(image)
        crop[:] = rng.integers(0, 256, 3, dtype=np.uint8)
        crop[oy : oy + nh, ox : ox + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        boxes = [
            (lb, sc, (ox + x1 * nw) / w, (oy + y1 * nh) / h, (ox + x2 * nw) / w, (oy + y2 * nh) / h)
            for lb, sc, x1, y1, x2, y2 in boxes
        ]
    else:
        crop = image
    out = fit(np.ascontiguousarray(crop), spec)[0]
    boxes = list(boxes)
    if rng.random() < 0.5:
        out = out[:, ::-1]
        boxes = [(lb, sc, 1 - x2, y1, 1 - x1, y2) for lb, sc, x1, y1, x2, y2 in boxes]
    out = out.astype(np.float32)
    # colour: per-channel gain (white balance), brightness, contrast, saturation
    out *= rng.uniform(0.85, 1.15, 3).astype(np.float32)
    mean = out.mean()
    out = (out - mean) * rng.uniform(0.7, 1.3) + mean * rng.uniform(0.6, 1.3)
    grey = out.mean(axis=2, keepdims=True)
    out = grey + (out - grey) * rng.uniform(0.5, 1.4)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5]))
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.4:
        out += rng.normal(0, rng.uniform(2, 10), out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 90))])
        out = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return np.ascontiguousarray(out), boxes


# ------------------------------------------------------------------------------------------------- data


@dataclass
class Pool:
    """Training images in memory with their boxes, and a sampling weight per image."""

    images: list[np.ndarray]
    boxes: list[list[Box]]
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def rendered_pool(count: int, seed: int, progress: bool = True) -> Pool:
    images, boxes = [], []
    for image, objects in tqdm(
        still_samples(seed, count),
        total=count,
        desc="render",
        unit="frame",
        disable=not progress,
        leave=False,
    ):
        images.append(image)
        boxes.append(rendered_boxes(objects))
    return Pool(images, boxes, np.full(len(images), 1.0 / max(len(images), 1)))


def real_pool(frames: Sequence[Frame], progress: bool = True) -> Pool:
    """Teacher-labelled real frames, downscaled to ``REAL_SIDE`` wide; each clip weighs the same in
    sampling whatever its length (a 1,394-frame clip must not drown five GIFs of 23–67 frames)."""
    if not frames:
        raise LabelError("no real training frames: training never starts on an empty dataset")
    if not any(f.boxes for f in frames):
        raise LabelError("the real training frames carry no labels: training never starts on them")
    images, boxes = [], []
    for f in tqdm(frames, desc="load real frames", unit="frame", disable=not progress, leave=False):
        img = f.image()
        h, w = img.shape[:2]
        if w > REAL_SIDE:
            img = cv2.resize(img, (REAL_SIDE, round(h * REAL_SIDE / w)), interpolation=cv2.INTER_AREA)
        images.append(img)
        boxes.append(list(f.boxes))
    clips = [f.clip for f in frames]
    per_clip = {c: clips.count(c) for c in set(clips)}
    weights = np.array([1.0 / per_clip[c] for c in clips])
    return Pool(images, boxes, weights / weights.sum())


def batch(
    pools: Sequence[tuple[Pool, float]], n: int, spec: StudentSpec, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ts, ws = [], [], []
    shares = np.array([s for _, s in pools], float)
    which = rng.choice(len(pools), size=n, p=shares / shares.sum())
    for k in which:
        pool = pools[k][0]
        i = int(rng.choice(len(pool), p=pool.weights))
        img, bxs = augment(pool.images[i], pool.boxes[i], spec.input, rng)
        soft, weight = targets(bxs, spec.labels, spec.grid)
        xs.append(img)
        ts.append(soft)
        ws.append(weight)
    x = torch.from_numpy(to_tensor(np.stack(xs), spec.input))
    return x, torch.from_numpy(np.stack(ts)), torch.from_numpy(np.stack(ws))


# ---------------------------------------------------------------------------------------------- training


def soft_loss(logits: torch.Tensor, soft: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Cross-entropy against soft targets, weighted per cell (0 = don't care)."""
    per_cell = -(soft * torch.log_softmax(logits, dim=1)).sum(dim=1)
    return (per_cell * weight).sum() / weight.sum().clamp(min=1.0)


def build_student(spec: StudentSpec) -> FomoNet:
    return FomoNet(len(spec.labels), width=spec.width, softmax=False, stride=spec.stride)


def run_steps(
    net: FomoNet,
    pools: Sequence[tuple[Pool, float]],
    spec: StudentSpec,
    steps: int,
    lr: float,
    seed: int,
    desc: str,
    progress: bool = True,
) -> FomoNet:
    # One thread each: torch's and OpenCV's thread pools fighting over 2 shared cores tripled the step.
    torch.set_num_threads(spec.threads)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1), pct_start=0.15)
    net.train()
    bar = tqdm(range(steps), desc=desc, unit="step", disable=not progress)
    avg = None
    for _ in bar:
        x, soft, weight = batch(pools, spec.batch_size, spec, rng)
        loss = soft_loss(net(x), soft, weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        avg = loss.item() if avg is None else 0.95 * avg + 0.05 * loss.item()
        bar.set_postfix(loss=f"{avg:.4f}")
    bar.close()
    net.eval()
    return net


def pretrained(spec: StudentSpec, cache: Path | None, progress: bool = True) -> FomoNet:
    """The student after the rendered-world stage (cached in ``cache`` by its settings' hash)."""
    torch.set_num_threads(spec.threads)
    net = build_student(spec)
    path = cache / f"pretrain-{spec.name}-{spec.pretrain_key()}.pt" if cache else None
    if path and path.exists():
        net.load_state_dict(torch.load(path, weights_only=True))
        log.info("pretrained weights from %s", path)
        return net.eval()
    rendered = rendered_pool(spec.pretrain_frames, spec.seed * 1000 + 11, progress)
    run_steps(
        net, [(rendered, 1.0)], spec, spec.pretrain_steps, spec.lr, spec.seed, "pretrain (rendered)", progress
    )
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    return net


def distil(
    spec: StudentSpec,
    frames: Sequence[Frame],
    cache: Path | None = None,
    progress: bool = True,
    rendered: Pool | None = None,
    on_pretrained: Callable[[FomoNet], None] | None = None,
) -> FomoNet:
    """Pretrained student → fine-tuned on ``frames`` (teacher-labelled, real) mixed with rendered frames.
    Returns the net with softmax on (what is exported)."""
    import copy

    real = real_pool(frames, progress)  # refuses an empty or unlabelled dataset before any training
    net = copy.deepcopy(pretrained(spec, cache, progress))
    if on_pretrained:
        on_pretrained(net)
    rendered = rendered or rendered_pool(max(spec.pretrain_frames // 3, 8), spec.seed * 1000 + 12, progress)
    pools = [(real, spec.real_fraction), (rendered, 1 - spec.real_fraction)]
    run_steps(
        net, pools, spec, spec.steps, spec.finetune_lr, spec.seed + 1, "distil (real + rendered)", progress
    )
    net.softmax = True
    return net


FOMO_REAL = StudentSpec(
    name="fomo-real",
    version="1.0.0",
    description="FOMO-style centroid detector distilled from a COCO teacher (YOLOX-nano) on real CC BY "
    "clips plus the rendered world: 256x144 RGB frame → 64x36 grid of per-cell class probabilities "
    "(person, car, bicycle).",
    labels=("background", "person", "car", "bicycle"),
    input=InputSpec(name="input", shape=(1, 3, 144, 256)),
    # width 24, not 32: at 256x144 width 32 ran 0.94 ms int8 against the teacher's 14.2 ms (1/15);
    # the goal is 1/20 of the teacher.
    width=24,
)

STUDENT_MODELS: dict[str, StudentSpec] = {FOMO_REAL.name: FOMO_REAL}
