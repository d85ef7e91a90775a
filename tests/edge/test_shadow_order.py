"""Shadow sampling in the running agent (edge_agent.updater.agent_hook.ObservedModel), as pure logic with
stand-in models: which frames the candidate sees, that the two models take turns going first (the second
of two back-to-back inferences is the one a busy CPU preempts, which biased the latency gate), and that a
failing candidate or active model is reported, never swallowed or double counted."""

from __future__ import annotations

import pytest

from edge_agent.updater.agent_hook import ObservedModel
from model_runtime.detection import Detection


class Model:
    def __init__(self, name: str, calls: list[str], fail: bool = False):
        self.ref = f"{name}@1.0.0"
        self.name, self.calls, self.fail = name, calls, fail

    def detect(self, image, region=None):
        self.calls.append(self.name)
        if self.fail:
            raise RuntimeError(f"{self.name} broke")
        return [det(self.name)]


def det(label: str) -> Detection:
    return Detection(label=label, score=0.9, box=(0.1, 0.1, 0.2, 0.2))


class Recorder:
    def __init__(self):
        self.inferences: list[tuple[str, bool]] = []
        self.shadows: list[tuple] = []

    def record_inference(self, ref, ms, ok, sane=True):
        self.inferences.append((ref, ok))

    def record_shadow(self, active, candidate, active_ms, candidate_ms):
        assert active_ms >= 0 and candidate_ms >= 0
        self.shadows.append((active, candidate))


class Switcher:
    def __init__(self, shadow, every: int):
        self.updater = Recorder()
        self.shadow, self.every = shadow, every

    def shadow_model(self):
        return self.shadow, self.every


def test_sampled_frames_alternate_which_model_runs_first() -> None:
    calls: list[str] = []
    switcher = Switcher(Model("candidate", calls), every=2)
    observed = ObservedModel(Model("active", calls), switcher)
    for _ in range(8):
        assert observed.detect(None) == [det("active")]
    # frames 2, 4, 6, 8 are sampled; the candidate goes first on every other one
    assert calls == [
        "active", "candidate", "active",
        "active", "active", "candidate",
        "active", "candidate", "active",
        "active", "active", "candidate",
    ]  # fmt: skip
    assert switcher.updater.shadows == [([det("active")], [det("candidate")])] * 4
    assert switcher.updater.inferences == [("active@1.0.0", True)] * 8


def test_a_failing_candidate_is_reported_as_none_and_the_frame_still_served() -> None:
    calls: list[str] = []
    switcher = Switcher(Model("candidate", calls, fail=True), every=1)
    observed = ObservedModel(Model("active", calls), switcher)
    for _ in range(4):
        assert observed.detect(None) == [det("active")]
    assert switcher.updater.shadows == [([det("active")], None)] * 4


def test_a_failing_active_model_raises_and_records_no_shadow_sample() -> None:
    calls: list[str] = []
    switcher = Switcher(Model("candidate", calls), every=1)
    observed = ObservedModel(Model("active", calls, fail=True), switcher)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="active broke"):
            observed.detect(None)
    assert switcher.updater.inferences == [("active@1.0.0", False)] * 2
    assert switcher.updater.shadows == []


def test_without_a_candidate_only_the_active_model_runs() -> None:
    calls: list[str] = []
    switcher = Switcher(None, every=1)
    observed = ObservedModel(Model("active", calls), switcher)
    for _ in range(3):
        observed.detect(None)
    assert calls == ["active"] * 3 and switcher.updater.shadows == []
