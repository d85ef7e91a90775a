"""A small supervisor: no worker thread dies silently.

Each watched unit is either a thread the supervisor runs (``spawn``) or something with its own thread
(``watch``: an ``alive`` probe and a ``restart`` action, e.g. paho's network loop). Every ``interval_s``
the supervisor restarts what died, logs it with the exception that killed it, and counts it; readiness
and the Prometheus counter ``edgesight_thread_restarts_total{thread=...}`` read those counts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)


@dataclass
class Unit:
    name: str
    alive: Callable[[], bool]
    restart: Callable[[], None]
    restarts: int = 0
    last_error: str | None = None
    last_restart_at: float | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    """Start with ``start()``; ``stop()`` before stopping the units, so a clean exit is not a restart."""

    def __init__(self, name: str = "supervisor", interval_s: float = 0.5):
        self.name = name
        self.interval_s = interval_s
        self._units: dict[str, Unit] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- units --------------------------------------------------------------------------------------
    def spawn(self, name: str, target: Callable[[], None]) -> Unit:
        """Run ``target`` in a daemon thread called ``name``; run it again whenever it ends early."""
        unit = Unit(name, alive=lambda: False, restart=lambda: None)

        def run() -> None:
            try:
                target()
            except BaseException as exc:  # logged here; the thread ends and the supervisor restarts it
                unit.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
                log.exception("thread %s died", name)

        def start_thread() -> None:
            unit.thread = threading.Thread(target=run, name=name, daemon=True)
            unit.thread.start()

        unit.alive = lambda: unit.thread is not None and unit.thread.is_alive()
        unit.restart = start_thread
        with self._lock:
            self._units[name] = unit
        start_thread()
        return unit

    def watch(self, name: str, alive: Callable[[], bool], restart: Callable[[], None]) -> Unit:
        unit = Unit(name, alive, restart)
        with self._lock:
            self._units[name] = unit
        return unit

    def join(self, name: str, timeout: float | None = None) -> None:
        unit = self._units.get(name)
        if unit is not None and unit.thread is not None:
            unit.thread.join(timeout)

    # -- the loop -----------------------------------------------------------------------------------
    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # the supervisor itself must not die of one bad restart
                log.exception("supervisor pass failed")

    def check(self) -> list[str]:
        """One pass: restart every dead unit; returns the names restarted."""
        restarted = []
        with self._lock:
            units = list(self._units.values())
        for unit in units:
            if self._stop.is_set():
                break
            if unit.alive():
                continue
            unit.restarts += 1
            unit.last_restart_at = time.time()
            log.error("thread %s is dead (%s); restarting it (restart %d)", unit.name,
                      unit.last_error or "no exception recorded", unit.restarts,
                      extra={"unit": unit.name, "restarts": unit.restarts})
            try:
                unit.restart()
            except Exception:
                log.exception("restarting %s failed; trying again next pass", unit.name)
            restarted.append(unit.name)
        return restarted

    # -- reporting ----------------------------------------------------------------------------------
    def status(self) -> dict[str, dict]:
        with self._lock:
            units = list(self._units.values())
        return {u.name: {"alive": bool(u.alive()), "restarts": u.restarts, "last_error": u.last_error}
                for u in units}

    def healthy(self) -> bool:
        return all(s["alive"] for s in self.status().values())

    def total_restarts(self) -> int:
        return sum(s["restarts"] for s in self.status().values())


class SupervisorCollector:
    """``edgesight_thread_restarts_total`` and ``edgesight_thread_alive`` per supervised thread."""

    def __init__(self, supervisor: Supervisor):
        self.supervisor = supervisor

    def collect(self) -> Iterator:
        status = self.supervisor.status()
        restarts = CounterMetricFamily("edgesight_thread_restarts", "worker threads restarted after dying",
                                       labels=["thread"])
        alive = GaugeMetricFamily("edgesight_thread_alive", "1 while the worker thread runs",
                                  labels=["thread"])
        for name, s in status.items():
            restarts.add_metric([name], s["restarts"])
            alive.add_metric([name], int(s["alive"]))
        yield restarts
        yield alive
