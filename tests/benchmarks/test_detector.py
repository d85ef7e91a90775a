"""The detector diagnostic: situations and matching on hand-made objects, then one short real run."""

from __future__ import annotations

from benchmarks.detector import found, run, situations
from benchmarks.events import DEFAULT_MODEL
from model_runtime import Detection
from synthetic_world import TruthObject

CELL = (1 / 40, 1 / 24)


def _person(track_id: int, cx: float, cy: float, visible: float = 1.0, h: float = 0.3) -> TruthObject:
    return TruthObject(track_id, "person", (cx - 0.02, cy - h / 2, cx + 0.02, cy + h / 2), (cx, cy), visible)


def test_situations_split_crowds_occlusion_and_size() -> None:
    a, b, far = _person(1, 0.50, 0.5), _person(2, 0.55, 0.5, visible=0.5), _person(3, 0.9, 0.3, h=0.1)
    objects = [a, b, far]
    assert situations(a, objects, CELL) == ["all", "crowd", "clear", "large"]  # b is 2 cells away
    assert situations(b, objects, CELL) == ["all", "crowd", "occluded", "large"]
    assert situations(far, objects, CELL) == ["all", "alone", "clear", "small"]


def test_found_matches_one_to_one_by_label_within_one_and_a_half_cells() -> None:
    a, b = _person(1, 0.50, 0.5), _person(2, 0.60, 0.5)
    near_a = Detection("person", 0.9, (0.49, 0.45, 0.53, 0.55))  # centre 0.51: within 1.5 cells of a
    also_a = Detection("person", 0.8, (0.50, 0.45, 0.52, 0.55))  # a is taken: left over
    car_at_b = Detection("car", 0.9, (0.58, 0.45, 0.62, 0.55))  # wrong label
    hit, rest = found([a, b], [also_a, near_a, car_at_b], CELL)
    assert hit == {0}
    assert rest == [car_at_b, also_a]  # best score first


def test_a_short_run_reports_model_and_grid_recall() -> None:
    result = run(DEFAULT_MODEL, videos=1, every=30)
    person = result["recall"]["person"]
    assert result["frames"] == 10 and person["all"]["n"] > 0
    # The grid is the model's own targets: an object alone is always found there.
    assert person["alone"]["grid"] == 1.0
    assert 0.8 <= person["all"]["model"] <= 1.0
