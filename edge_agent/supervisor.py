"""No agent thread dies silently: each long-running loop runs under ``supervise``.

A loop body that raises is logged with its traceback, counted (``Restarts``, reported in telemetry as
``thread_restarts``) and run again after a short, growing pause, in the same thread, until the agent's
stop event is set. A body that returns normally is done (a finite source ended, the link closed).
Why restart in place rather than spawn a new ``Thread``: the objects other parts hold (``cam.worker``,
``link._drainer``) stay valid, and ``join()``/``is_alive()`` keep their meaning.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable

log = logging.getLogger(__name__)

FIRST_PAUSE_S = 0.1
MAX_PAUSE_S = 5.0


class Restarts:
    """Thread-safe restart counts per loop name; ``total`` goes into every telemetry message."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def by_name(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def supervise(
    name: str,
    body: Callable[[], None],
    stop: threading.Event,
    restarts: Restarts | None = None,
    *,
    first_pause_s: float = FIRST_PAUSE_S,
    max_pause_s: float = MAX_PAUSE_S,
) -> None:
    """Run ``body`` until it returns or ``stop`` is set; an exception restarts it after a pause."""
    pause = first_pause_s
    while True:
        try:
            body()
            return
        except Exception:
            if restarts is not None:
                restarts.record(name)
            if stop.is_set():
                log.exception("%s failed while stopping", name)
                return
            log.exception("%s failed; restarting it in %.1fs", name, pause)
            if stop.wait(pause):
                return
            pause = min(pause * 2, max_pause_s)
