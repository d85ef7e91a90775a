"""The guard around every per-message step of ingest: whatever one message does, it becomes a row or a
dead letter with a reason, and the thread that handled it lives on.

``classify`` covers topic parsing, decoding, validation and the checks of what the database can encode;
it is written not to raise, and this guard turns the exception nobody foresaw (a library bug, a
RecursionError, a MemoryError on a hostile body) into a dead letter instead of a dead worker.
"""

from __future__ import annotations

import logging

from cloud_hub.ingest.records import DEFAULT_WINDOW, Incoming, Record, TsWindow, classify, dead
from shared.topics import Topics

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """A one-line, bounded description of an exception for a dead letter's reason."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def guarded_classify(topics: Topics, incoming: Incoming, window: TsWindow = DEFAULT_WINDOW) -> Record:
    """``classify`` that cannot raise: an unforeseen failure is a dead letter naming the exception."""
    try:
        return classify(topics, incoming, window)
    except Exception as exc:  # the guard: nothing one message does may stop ingest
        log.exception("ingest: classifying a message on %r failed", incoming.topic[:200])
        return dead(incoming, f"internal error while classifying: {describe(exc)}")
