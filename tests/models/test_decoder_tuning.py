"""FOMO decoder settings tuned on validation frames (``merge_gap`` and ``connectivity`` per label), and
the toolchain's reference decoder agreeing with the edge agent's on them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from firmware_models.evaluate import EvalSet, tune_grouping
from model_runtime.decoders.fomo import decode_fomo
from shared.manifest import ManifestError, ModelManifest, parse_manifest
from synthetic_world import TruthObject

GRID_H, GRID_W = 8, 16


def manifest_data(params: dict | None = None) -> dict:
    return {
        "name": "toy-fomo",
        "version": "1.0.0",
        "task": "detection",
        "input": {"name": "input", "shape": [1, 3, 32, 64]},
        "outputs": [{"name": "probs", "shape": [1, 3, GRID_H, GRID_W]}],
        "decoder": {
            "type": "fomo",
            "score_threshold": 0.5,
            "background_index": 0,
            "params": params or {},
        },
        "labels": ["background", "person", "truck"],
    }


def manifest(params: dict | None = None) -> ModelManifest:
    return ModelManifest.model_validate(manifest_data(params))


def lit(cells: list[tuple[int, int, int]]) -> np.ndarray:
    """A heat map with background everywhere except ``(class, row, column)`` cells at 0.9."""
    heat = np.zeros((1, 3, GRID_H, GRID_W), np.float32)
    heat[0, 0] = 1.0
    for cls, row, col in cells:
        heat[0, :, row, col] = 0.0
        heat[0, cls, row, col] = 0.9
    return heat


def truth(track_id: int, label: str, col: float, row: float) -> TruthObject:
    cx, cy = (col + 0.5) / GRID_W, (row + 0.5) / GRID_H
    return TruthObject(track_id, label, (cx - 0.05, cy - 0.05, cx + 0.05, cy + 0.05), (cx, cy), 1.0)


def test_grouping_joins_a_label_lit_twice_and_splits_diagonal_neighbours() -> None:
    # Each frame: one truck whose two ends light (cells 2-3 and 7-8, its centre in cell 5); two people
    # 4 columns apart, and two more diagonally adjacent (cells (5, 11) and (6, 12)); the truck sits at
    # a different row in every frame.
    outputs, truths = [], []
    for k in range(12):
        row = k % 4
        cells = [
            (2, row, 2),
            (2, row, 3),
            (2, row, 7),
            (2, row, 8),
            (1, 6, 2),
            (1, 6, 6),
            (1, 5, 11),
            (1, 6, 12),
        ]
        outputs.append([lit(cells)])
        people = [truth(2 + i, "person", c, r) for i, (r, c) in enumerate([(6, 2), (6, 6), (5, 11), (6, 12)])]
        truths.append([truth(1, "truck", 5.0, row), *people])
    frames = [np.zeros((32, 64, 3), np.uint8)] * len(outputs)
    params = tune_grouping(manifest(), outputs, EvalSet(frames, "toy", truths=truths))
    assert params["connectivity"] == {"person": 4}
    assert set(params["merge_gap"]) == {"truck"}
    gx, gy = params["merge_gap"]["truck"]
    assert 2 * gx >= 3  # it bridges the 3 empty columns between the ends


def test_grouping_keeps_the_default_when_nothing_gains() -> None:
    outputs = [[lit([(2, 1, 3), (1, 6, 2), (1, 6, 6)])]] * 6
    truths = [[truth(1, "truck", 3, 1), truth(2, "person", 2, 6), truth(3, "person", 6, 6)]] * 6
    frames = [np.zeros((32, 64, 3), np.uint8)] * 6
    assert tune_grouping(manifest(), outputs, EvalSet(frames, "toy", truths=truths)) == {}


def test_the_runtime_decoder_applies_the_tuned_grouping() -> None:
    heat = lit(
        [(2, 2, 2), (2, 2, 3), (2, 2, 7), (2, 2, 8), (2, 5, 12), (1, 6, 2), (1, 6, 6), (1, 5, 9), (1, 6, 10)]
    )
    spec = manifest({"merge_gap": {"truck": [2, 1]}, "connectivity": {"person": 4}, "refine": False})
    found = decode_fomo({"probs": heat}, spec)
    # The truck's two ends are one, the far truck stays apart; four people, the diagonal pair split.
    assert sorted(d.label for d in found) == ["person"] * 4 + ["truck"] * 2
    centres = sorted(((b[0] + b[2]) / 2 / 64, (b[1] + b[3]) / 2 / 32) for b in (d.box for d in found))
    # one truck joined across its gap: centre between its two ends (columns 2-3 and 7-8 → 5.0 + 0.5)
    assert any(abs(cx - 5.5 / GRID_W) < 1e-6 and abs(cy - 2.5 / GRID_H) < 1e-6 for cx, cy in centres)


def test_bad_grouping_settings_are_refused_with_the_field_named() -> None:
    for params, words in [
        ({"connectivity": {"person": 6}}, "decoder.params.connectivity.person: 6 is not 4 or 8"),
        ({"merge_gap": {"lorry": [4, 1]}}, "decoder.params.merge_gap: 'lorry' is not one of the labels"),
        ({"merge_gap": {"truck": [4, -1]}}, "decoder.params.merge_gap.truck: [4, -1] is not a cell radius"),
        ({"merge_gap": [4, 1]}, "decoder.params.merge_gap must map labels to values"),
    ]:
        with pytest.raises(ManifestError, match=re.escape(words)):
            parse_manifest(manifest_data(params))
    assert parse_manifest(manifest_data({"merge_gap": {"truck": 2}})).decoder.params
