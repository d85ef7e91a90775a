"""The manifest a built model ships with: its int8 file's hash and size, its golden file, its metrics and
the quantization record with the fp32 original it came from. One function, so the reference build, the
distilled student and a site-adapted model describe their files the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.manifest import GoldenSpec, ModelManifest, sha256_file


def release_manifest(
    manifest: ModelManifest,
    int8: Path,
    fp32: Path,
    golden: GoldenSpec,
    metrics: dict[str, Any],
    quantization: dict[str, Any],
) -> ModelManifest:
    """``manifest`` completed for the files as they are now (hash them after the last write)."""
    return manifest.model_copy(
        update={
            "sha256": sha256_file(int8),
            "size_bytes": int8.stat().st_size,
            "golden": golden,
            "metrics": metrics,
            "quantization": {
                **quantization,
                "fp32_file": fp32.name,
                "fp32_sha256": sha256_file(fp32),
                "fp32_size_bytes": fp32.stat().st_size,
            },
        }
    )
