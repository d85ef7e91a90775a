"""The reference models: what each one is, how big its data is, how long it trains.

``build-all`` rebuilds every entry here; ``smoke()`` shrinks one to seconds for the test suite.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from shared.manifest import InputSpec

from . import REFERENCE_DIR


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    version: str
    kind: Literal["classifier", "fomo"]
    description: str
    labels: tuple[str, ...]
    input: InputSpec
    train_count: int  # frames (fomo) or crops per class (classifier)
    val_count: int
    test_count: int
    epochs: int
    batch_size: int = 64
    lr: float = 2e-3
    seed: int = 1
    calibration_count: int = 200
    # FOMO loss weight per label (background first): object cells are rare, trucks rarest of all.
    class_weights: tuple[float, ...] | None = None
    stride: int = 8  # FOMO: input pixels per heat-map cell (8 or 4)
    head: Literal["shuffle", "skip"] = "shuffle"  # FOMO output head at stride 4 (``FomoNet``)

    @property
    def directory(self):
        return REFERENCE_DIR / self.name

    def smoke(self) -> ReferenceModel:
        """Tiny data and one epoch: proves every step runs, not that the model is good."""
        small = 8 if self.kind == "classifier" else 24
        return replace(
            self,
            train_count=small,
            val_count=small,
            test_count=small,
            epochs=1,
            batch_size=8,
            calibration_count=8,
        )


CROP_CLASSIFIER = ReferenceModel(
    name="crop-classifier",
    version="1.0.0",
    kind="classifier",
    description="The design CNN (Conv32-Pool-Conv64-Pool-Conv64-Dense64-DenseN) classifying 64x64 crops "
    "of rendered street/indoor scenes as background, person, car or bicycle.",
    labels=("background", "person", "car", "bicycle"),
    input=InputSpec(name="input", shape=(1, 3, 64, 64)),
    train_count=2500,
    val_count=300,
    test_count=500,
    epochs=12,
    lr=1e-3,
)

FOMO_STREET = ReferenceModel(
    name="fomo-street",
    # 2.x: the 40x24 grid (stride 4); 1.x had 20x12. 2.1: twice the data, 24 epochs. 2.1.1: 2.1.0's
    # weights, decoder re-tuned on 3,000 validation frames (trucks lit as two blobs are one: merge_gap).
    version="2.1.1",
    kind="fomo",
    description="FOMO-style centroid detector: 160x96 RGB frame → 40x24 grid of per-cell class "
    "probabilities (person, car, bicycle, truck) for street and indoor cameras.",
    labels=("background", "person", "car", "bicycle", "truck"),
    input=InputSpec(name="input", shape=(1, 3, 96, 160)),
    train_count=20000,
    val_count=3000,  # threshold and merge_gap tuning: ~400 trucks (400 frames had 54, too few to choose)
    test_count=1000,
    epochs=24,
    lr=3e-3,
    class_weights=(1.0, 10.0, 10.0, 10.0, 20.0),
    stride=4,
)

REFERENCE_MODELS: dict[str, ReferenceModel] = {m.name: m for m in (CROP_CLASSIFIER, FOMO_STREET)}
