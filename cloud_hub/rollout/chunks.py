"""The chunk server: answers ChunkRequests with chunk frames, for many devices at once.

The MQTT callback only enqueues; a worker thread reads the artifact (cached in memory, its sha256
checked once when loaded) and publishes each requested chunk at QoS 1 on ``model/chunks/{n}``. A
request is served only when ``grant`` says this device may fetch this artifact in this campaign, so
a device cannot pull a model it was not offered. An optional byte rate keeps rollouts from filling an
uplink that events also need.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shared.payloads import ChunkRequest, PayloadError, decode
from shared.rollout import chunk_count, encode_chunk
from shared.topics import TopicError, TopicKind, Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkGrant:
    path: Path
    size_bytes: int
    chunk_size: int


Grant = Callable[[str, ChunkRequest], ChunkGrant | None]
Publish = Callable[[str, bytes], None]


@dataclass
class ChunkCounters:
    requests: int = 0
    refused: int = 0
    chunks: int = 0
    bytes: int = 0


class ChunkServer:
    def __init__(
        self,
        publish: Publish,
        grant: Grant,
        topics: Topics | None = None,
        max_bytes_per_s: float | None = None,
        cache_items: int = 8,
    ):
        self.publish = publish
        self.grant = grant
        self.topics = topics or Topics()
        self.max_bytes_per_s = max_bytes_per_s
        self.counters = ChunkCounters()
        self._cache: dict[str, bytes] = {}
        self._cache_items = cache_items
        self._queue: queue.Queue[tuple[str, bytes] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._sent_at = time.monotonic()

    @property
    def request_filter(self) -> str:
        return self.topics.all_devices(TopicKind.MODEL_CHUNK_REQUEST)

    def start(self) -> ChunkServer:
        self._thread = threading.Thread(target=self._run, name="chunk-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread:
            self._thread.join(10)

    def on_request(self, topic: str, payload: bytes) -> None:
        """MQTT callback: never blocks the network loop."""
        self._queue.put((topic, payload))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.serve(*item)
            except Exception:
                log.exception("chunk request on %s failed", item[0])

    def _artifact(self, sha256: str, path: Path) -> bytes | None:
        data = self._cache.get(sha256)
        if data is None:
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha256:
                log.error("artifact %s on disk does not match its sha256: not served", path)
                return None
            if len(self._cache) >= self._cache_items:
                self._cache.pop(next(iter(self._cache)))
            self._cache[sha256] = data
        return data

    def serve(self, topic: str, payload: bytes) -> int:
        """Publish the requested chunks; returns how many were sent (0 when refused)."""
        self.counters.requests += 1
        try:
            device_id = self.topics.parse(topic).device_id
            request = decode(ChunkRequest, payload)
        except (TopicError, PayloadError) as exc:
            self.counters.refused += 1
            log.warning("bad chunk request on %s: %s", topic, exc)
            return 0
        grant = self.grant(device_id, request)
        if grant is None:
            self.counters.refused += 1
            log.warning(
                "%s asked for %s in %s: not granted", device_id, request.sha256[:12], request.campaign_id
            )
            return 0
        data = self._artifact(request.sha256, grant.path)
        if data is None:
            self.counters.refused += 1
            return 0
        total = chunk_count(grant.size_bytes, grant.chunk_size)
        last = min(total, request.first + request.count)
        for index in range(request.first, last):
            chunk = data[index * grant.chunk_size : (index + 1) * grant.chunk_size]
            self._pace(len(chunk))
            self.publish(
                self.topics.model_chunk(device_id, index), encode_chunk(request.sha256, index, chunk)
            )
            self.counters.chunks += 1
            self.counters.bytes += len(chunk)
        return max(0, last - request.first)

    def _pace(self, size: int) -> None:
        if not self.max_bytes_per_s:
            return
        self._sent_at = max(self._sent_at, time.monotonic()) + size / self.max_bytes_per_s
        delay = self._sent_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
