"""The teacher-agreement metric: sure boxes must be found, unsure ones are "don't care"."""

from firmware_models.teacher_metric import teacher_f1
from model_runtime.detection import Detection

GRID = (10, 10)


def det(label: str, score: float, cx: float, cy: float) -> Detection:
    return Detection(label, score, (cx - 0.01, cy - 0.01, cx + 0.01, cy + 0.01))


def test_sure_boxes_count_and_unsure_boxes_do_not():
    boxes = [
        [
            ("person", 0.9, 0.1, 0.1, 0.3, 0.5),  # sure: found
            ("person", 0.9, 0.6, 0.1, 0.8, 0.5),  # sure: missed
            ("person", 0.3, 0.4, 0.6, 0.5, 0.9),  # unsure: found, neither hit nor false alarm
            ("car", 0.8, 0.0, 0.7, 0.2, 0.9),  # sure car: found by a person detection -> no match
        ]
    ]
    dets = [
        [
            det("person", 0.9, 0.2, 0.3),
            det("person", 0.8, 0.45, 0.75),
            det("person", 0.7, 0.1, 0.8),  # on the car: a false person
            det("person", 0.6, 0.21, 0.31),  # a second detection on the found person: false alarm
        ]
    ]
    result = teacher_f1(dets, boxes, ["person", "car"], GRID)
    person = result["per_class"]["person"]
    assert (person["tp"], person["fp"], person["fn"]) == (1, 2, 1)
    car = result["per_class"]["car"]
    assert (car["tp"], car["fp"], car["fn"]) == (0, 0, 1)


def test_strict_matching_needs_the_centre_cell():
    boxes = [[("person", 0.9, 0.0, 0.0, 1.0, 0.8)]]  # centre x 0.5; the middle half reaches 0.25..0.75
    near = [[det("person", 0.9, 0.72, 0.4)]]  # two cells off the centre cell, inside the middle half
    assert teacher_f1(near, boxes, ["person"], GRID)["per_class"]["person"]["tp"] == 1
    assert teacher_f1(near, boxes, ["person"], GRID, strict=True)["per_class"]["person"]["tp"] == 0
