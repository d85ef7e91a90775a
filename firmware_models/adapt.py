"""Site adaptation: a deployed FOMO student fine-tuned on one camera's own frames, judged honestly.

One function, ``adapt()``, that the hub's adapt-worker and ``python -m firmware_models adapt`` both call.
The teacher labels the site's frames (earlier ones to train on, later ones to judge on: the caller
splits by time, so the judge frames are never seen in training). The base student is rebuilt as a
float ``FomoNet`` from its ONNX weights (the fp32 export when the directory has one; otherwise the
int8 model's weights dequantized, which is all the hub registry keeps), fine-tuned with distil.py's
augmentations and soft targets on the train frames only, quantized to int8 with calibration from the
train frames, and its decoder threshold/grouping tuned on the train frames only (with ``tune_holdout``,
on the latest train frames as seen by a model fine-tuned without them). Base and adapted int8
models are then scored against the teacher on the judge frames. A model directory is written only when
the adapted model is better there; every refusal before that is an ``AdaptError`` naming the reason.

No rendered frames are mixed in: the goal is this camera, and the base's rendered labels (e.g. truck)
need not match the teacher's class map; forgetting other scenes is the price, paid knowingly.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shared.manifest import DecoderType, ManifestError, ModelManifest, load_manifest
from shared.rollout import site_version

from .label import DEFAULT_CLASS_MAP, Frame, LabelError, load_teacher
from .teacher_metric import SURE, teacher_f1

STAGES = ("label", "train", "quantize", "evaluate", "card")
DIVERGED = 20.0  # a smoothed loss this many times the first steps' loss: training ran away


class AdaptError(ValueError):
    """Adaptation cannot go on (bad input, nothing to learn or judge, training diverged); the message
    says why. Raised before any model is written."""


@dataclass(frozen=True)
class AdaptSettings:
    steps: int = 1000  # chosen on the train split only: python -m benchmarks.adapt --select (docs/adapt.md)
    lr: float = 5e-4  # fine-tuning a trained net without BatchNorm (folded at export): gentle
    batch: int = 16
    min_train_frames: int = 20
    min_judge_frames: int = 10
    min_gain: float = 0.0  # better = after macro F1 > before macro F1 + min_gain on the judge frames
    threads: int = 1
    seed: int = 1
    calibration_frames: int = 60
    tune_frames: int = 200
    # > 0: the latest share of the train frames is held out of a first fine-tuning run, the threshold and
    # grouping are tuned on it (frames that model never saw, as the judge frames will be), then the model
    # is fine-tuned again on all train frames and ships with them. 0: tuned on frames it was trained on.
    tune_holdout: float = 0.0

    def smoke(self) -> AdaptSettings:
        """A few steps on a few frames: proves every stage runs, not that the result is good."""
        return replace(
            self,
            steps=3,
            batch=4,
            min_train_frames=2,
            min_judge_frames=2,
            calibration_frames=4,
            tune_frames=8,
        )


@dataclass(frozen=True)
class AdaptProgress:
    stage: str  # one of STAGES, in that order
    done: int
    total: int
    message: str = ""


Progress = Callable[[AdaptProgress], None]


# ------------------------------------------------------------------------------------------ the base


@dataclass
class Base:
    dir: Path
    manifest: ModelManifest
    model: Path  # the int8 model the device runs
    weights: dict[str, np.ndarray]  # float conv weights by torch parameter name
    source: str  # which file the float weights came from


def load_base(base: Path) -> Base:
    """The device's student as the registry stores it; refuses anything that is not a FOMO student."""
    base = Path(base)
    if not (base / "manifest.json").is_file():
        raise AdaptError(f"base {base}: no manifest.json (expected a student model directory)")
    try:
        manifest, model = load_manifest(base)
    except (ManifestError, ValueError) as exc:
        raise AdaptError(f"base {base}: {exc}") from None
    if manifest.decoder.type != DecoderType.FOMO or manifest.task != "detection":
        raise AdaptError(
            f"base {manifest.ref}: a {manifest.task} model with a {manifest.decoder.type.value} decoder, "
            "not a FOMO student; only FOMO students can be adapted"
        )
    fp32 = base / str(manifest.quantization.get("fp32_file", "model.fp32.onnx"))
    source = fp32 if fp32.is_file() else model
    try:
        weights = onnx_weights(source)
    except Exception as exc:  # noqa: BLE001 - any unreadable model is the same refusal
        raise AdaptError(f"base {manifest.ref}: cannot read weights from {source.name}: {exc}") from None
    if not weights:
        raise AdaptError(f"base {manifest.ref}: {source.name} holds no convolution weights")
    return Base(base, manifest, model, weights, source.name)


def onnx_weights(path: Path) -> dict[str, np.ndarray]:
    """Float initializers by name; an int8 QDQ model's ``X_quantized`` weights dequantized back to ``X``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = {k: v.astype(np.float32) for k, v in inits.items() if v.dtype == np.float32 and v.ndim >= 1}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = inits[node.input[0]].astype(np.float32)
        scale = inits[node.input[1]].astype(np.float32)
        zero = inits[node.input[2]].astype(np.float32) if len(node.input) > 2 else np.zeros_like(scale)
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and q.ndim > 1:
            shape = [1] * q.ndim
            shape[axis] = -1
            scale, zero = scale.reshape(shape), zero.reshape(shape)
        name = node.input[0].removesuffix("_quantized")
        out[name] = (q - zero) * scale
    return {k: v for k, v in out.items() if k.endswith((".weight", ".bias"))}


def base_net(base: Base):
    """A float FomoNet (BatchNorm folded, as exported) carrying the base's weights."""
    import torch

    from .nets import FomoNet, fuse_batchnorm

    m = base.manifest
    first = base.weights.get("trunk.0.weight", base.weights.get("quarter.0.weight"))
    if first is None:
        raise AdaptError(f"base {m.ref}: its weights are not a FomoNet's (no first convolution)")
    head = "skip" if "quarter.0.weight" in base.weights else "shuffle"
    try:
        stride = int(m.decoder.params["stride"])
        net = FomoNet(len(m.labels), width=int(first.shape[0]) * 2, softmax=False, stride=stride, head=head)
        net = fuse_batchnorm(net.eval())
        state = net.state_dict()
        missing = sorted(set(state) - set(base.weights))
        if missing:
            raise ValueError(f"missing {', '.join(missing[:4])}")
        net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(base.weights[k])) for k in state})
    except (KeyError, ValueError, RuntimeError) as exc:
        raise AdaptError(f"base {m.ref}: its weights do not fit a FomoNet ({exc})") from None
    return net


def class_map_for(teacher_labels: Sequence[str], student_labels: Sequence[str]) -> dict[str, str]:
    """Teacher class → the base's label: the same name when the base has it (fomo-street's truck),
    else the default map's target when the base has that."""
    out = {}
    for t in teacher_labels:
        if t in student_labels[1:]:
            out[t] = t
        elif DEFAULT_CLASS_MAP.get(t) in student_labels[1:]:
            out[t] = DEFAULT_CLASS_MAP[t]
    return out


# ------------------------------------------------------------------------------------------ stages


def label_frames(
    teacher: Path, images: Sequence[np.ndarray], labels: Sequence[str], work: Path, tick: Callable[[], None]
) -> tuple[list[Frame], str]:
    """The teacher's boxes (mapped to the base's labels) on each frame, and the teacher's ref."""
    from .evaluate import metric_labels

    try:
        runtime = load_teacher(teacher, work)
    except LabelError as exc:
        raise AdaptError(str(exc)) from None
    class_map = class_map_for(metric_labels(runtime.manifest), labels)
    if not class_map:
        raise AdaptError(
            f"teacher {runtime.manifest.ref} has none of the base's classes ({', '.join(labels[1:])})"
        )
    threshold = runtime.manifest.decoder.score_threshold
    frames = []
    for i, image in enumerate(images):
        h, w = image.shape[:2]
        boxes = [
            (class_map[d.label], round(float(d.score), 4), *(float(v) for v in d.box))
            for d in runtime.detect(image)
            if d.label in class_map and d.score >= threshold
        ]
        frames.append(Frame("site", i, Path(""), w, h, boxes))
        tick()
    return frames, runtime.manifest.ref


def fine_tune(
    net, base: Base, images: Sequence[np.ndarray], frames: Sequence[Frame], s: AdaptSettings, report: Progress
) -> tuple[Any, list[float]]:
    """distil.py's augmentations and soft targets on the train frames; the loss of every step."""
    import torch

    from .distil import REAL_SIDE, Pool, StudentSpec, batch, soft_loss

    m = base.manifest
    spec = StudentSpec(
        name=m.name, version=m.version, description=m.description, labels=tuple(m.labels), input=m.input,
        stride=int(m.decoder.params["stride"]), batch_size=s.batch, threads=s.threads, seed=s.seed,
    )  # fmt: skip
    small = []
    for img in images:
        h, w = img.shape[:2]
        if w > REAL_SIDE:
            img = cv2.resize(img, (REAL_SIDE, round(h * REAL_SIDE / w)), interpolation=cv2.INTER_AREA)
        small.append(img)
    pool = Pool(small, [list(f.boxes) for f in frames], np.full(len(small), 1.0 / len(small)))
    torch.set_num_threads(s.threads)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(s.seed)
    torch.manual_seed(s.seed)
    opt = torch.optim.AdamW(net.parameters(), lr=s.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=s.lr, total_steps=max(s.steps, 1), pct_start=0.15)
    net.train()
    losses: list[float] = []
    first = avg = None
    for step in range(s.steps):
        x, soft, weight = batch([(pool, 1.0)], s.batch, spec, rng)
        loss = soft_loss(net(x), soft, weight)
        value = float(loss.item())
        if not math.isfinite(value):
            raise AdaptError(f"training diverged: loss {value} at step {step + 1} of {s.steps}")
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(round(value, 5))
        avg = value if avg is None else 0.9 * avg + 0.1 * value
        if step == min(4, s.steps - 1):
            first = float(np.mean(losses))
        if first is not None and avg > DIVERGED * max(first, 1e-3):
            raise AdaptError(
                f"training diverged: smoothed loss {avg:.3g} at step {step + 1} is over {DIVERGED:g}x the "
                f"first steps' {first:.3g}"
            )
        report(AdaptProgress("train", step + 1, s.steps, f"loss {avg:.4f}"))
    net.eval()
    net.softmax = True
    return net, losses


def sure_counts(boxes: Sequence[tuple], labels: Sequence[str]) -> dict[str, int]:
    return {lb: sum(1 for b in boxes if b[0] == lb and b[1] >= SURE) for lb in labels}


def score_on(
    model: Path, manifest: ModelManifest, frames: Sequence[Frame], images: list[np.ndarray], labels: list[str]
) -> tuple[dict[str, Any], list]:
    """Per-class centroid F1 against the teacher and the per-frame count exact rate (the teacher's sure
    boxes vs the model's detections, per class)."""
    from .evaluate import detections, predict

    dets = detections(predict(model, manifest, images, f"judge {manifest.ref}"), manifest, images)
    grid = tuple(manifest.decoder.params["grid"])
    boxes = [f.boxes for f in frames]
    f1 = teacher_f1(dets, boxes, labels, grid)
    strict = teacher_f1(dets, boxes, labels, grid, strict=True)
    exact = {lb: 0 for lb in labels}
    all_exact = 0
    for frame_dets, frame in zip(dets, frames, strict=True):
        want = sure_counts(frame.boxes, labels)
        got = {lb: sum(1 for d in frame_dets if d.label == lb) for lb in labels}
        for lb in labels:
            exact[lb] += want[lb] == got[lb]
        all_exact += want == got
    n = max(len(frames), 1)
    per_class = {
        lb: {**f1["per_class"].get(lb, {"f1": 0.0}), "count_exact_rate": round(exact[lb] / n, 4)}
        for lb in labels
    }
    return {
        "model": manifest.ref,
        "f1": f1["value"],
        "f1_strict": strict["value"],
        "per_class": per_class,
        "count_exact_rate": round(all_exact / n, 4),
        "score_threshold": manifest.decoder.score_threshold,
    }, dets


# ------------------------------------------------------------------------------------------ adapt()


def _check_frames(name: str, frames: Sequence[np.ndarray], least: int) -> None:
    for i, f in enumerate(frames):
        if not (isinstance(f, np.ndarray) and f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3):
            raise AdaptError(f"{name} frame {i}: not a BGR uint8 image (HxWx3)")
    if len(frames) < least:
        raise AdaptError(f"too few {name} frames: {len(frames)}, at least {least} needed")


def default_version(base_version: str) -> str:
    """A site build named by its UTC time: 2.1.1 -> 2.1.2-site.<utc>."""
    return site_version(base_version, f"{datetime.now(UTC):%Y%m%d-%H%M%S}")


def adapt(
    *,
    teacher: Path,
    base: Path,
    train: Sequence[np.ndarray],
    judge: Sequence[np.ndarray],
    out: Path,
    settings: AdaptSettings = AdaptSettings(),
    version: str | None = None,
    on_progress: Callable[[AdaptProgress], None] | None = None,
) -> dict:
    """Label, fine-tune, quantize, judge; ``out/report.json`` always, ``out/model/`` only when better."""
    s = settings
    report_progress: Progress = on_progress or (lambda p: None)
    _check_frames("train", train, s.min_train_frames)
    _check_frames("judge", judge, s.min_judge_frames)
    b = load_base(Path(base))
    m = b.manifest
    net = base_net(b)
    version = version or default_version(m.version)
    try:
        ModelManifest.model_validate({**m.model_dump(mode="json"), "version": version})
    except ValueError:
        raise AdaptError(f"version {version!r} is not a version a manifest accepts (semver)") from None
    seconds: dict[str, float] = {}
    out = Path(out)
    for stale in (out / "report.json", out / "model"):  # a previous run's output must not pass for this one's
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    with tempfile.TemporaryDirectory(prefix="adapt-") as tmp:
        work = Path(tmp)
        # label ------------------------------------------------------------------------------------
        t0 = time.perf_counter()
        total = len(train) + len(judge)
        done = [0]

        def tick() -> None:
            done[0] += 1
            report_progress(AdaptProgress("label", done[0], total, "teacher boxes on the frames"))

        report_progress(AdaptProgress("label", 0, total, "loading the teacher"))
        both, teacher_ref = label_frames(Path(teacher), [*train, *judge], m.labels, work / "teacher", tick)
        train_frames, judge_frames = both[: len(train)], both[len(train) :]
        if not any(b[1] >= SURE for f in train_frames for b in f.boxes):
            raise AdaptError(
                f"the teacher found nothing sure on the {len(train)} train frames: nothing to learn"
            )
        labels = [lb for lb in m.labels[1:] if any(sure_counts(f.boxes, [lb])[lb] for f in judge_frames)]
        if not labels:
            raise AdaptError(
                f"the teacher found nothing sure on the {len(judge)} judge frames: nothing to judge by"
            )
        seconds["label"] = round(time.perf_counter() - t0, 2)
        # train, quantize, tune --------------------------------------------------------------------
        from .student_build import student_manifest_like

        new = adapted_manifest(m, version, teacher_ref)
        held = _held_out(train_frames, s)
        if held:
            t0 = time.perf_counter()
            fit = len(train) - held
            say = f"fine-tuning on {fit} frames to tune the threshold on the {held} after them"
            report_progress(AdaptProgress("train", 0, s.steps, say))
            probe, _ = fine_tune(copy.deepcopy(net), b, train[:fit], train_frames[:fit], s, report_progress)
            seconds["train_probe"] = round(time.perf_counter() - t0, 2)
            t0 = time.perf_counter()
            (_, probe_int8), _ = _int8(probe, new, train[:fit], work / "probe", s)
            tuned_on = f"the latest {held} train frames, held out of a first fine-tuning run"
            threshold, params, tuned = _tune(probe_int8, new, train_frames[fit:], train[fit:], labels, s)
            seconds["tune"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        report_progress(AdaptProgress("train", 0, s.steps, f"fine-tuning {m.ref} on {len(train)} frames"))
        net, losses = fine_tune(copy.deepcopy(net), b, train, train_frames, s, report_progress)
        seconds["train"] = round(time.perf_counter() - t0, 2)
        # quantize ---------------------------------------------------------------------------------
        t0 = time.perf_counter()
        report_progress(AdaptProgress("quantize", 0, 3, "export"))
        (fp32, int8), quant = _int8(net, new, train, work / "model", s)
        if not held:
            report_progress(AdaptProgress("quantize", 2, 3, "threshold on the train frames"))
            tuned_on = "the train frames (the model was fine-tuned on them)"
            threshold, params, tuned = _tune(int8, new, train_frames, train, labels, s)
        tune_images = _spread(train, s.tune_frames)
        new = student_manifest_like(new, params)
        new = new.model_copy(
            update={"decoder": new.decoder.model_copy(update={"score_threshold": threshold})}
        )
        report_progress(AdaptProgress("quantize", 3, 3, f"threshold {threshold}"))
        seconds["quantize"] = round(time.perf_counter() - t0, 2)
        # evaluate ---------------------------------------------------------------------------------
        t0 = time.perf_counter()
        report_progress(AdaptProgress("evaluate", 0, 2, f"{m.ref} on {len(judge)} judge frames"))
        judge_images = list(judge)
        before, before_dets = score_on(b.model, m, judge_frames, judge_images, labels)
        report_progress(AdaptProgress("evaluate", 1, 2, f"adapted on {len(judge)} judge frames"))
        after, after_dets = score_on(int8, new, judge_frames, judge_images, labels)
        report_progress(AdaptProgress("evaluate", 2, 2, f"F1 {before['f1']} -> {after['f1']}"))
        seconds["evaluate"] = round(time.perf_counter() - t0, 2)
        improved = after["f1"] > before["f1"] + s.min_gain
        reason = (
            f"macro F1 vs the teacher on {len(judge)} later frames {before['f1']:.4f} -> {after['f1']:.4f}"
            + (f" (needed more than +{s.min_gain:g})" if s.min_gain else "")
            + ("" if improved else ": not better, nothing written")
        )
        report: dict[str, Any] = {
            "before": before,
            "after": after,
            "improved": bool(improved),
            "reason": reason,
            "loss": losses,
            "frames": {"train": len(train), "judge": len(judge)},
            "seconds": seconds,
            "model": None,
            "base": m.ref,
            "teacher": teacher_ref,
            "weights_from": b.source,
            "labels_judged": labels,
            "tuned": {"score_threshold": threshold, "grouping": params, "f1": tuned, "on": tuned_on},
            "settings": asdict(s),
        }
        out.mkdir(parents=True, exist_ok=True)
        # card -------------------------------------------------------------------------------------
        t0 = time.perf_counter()
        report_progress(AdaptProgress("card", 0, 1, "model directory and card" if improved else "report"))
        if improved:
            model_dir = out / "model"
            if model_dir.exists():
                shutil.rmtree(model_dir)
            finish_model(new, fp32, int8, quant, report, tune_images, model_dir)
            from .adapt_card import write_adapt_card

            write_adapt_card(model_dir, report, judge_images, before_dets, after_dets, judge_frames)
            report["model"] = {"name": m.name, "version": version, "dir": str(model_dir)}
        seconds["card"] = round(time.perf_counter() - t0, 2)
        report_progress(AdaptProgress("card", 1, 1, "done"))
    partial = out / "report.json.partial"
    partial.write_text(json.dumps(report, indent=2, default=str))
    partial.replace(out / "report.json")  # the hub reads a report.json as "finished"
    return report


def _held_out(frames: Sequence[Frame], s: AdaptSettings) -> int:
    """How many of the latest train frames to tune on: 0 unless ``tune_holdout`` is set and they hold a
    sure teacher box (with nothing sure to find, a threshold cannot be chosen on them)."""
    held = int(round(len(frames) * s.tune_holdout))
    if held < 1 or held >= len(frames):
        return 0
    return held if any(b[1] >= SURE for f in frames[-held:] for b in f.boxes) else 0


def _int8(net, manifest: ModelManifest, train: Sequence[np.ndarray], out: Path, s: AdaptSettings):
    """Export ``net`` and quantize it with calibration frames spread over ``train``."""
    from .export import export_onnx
    from .quantize import QuantizeFailed, quantize_model

    fp32, int8 = out / "model.fp32.onnx", out / manifest.file
    export_onnx(net, manifest, fp32)
    pick = _spread(list(train), s.calibration_frames)
    try:
        quant = quantize_model(
            fp32, int8, manifest, pick, progress=False,
            calibration_source=f"teacher-labelled site frames (train split, {len(pick)})",
        )  # fmt: skip
    except QuantizeFailed as exc:
        raise AdaptError(f"int8 quantization failed: {exc}") from None
    return (fp32, int8), quant


def _tune(
    int8: Path,
    manifest: ModelManifest,
    frames: Sequence[Frame],
    images: Sequence[np.ndarray],
    judged: list[str],
    s: AdaptSettings,
) -> tuple[float, dict, float]:
    """Threshold and grouping with the best macro F1 on (at most ``tune_frames`` of) these frames."""
    from .student_build import tune

    idx = _spread(list(range(len(frames))), s.tune_frames)
    frames, images = [frames[i] for i in idx], [images[i] for i in idx]
    labels = [lb for lb in manifest.labels[1:] if any(sure_counts(f.boxes, [lb])[lb] for f in frames)]
    return tune(int8, manifest, frames, list(images), labels or judged)


def _spread(items: list, most: int) -> list:
    """At most ``most`` items, evenly spread, first and last included."""
    idx = np.unique(np.linspace(0, len(items) - 1, min(most, len(items))).astype(int))
    return [items[int(i)] for i in idx]


def adapted_manifest(m: ModelManifest, version: str, teacher_ref: str) -> ModelManifest:
    return m.model_copy(
        update={
            "version": version,
            "description": f"{m.description.rstrip('.')}. Adapted to one site from {m.ref} "
            f"(teacher {teacher_ref}).",
            "sha256": None,
            "size_bytes": None,
            "golden": None,
            "metrics": {},
            "quantization": {},
        }
    )


def finish_model(
    manifest: ModelManifest,
    fp32: Path,
    int8: Path,
    quant: dict[str, Any],
    report: dict[str, Any],
    tune_images: list[np.ndarray],
    model_dir: Path,
) -> ModelManifest:
    """The candidate files into ``model_dir`` with a golden file and a complete manifest."""
    from .golden import write_golden
    from .release import release_manifest
    from .student_build import _stamp

    model_dir.mkdir(parents=True)
    shutil.copy2(fp32, model_dir / fp32.name)
    shutil.copy2(int8, model_dir / int8.name)
    fp32, int8 = model_dir / fp32.name, model_dir / int8.name
    _stamp(manifest, fp32, int8)
    golden = write_golden(int8, manifest, tune_images[len(tune_images) // 2], atol=0.1)
    after, before = report["after"], report["before"]
    metrics = {
        "adapted_from": report["base"],
        "teacher": report["teacher"],
        "teacher_centroid_f1_judge": after["f1"],
        "base_teacher_centroid_f1_judge": before["f1"],
        "count_exact_rate_judge": after["count_exact_rate"],
        "judge_frames": report["frames"]["judge"],
        "train_frames": report["frames"]["train"],
    }
    manifest = release_manifest(manifest, int8, fp32, golden, metrics, quant)
    (model_dir / "manifest.json").write_text(manifest.to_json())
    return manifest
