"""A resumable download: chunks land in a partial file, a persisted bitmap says which ones are there.

The bitmap is written only after the chunk's bytes are fsynced, so after a crash or SIGKILL the device
trusts exactly what is on disk and asks only for what is missing. A partial file lives under
``.partial/`` and is never handed to onnxruntime: only a complete file whose sha256 matches the signed
offer leaves that folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from edge_agent.updater.fsutil import read_json, write_json_atomic
from shared.rollout import chunk_count


class ChunkError(ValueError):
    """A chunk that does not fit the download (wrong index or size)."""


class PartialDownload:
    def __init__(self, folder: Path, sha256: str, size_bytes: int, chunk_size: int):
        self.folder = folder
        self.sha256 = sha256
        self.size_bytes = size_bytes
        self.chunk_size = chunk_size
        self.total = chunk_count(size_bytes, chunk_size)
        self.data_path = folder / f"{sha256}.part"
        self.progress_path = folder / f"{sha256}.json"
        folder.mkdir(parents=True, exist_ok=True)
        self.have = self._load()

    def _load(self) -> set[int]:
        state = read_json(self.progress_path, {})
        same = state.get("size_bytes") == self.size_bytes and state.get("chunk_size") == self.chunk_size
        if not same or not self.data_path.exists():
            self._reset()
            return set()
        return {i for i in state.get("have", []) if 0 <= i < self.total}

    def _reset(self) -> None:
        with open(self.data_path, "wb") as fh:
            fh.truncate(self.size_bytes)
            os.fsync(fh.fileno())
        self._persist(set())

    def _persist(self, have: set[int]) -> None:
        write_json_atomic(
            self.progress_path,
            {
                "sha256": self.sha256,
                "size_bytes": self.size_bytes,
                "chunk_size": self.chunk_size,
                "have": sorted(have),
            },
        )

    def expected_size(self, index: int) -> int:
        if not 0 <= index < self.total:
            raise ChunkError(f"chunk {index} outside 0..{self.total - 1}")
        return min(self.chunk_size, self.size_bytes - index * self.chunk_size)

    def write(self, index: int, data: bytes) -> bool:
        """Store one chunk durably; False when it was already there (a duplicate delivery)."""
        if len(data) != self.expected_size(index):
            raise ChunkError(f"chunk {index} has {len(data)} bytes, expected {self.expected_size(index)}")
        if index in self.have:
            return False
        fd = os.open(self.data_path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, index * self.chunk_size)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        self.have.add(index)
        self._persist(self.have)
        return True

    def missing(self) -> list[int]:
        return [i for i in range(self.total) if i not in self.have]

    @property
    def complete(self) -> bool:
        return len(self.have) == self.total

    @property
    def progress(self) -> float:
        return len(self.have) / self.total

    def digest(self) -> str:
        h = hashlib.sha256()
        with open(self.data_path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()

    def discard(self) -> None:
        self.data_path.unlink(missing_ok=True)
        self.progress_path.unlink(missing_ok=True)


def discard_others(folder: Path, keep_sha256: str | None) -> None:
    """Drop partial downloads of offers that are no longer wanted."""
    if not folder.exists():
        return
    for path in folder.iterdir():
        if keep_sha256 is None or not path.name.startswith(keep_sha256):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
