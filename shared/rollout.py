"""Rollout wire helpers both sides need: the chunk frame, the model bundle layout and semver order.

A chunk travels as raw bytes on ``model/chunks/{n}`` behind a 16-byte header, so a device can tell a
chunk of the download it is doing from a late chunk of an older offer (the topic only carries ``n``):

    b"ESC1" | first 8 bytes of the artifact's sha256 | index (uint32, big-endian) | data

The artifact a device downloads is a *bundle*: a zip holding the model file and its golden file (the
self-test needs both); the manifest itself travels, signed, inside the offer.
"""

from __future__ import annotations

import re
import struct

CHUNK_MAGIC = b"ESC1"
CHUNK_HEADER = struct.Struct(">4s8sI")
CHUNK_HEADER_SIZE = CHUNK_HEADER.size  # 16
DEFAULT_CHUNK_SIZE = 32 * 1024

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


class ChunkFrameError(ValueError):
    """Bytes on a chunk topic that are not a chunk frame."""


def encode_chunk(sha256_hex: str, index: int, data: bytes) -> bytes:
    return CHUNK_HEADER.pack(CHUNK_MAGIC, bytes.fromhex(sha256_hex)[:8], index) + data


def decode_chunk(frame: bytes) -> tuple[bytes, int, bytes]:
    """Return (sha256 prefix (8 raw bytes), index, data) or raise ChunkFrameError."""
    if len(frame) < CHUNK_HEADER_SIZE:
        raise ChunkFrameError(f"chunk frame of {len(frame)} bytes is shorter than its header")
    magic, prefix, index = CHUNK_HEADER.unpack_from(frame)
    if magic != CHUNK_MAGIC:
        raise ChunkFrameError("chunk frame has no ESC1 magic")
    return prefix, index, frame[CHUNK_HEADER_SIZE:]


def chunk_count(size_bytes: int, chunk_size: int) -> int:
    return -(-size_bytes // chunk_size)


def semver_key(version: str) -> tuple:
    """Sort key for semantic versions: 1.2.10 > 1.2.9, and 2.0.0-rc.1 < 2.0.0 (build metadata ignored)."""
    match = _SEMVER.match(version)
    if not match:
        raise ValueError(f"not a semantic version: {version!r}")
    major, minor, patch, pre = match.groups()
    if pre is None:
        pre_key: tuple = (1,)
    else:
        pre_key = (0, *((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (int(major), int(minor), int(patch), pre_key)


def site_version(base_version: str, tag: str) -> str:
    """The version of a model adapted to one site from ``base_version``: the next patch with a ``site``
    pre-release naming the build, 2.1.1 -> 2.1.2-site.<tag>. It sorts above the base (devices refuse a
    downgrade) and below a later generic release of that patch."""
    major, minor, patch, _ = semver_key(base_version)
    return f"{major}.{minor}.{patch + 1}-site.{tag}"


def bundle_members(manifest: dict) -> list[str]:
    """File names a model bundle must hold, in order: the model file, then the golden file if any."""
    names = [manifest.get("file", "model.onnx")]
    golden = manifest.get("golden")
    if golden:
        names.append(golden["file"])
    return names
