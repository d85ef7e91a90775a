"""The health window: after a swap the new model must run real frames without errors, insane outputs
or a latency blow-up before it is committed; otherwise the previous model comes back."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from edge_agent.updater.config import HealthConfig


@dataclass(frozen=True)
class Verdict:
    healthy: bool
    reason: str
    inferences: int


def percentile(values: list[float] | deque[float], q: float) -> float | None:
    return float(np.percentile(list(values), q)) if values else None


class LatencyHistory:
    """Recent latencies per model ref, so a candidate is compared with what ran before it."""

    def __init__(self, keep: int = 200):
        self._keep = keep
        self._by_ref: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, ref: str, latency_ms: float) -> None:
        with self._lock:
            self._by_ref.setdefault(ref, deque(maxlen=self._keep)).append(latency_ms)

    def p50(self, ref: str) -> float | None:
        with self._lock:
            return percentile(self._by_ref.get(ref, deque()), 50)


class HealthWindow:
    def __init__(self, ref: str, config: HealthConfig, baseline_p50_ms: float | None):
        self.ref = ref
        self.config = config
        self.baseline_p50_ms = baseline_p50_ms
        self.started = time.monotonic()
        self.latencies: list[float] = []
        self.errors = 0
        self.insane = 0
        self._lock = threading.Lock()

    def observe(self, latency_ms: float, ok: bool = True, sane: bool = True) -> None:
        with self._lock:
            self.latencies.append(latency_ms)
            self.errors += 0 if ok else 1
            self.insane += 0 if sane else 1

    @property
    def count(self) -> int:
        return len(self.latencies)

    def done(self) -> bool:
        return (
            self.count >= self.config.min_inferences
            or time.monotonic() - self.started >= self.config.max_seconds
        )

    def verdict(self) -> Verdict:
        with self._lock:
            n = self.count
            cfg = self.config
            if n == 0:
                return Verdict(True, "no inference during the window (quiet camera)", 0)
            if self.errors / n > cfg.max_error_rate:
                return Verdict(False, f"health: {self.errors}/{n} inferences failed", n)
            if self.insane / n > cfg.max_insane_rate:
                return Verdict(False, f"health: {self.insane}/{n} outputs not sane (NaN/inf/out of range)", n)
            p95 = percentile(self.latencies, 95) or 0.0
            p50 = percentile(self.latencies, 50) or 0.0
            if cfg.max_latency_ms_p95 is not None and p95 > cfg.max_latency_ms_p95:
                return Verdict(
                    False, f"health: p95 latency {p95:.2f} ms > budget {cfg.max_latency_ms_p95} ms", n
                )
            # The relative check uses medians: one slow frame (a load spike) must not revert a good model.
            if cfg.max_latency_ratio is not None and self.baseline_p50_ms:
                limit = cfg.max_latency_ratio * self.baseline_p50_ms
                if p50 > limit:
                    return Verdict(
                        False,
                        f"health: median latency {p50:.2f} ms > {cfg.max_latency_ratio}x "
                        f"previous {self.baseline_p50_ms:.2f} ms",
                        n,
                    )
            return Verdict(True, f"healthy over {n} inferences, median {p50:.2f} ms, p95 {p95:.2f} ms", n)
