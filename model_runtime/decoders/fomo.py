"""``fomo``: a heat map [1, N, H/s, W/s] (``params.layout`` "NHWC" for [1, H/s, W/s, N]) of per-cell
class scores. Connected cells of one class above threshold are one object (Edge Impulse's FOMO);
``params.merge_gap`` {label: [columns, rows]} first closes that label's mask with that radius (a long
truck lit twice is one object), ``params.connectivity`` {label: 4} keeps diagonal neighbours apart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from model_runtime.decoders.common import DecoderError, Outputs, pick, register, softmax
from model_runtime.detection import Detection
from shared.manifest import ModelManifest


def close_gaps(mask: np.ndarray, gap: Sequence[int] | int | None) -> np.ndarray:
    """Join blobs of one label across empty cells: a morphological closing of radius ``gap`` (columns,
    rows), so blobs at most 2 x columns apart in a row (2 x rows in a column) become one.

    A long object lit as two blobs (a truck whose middle looks like no centroid) is one object; the
    manifest sets the radius per label, tuned on validation frames (``firmware_models.evaluate``).
    """
    if not gap:
        return mask
    gx, gy = (gap, gap) if isinstance(gap, int) else gap
    return cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((2 * gy + 1, 2 * gx + 1), np.uint8))


@dataclass(frozen=True)
class Blob:
    """One object of a FOMO map, in grid cells: its label, peak score, weighted centre and cell extent."""

    label: str
    score: float
    centre: tuple[float, float]  # cells, (0.5, 0.5) = the centre of the top-left cell
    cells: tuple[int, int, int, int]  # x, y, w, h of the connected cells
    grid: tuple[int, int]  # rows, columns


def heat_map(outputs: Outputs, manifest: ModelManifest) -> np.ndarray:
    """The class-first [N, H, W] probabilities of a FOMO output (NHWC and logits handled)."""
    spec = manifest.decoder
    heat = np.asarray(pick(outputs, manifest, "heatmap", ("prob", "heat")), dtype=np.float32)
    if heat.ndim != 4 or heat.shape[0] != 1:
        raise DecoderError(f"fomo expects a [1, N, H, W] map, got {list(heat.shape)}")
    heat = heat[0]
    if spec.params.get("layout", "NCHW") == "NHWC":
        heat = heat.transpose(2, 0, 1)
    if heat.shape[0] != len(manifest.labels):
        raise DecoderError(
            f"fomo map has {heat.shape[0]} classes, manifest has {len(manifest.labels)} labels"
        )
    return softmax(heat, axis=0) if spec.apply_softmax else heat


def blobs(outputs: Outputs, manifest: ModelManifest, refine: bool | None = None) -> list[Blob]:
    """Connected cells of one class above threshold, one ``Blob`` each, best first. ``refine`` (default
    ``params.refine``, true) also weighs the ring of neighbour cells into the centre."""
    spec = manifest.decoder
    heat = heat_map(outputs, manifest)
    rows, cols = heat.shape[1:]
    winner = heat.argmax(axis=0)
    # Cells where some object class wins above threshold; usually none (an empty scene), then we are done.
    lit = heat.max(axis=0) >= spec.score_threshold
    if spec.background_index is not None:
        lit &= winner != spec.background_index
    if not lit.any():
        return []
    found: list[Blob] = []
    refine = bool(spec.params.get("refine", True)) if refine is None else refine
    ring = np.ones((3, 3), np.uint8)
    xs, ys = np.arange(cols), np.arange(rows)  # cell indices, sliced per component below
    gaps = spec.params.get("merge_gap", {})
    connectivity = spec.params.get("connectivity", {})
    # The classes present, ascending (bincount is cheaper than np.unique on a few hundred cells).
    for cls in np.flatnonzero(np.bincount(winner[lit], minlength=len(manifest.labels))).tolist():
        label = manifest.labels[cls]
        mask = close_gaps((lit & (winner == cls)).astype(np.uint8), gaps.get(label))
        count, comp, stats, _ = cv2.connectedComponentsWithStats(
            mask, connectivity=int(connectivity.get(label, 8))
        )
        for k in range(1, count):
            x, y, w, h = stats[k, :4].tolist()
            # Work in the component's bounding box (one cell wider for the ring), not the whole grid.
            x0, y0, x1, y1 = max(0, x - 1), max(0, y - 1), min(cols, x + w + 1), min(rows, y + h + 1)
            probs = heat[cls, y0:y1, x0:x1]
            own = comp[y0:y1, x0:x1] == k
            peak = float(probs[own].max())
            cells = own.view(np.uint8)
            if refine:
                # Sub-cell centre: also weigh the ring of neighbour cells by their (sub-threshold)
                # probability — an object straddling two rows lights both, so its centre is not
                # snapped to one cell centre (the grid is 4-8x coarser than the input).
                cells = cv2.dilate(cells, ring)
            weights = probs * cells
            total = float(weights.sum())
            cx = float((weights.sum(axis=0) * xs[x0:x1]).sum()) / total + 0.5
            cy = float((weights.sum(axis=1) * ys[y0:y1]).sum()) / total + 0.5
            found.append(Blob(label, peak, (cx, cy), (x, y, w, h), (rows, cols)))
    return sorted(found, key=lambda b: -b.score)


@register("fomo")
def decode_fomo(outputs: Outputs, manifest: ModelManifest) -> list[Detection]:
    """One detection per blob: centred on its weighted centre (FOMO's real output), sized by the
    cells' extent, scored by its peak cell; input pixels."""
    found = []
    for b in blobs(outputs, manifest):
        rows, cols = b.grid
        sx, sy = manifest.input.width / cols, manifest.input.height / rows
        cx, cy, w, h = b.centre[0] * sx, b.centre[1] * sy, b.cells[2] * sx, b.cells[3] * sy
        found.append(Detection(b.label, b.score, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return found
