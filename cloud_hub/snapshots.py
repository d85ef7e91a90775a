"""Content-addressed snapshot files: ``ab/cd/<sha256>.jpg`` under one directory.

The database keeps only the relative path. Names are derived from the content, never from anything
a device or a browser sends, so a request can never steer a read or a write outside the directory.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class SnapshotStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @staticmethod
    def relative_path(sha256: str) -> str:
        if not SHA256_RE.match(sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}.jpg"

    def put(self, data: bytes) -> tuple[str, str]:
        """Write ``data`` once (write, fsync, rename); returns (sha256, relative path)."""
        sha = hashlib.sha256(data).hexdigest()
        rel = self.relative_path(sha)
        target = self.root / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".{os.getpid()}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        return sha, rel

    def resolve(self, rel: str) -> Path | None:
        """The file for a stored relative path, or None if it is not a well-formed name or missing."""
        parts = rel.split("/")
        if len(parts) != 3 or not parts[2].endswith(".jpg"):
            return None
        sha = parts[2][:-4]
        if not SHA256_RE.match(sha) or rel != self.relative_path(sha):
            return None
        path = self.root / rel
        return path if path.is_file() else None

    def delete(self, rel: str) -> int:
        path = self.resolve(rel)
        if path is None:
            return 0
        size = path.stat().st_size
        path.unlink(missing_ok=True)
        return size

    def usage_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*/*/*.jpg"))
