"""The adapted model's card: README.md with its plots, so a reviewer sees why it was registered.

Plots are PNGs beside the card (matplotlib, headless): the fine-tuning loss, per-class F1 before and
after on the judge frames, and a few judge frames with both models' detections and the teacher's boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .label import Frame
from .teacher_metric import SURE

COLOURS = {"teacher": (0, 200, 255), "before": (60, 60, 230), "after": (60, 200, 60)}  # BGR


def _plots(model_dir: Path, report: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loss = np.array(report["loss"], float)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(loss, lw=0.6, alpha=0.4, label="step")
    if len(loss) >= 10:
        k = max(len(loss) // 20, 5)
        ax.plot(np.arange(k - 1, len(loss)), np.convolve(loss, np.ones(k) / k, "valid"), label=f"mean of {k}")
    ax.set_xlabel("step")
    ax.set_ylabel("soft cross-entropy")
    ax.set_title("fine-tuning loss (train frames)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(model_dir / "loss.png", dpi=100)
    plt.close(fig)

    labels = list(report["after"]["per_class"])
    before = [report["before"]["per_class"][lb]["f1"] for lb in labels]
    after = [report["after"]["per_class"][lb]["f1"] for lb in labels]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(x - 0.2, before, 0.35, label=f"base {report['base']}")
    ax.bar(x + 0.2, after, 0.35, label="adapted")
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.15)
    ax.set_ylabel("centroid F1 vs teacher")
    ax.set_title(f"judge frames ({report['frames']['judge']}, never trained on)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(model_dir / "f1.png", dpi=100)
    plt.close(fig)


def _frames_png(
    path: Path, images: Sequence[np.ndarray], before: Sequence, after: Sequence, frames: Sequence[Frame]
) -> None:
    """Up to three judge frames (the ones with most teacher boxes, spread in time) side by side:
    base on the left, adapted on the right; teacher boxes in both, detections as dots."""
    order = sorted(range(len(images)), key=lambda i: -len(frames[i].boxes))[: max(len(images) // 3, 1)]
    picks = sorted(order)[:: max(len(order) // 3, 1)][:3]
    rows = []
    for i in picks:
        pair = []
        for name, dets in (("before", before[i]), ("after", after[i])):
            img = images[i].copy()
            h, w = img.shape[:2]
            scale = 320 / w
            img = cv2.resize(img, (320, round(h * scale)), interpolation=cv2.INTER_AREA)
            h, w = img.shape[:2]
            for _lb, score, x1, y1, x2, y2 in frames[i].boxes:
                thick = 2 if score >= SURE else 1
                cv2.rectangle(
                    img, (int(x1 * w), int(y1 * h)), (int(x2 * w), int(y2 * h)), COLOURS["teacher"], thick
                )
            for d in dets:
                cx, cy = d.centroid
                cv2.circle(img, (int(cx * w), int(cy * h)), 5, COLOURS[name], -1)
            cv2.putText(img, name, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2)
            pair.append(img)
        rows.append(np.hstack(pair))
    if rows:
        width = max(r.shape[1] for r in rows)
        rows = [cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows]
        cv2.imwrite(str(path), np.vstack(rows))


def _table(report: dict[str, Any]) -> str:
    lines = [
        "| class | F1 before | F1 after | count exact before | count exact after |",
        "|---|---|---|---|---|",
    ]
    for lb, a in report["after"]["per_class"].items():
        b = report["before"]["per_class"][lb]
        lines.append(
            f"| {lb} | {b['f1']:.3f} | {a['f1']:.3f} | "
            f"{b['count_exact_rate']:.3f} | {a['count_exact_rate']:.3f} |"
        )
    b, a = report["before"], report["after"]
    lines.append(f"| **macro / all** | {b['f1']:.3f} | {a['f1']:.3f} | {b['count_exact_rate']:.3f} | "
                 f"{a['count_exact_rate']:.3f} |")  # fmt: skip
    return "\n".join(lines)


def write_adapt_card(
    model_dir: Path,
    report: dict[str, Any],
    images: Sequence[np.ndarray],
    before: Sequence,
    after: Sequence,
    frames: Sequence[Frame],
) -> Path:
    _plots(model_dir, report)
    _frames_png(model_dir / "frames.png", images, before, after, frames)
    s = report["settings"]
    text = f"""# {report["base"].split("@")[0]} adapted to one site

Adapted from **{report["base"]}** with teacher **{report["teacher"]}** on
{report["frames"]["train"]} earlier frames of this camera; judged on the {report["frames"]["judge"]}
later frames it never trained on (centroid F1 against the teacher's boxes; a count is exact when the
model finds as many objects of a class in a frame as the teacher is sure of).

{report["reason"]}.

{_table(report)}

Decoder threshold {report["tuned"]["score_threshold"]} and grouping {report["tuned"]["grouping"] or "none"},
tuned on the train frames only. Float weights from the base's `{report["weights_from"]}`;
{s["steps"]} steps of batch {s["batch"]}, learning rate {s["lr"]}; int8 calibrated on train frames.

![loss](loss.png)

![F1 per class before and after](f1.png)

![judge frames: teacher boxes (orange), base (red dots, left) and adapted (green dots, right)](frames.png)
"""
    path = model_dir / "README.md"
    path.write_text(text)
    return path
