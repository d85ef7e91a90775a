"""``python -m firmware_models label``: a real teacher's boxes on real frames → a COCO-format dataset.

Why COCO JSON: it is the standard every detection tool reads; one ``annotations.json`` holds every
frame and box (easy to diff, check and load), and each annotation keeps the teacher's ``score`` (as in
COCO's own results format) so the student can learn soft targets. Frames are written as JPEG files
under ``images/<clip>/`` (quality 95) and each image entry also names its source clip and frame index.

The teacher runs through ``model_runtime`` (the agent's own preprocessing and decoders), and its labels
are mapped to the student's with a class map (default: person → person; car, bus, truck → car;
bicycle, motorcycle → bicycle). Anything wrong — a teacher the runtime cannot decode, a clip that cannot
be opened, a class map naming a class the teacher or student does not have — is a ``LabelError`` naming it.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from model_runtime import ModelRuntime
from model_runtime.decoders import DecoderError
from model_runtime.runtime import ModelLoadError
from shared.manifest import ManifestError, ModelManifest, sha256_file

from .calibration import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from .evaluate import metric_labels

STUDENT_LABELS = ("person", "car", "bicycle")
DEFAULT_CLASS_MAP = {
    "person": "person",
    "car": "car",
    "bus": "car",
    "truck": "car",
    "bicycle": "bicycle",
    "motorcycle": "bicycle",
}
JPEG_QUALITY = 95


class LabelError(ValueError):
    """The teacher, a source, the class map or a dataset is unusable; the message names which and why."""


@dataclass
class Frame:
    """One labelled frame of a dataset, as the student trainer reads it."""

    clip: str
    index: int
    path: Path
    width: int
    height: int
    # (label, score, x1, y1, x2, y2) normalised 0..1
    boxes: list[tuple[str, float, float, float, float, float]] = field(default_factory=list)

    def image(self) -> np.ndarray:
        img = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
        if img is None:
            raise LabelError(f"{self.path}: dataset image missing or unreadable")
        return img


def load_teacher(path: str | Path, work: Path | None = None) -> ModelRuntime:
    """A teacher as the runtime runs it: a model folder with manifest.json, an ``.onnx`` export (imported
    first, as ``python -m firmware_models import`` would), or a folder holding exactly one export."""
    from .importer import ImportFailed, import_model

    path = Path(path)
    if not path.exists():
        raise LabelError(f"teacher {path}: no such file or folder")
    model_dir = path
    if not (path.is_dir() and (path / "manifest.json").exists()):
        if path.is_dir():
            exports = sorted(path.glob("*.onnx"))
            if len(exports) != 1:
                names = ", ".join(p.name for p in exports) or "none"
                raise LabelError(
                    f"teacher {path}: a folder must hold manifest.json or exactly one .onnx export "
                    f"(found: {names}); pass the file itself"
                )
            path = exports[0]
        model_dir = Path(work or tempfile.mkdtemp(prefix="teacher-")) / path.stem
        try:
            import_model(path, model_dir)
        except ImportFailed as exc:
            raise LabelError(f"teacher {path}: {exc}") from None
    try:
        runtime = ModelRuntime(model_dir)
    except (ModelLoadError, ManifestError) as exc:
        raise LabelError(f"teacher {path}: {exc}") from None
    if runtime.manifest.task != "detection":
        raise LabelError(f"teacher {path}: a {runtime.manifest.task} model, not a detector")
    probe = np.full((runtime.manifest.input.height, runtime.manifest.input.width, 3), 114, np.uint8)
    try:
        runtime.detect(probe)
    except (DecoderError, ValueError, KeyError, IndexError) as exc:
        raise LabelError(f"teacher {path}: the runtime cannot decode its outputs: {exc}") from None
    return runtime


def check_class_map(
    class_map: dict[str, str], teacher: ModelManifest, student_labels: Iterable[str]
) -> dict[str, str]:
    """Every teacher class the map names must be one the teacher emits, every target a student label."""
    emitted = set(metric_labels(teacher))
    student = set(student_labels)
    unknown = sorted(k for k in class_map if k not in emitted)
    if unknown:
        raise LabelError(
            f"class map: teacher {teacher.name} has no class {', '.join(unknown)} "
            f"(it emits {', '.join(sorted(emitted))})"
        )
    bad = sorted({v for v in class_map.values() if v not in student})
    if bad:
        raise LabelError(
            f"class map: {', '.join(bad)} not among the student's labels ({', '.join(sorted(student))})"
        )
    if not class_map:
        raise LabelError("class map is empty: no teacher class would become a label")
    return dict(class_map)


def parse_class_map(items: list[str] | None) -> dict[str, str]:
    """``teacher=student`` pairs (CLI ``--map``); none → the default map."""
    if not items:
        return dict(DEFAULT_CLASS_MAP)
    out = {}
    for item in items:
        teacher, sep, student = item.partition("=")
        if not sep or not teacher.strip() or not student.strip():
            raise LabelError(f"class map entry {item!r}: expected TEACHER=STUDENT, e.g. bus=car")
        out[teacher.strip()] = student.strip()
    return out


def _source_files(sources: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES)
            if not inside:
                raise LabelError(f"{path}: no videos or images in this folder")
            files += inside
        elif path.exists():
            files.append(path)
        else:
            raise LabelError(f"{path}: no such file or folder")
    return files


def _clip_frames(path: Path) -> tuple[int, Iterator[np.ndarray]]:
    """(frame count or 0 when unknown, frames) of a video or a single image."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise LabelError(f"{path}: cannot read this image")
        return 1, iter([image])
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read() if cap.isOpened() else (False, None)
    if not ok:
        cap.release()
        raise LabelError(f"{path}: cannot open this video (or it has no frames)")
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def gen() -> Iterator[np.ndarray]:
        frame = first
        try:
            while frame is not None:
                yield frame
                ok, frame = cap.read()
                if not ok:
                    return
        finally:
            cap.release()

    return max(total, 0), gen()


def label(
    teacher: str | Path,
    sources: Iterable[str | Path],
    out: str | Path,
    class_map: dict[str, str] | None = None,
    student_labels: tuple[str, ...] = STUDENT_LABELS,
    min_score: float | None = None,
    every: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the teacher over every ``every``-th frame of each source; write ``out/annotations.json`` and
    ``out/images/``; return the summary (frames, boxes per class, frames with none, per clip)."""
    out = Path(out)
    files = _source_files(sources)  # every source checked before the teacher spends a second
    opened = [(f, *_clip_frames(f)) for f in files]
    runtime = load_teacher(teacher, out / ".teacher")
    class_map = check_class_map(class_map or DEFAULT_CLASS_MAP, runtime.manifest, student_labels)
    threshold = runtime.manifest.decoder.score_threshold if min_score is None else min_score
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(student_labels)]
    cat_id = {c["name"]: c["id"] for c in categories}
    images, annotations = [], []
    per_class: Counter[str] = Counter()
    per_clip: dict[str, dict[str, Any]] = {}
    empty = 0
    used_names: set[str] = set()
    for path, total, frames in opened:
        clip = path.stem
        while clip in used_names:
            clip += "_"
        used_names.add(clip)
        (out / "images" / clip).mkdir(parents=True, exist_ok=True)
        stats = {"source": str(path), "frames": 0, "boxes": Counter(), "frames_with_none": 0}
        bar = tqdm(frames, total=total or None, desc=f"label {clip[:28]}", unit="frame", disable=not progress)
        for index, frame in enumerate(bar):
            if index % every:
                continue
            h, w = frame.shape[:2]
            name = f"images/{clip}/{index:06d}.jpg"
            cv2.imwrite(str(out / name), frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            image_id = len(images) + 1
            images.append(
                {
                    "id": image_id,
                    "file_name": name,
                    "width": w,
                    "height": h,
                    "clip": clip,
                    "frame_index": index,
                }
            )
            kept = 0
            for det in runtime.detect(frame):
                student = class_map.get(det.label)
                if student is None or det.score < threshold:
                    continue
                x1, y1, x2, y2 = (det.box[0] * w, det.box[1] * h, det.box[2] * w, det.box[3] * h)
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": image_id,
                        "category_id": cat_id[student],
                        "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                        "area": round((x2 - x1) * (y2 - y1), 1),
                        "iscrowd": 0,
                        "score": round(float(det.score), 4),
                        "teacher_label": det.label,
                    }
                )
                per_class[student] += 1
                stats["boxes"][student] += 1
                kept += 1
            stats["frames"] += 1
            if not kept:
                empty += 1
                stats["frames_with_none"] += 1
        per_clip[clip] = {**stats, "boxes": dict(stats["boxes"])}
    teacher_file = runtime.model_path
    dataset = {
        "info": {
            "description": "frames labelled by a teacher detector (python -m firmware_models label)",
            "teacher": runtime.manifest.ref,
            "teacher_sha256": sha256_file(teacher_file),
            "min_score": threshold,
            "class_map": class_map,
            "every": every,
        },
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    (out / "annotations.json").write_text(json.dumps(dataset, indent=1))
    summary = {
        "dataset": str(out / "annotations.json"),
        "teacher": runtime.manifest.ref,
        "frames": len(images),
        "boxes": {n: per_class.get(n, 0) for n in student_labels},
        "frames_with_none": empty,
        "clips": per_clip,
    }
    if not annotations:
        raise LabelError(
            f"{out}: the teacher found no {', '.join(student_labels)} in {len(images)} frames; "
            "the dataset has no labels (wrote it anyway for inspection)"
        )
    return summary


def load_dataset(path: str | Path) -> tuple[list[Frame], tuple[str, ...], dict[str, Any]]:
    """Frames with their boxes, the category names, and the dataset's info; refuses an empty dataset."""
    path = Path(path)
    file = path / "annotations.json" if path.is_dir() else path
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise LabelError(f"{file}: no dataset here (python -m firmware_models label writes one)") from None
    except json.JSONDecodeError as exc:
        raise LabelError(f"{file}: not JSON: {exc}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise LabelError(f"{file}: not a COCO dataset (no {key!r} list)")
    names = {c["id"]: c["name"] for c in data["categories"]}
    frames: dict[int, Frame] = {}
    for img in data["images"]:
        frames[img["id"]] = Frame(
            img.get("clip", Path(img["file_name"]).parent.name),
            int(img.get("frame_index", img["id"])),
            file.parent / img["file_name"],
            int(img["width"]),
            int(img["height"]),
        )
    for ann in data["annotations"]:
        frame = frames.get(ann["image_id"])
        if frame is None:
            raise LabelError(
                f"{file}: annotation {ann.get('id')} names image {ann['image_id']}, not in images"
            )
        if ann["category_id"] not in names:
            raise LabelError(f"{file}: annotation {ann.get('id')} has unknown category {ann['category_id']}")
        x, y, bw, bh = ann["bbox"]
        frame.boxes.append(
            (
                names[ann["category_id"]],
                float(ann.get("score", 1.0)),
                x / frame.width,
                y / frame.height,
                (x + bw) / frame.width,
                (y + bh) / frame.height,
            )
        )
    if not frames:
        raise LabelError(f"{file}: the dataset has no frames")
    if not data["annotations"]:
        raise LabelError(f"{file}: the dataset has no labels (no teacher boxes in {len(frames)} frames)")
    ordered = sorted(frames.values(), key=lambda f: (f.clip, f.index))
    return ordered, tuple(names[k] for k in sorted(names)), data.get("info", {})
