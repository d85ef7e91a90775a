"""Write or check the JSON Schemas of the wire payloads (docs/protocol/*.schema.json).

    python -m shared.schemas --write docs/protocol
    python -m shared.schemas --check docs/protocol   # exit 1 when a committed schema is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from shared.camera import ConfigStatePayload, PreviewPayload, RemoteConfig
from shared.capture import CaptureAck, CaptureChunk, CaptureRequest, CaptureStatePayload
from shared.manifest import ModelManifest
from shared.payloads import (
    AckPayload,
    ChunkRequest,
    EventPayload,
    ModelOffer,
    ModelStatePayload,
    StatusPayload,
    TelemetryPayload,
)

SCHEMAS: dict[str, type[BaseModel]] = {
    "status": StatusPayload,
    "event": EventPayload,
    "telemetry": TelemetryPayload,
    "model_offer": ModelOffer,
    "chunk_request": ChunkRequest,
    "model_state": ModelStatePayload,
    "ack": AckPayload,
    "model_manifest": ModelManifest,
    "preview": PreviewPayload,
    "remote_config": RemoteConfig,
    "config_state": ConfigStatePayload,
    "capture_request": CaptureRequest,
    "capture_chunk": CaptureChunk,
    "capture_state": CaptureStatePayload,
    "capture_ack": CaptureAck,
}


def render() -> dict[str, str]:
    out = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema(by_alias=True)
        schema["$id"] = f"https://edgesight.invalid/protocol/v1/{name}.schema.json"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="DIR", type=Path)
    mode.add_argument("--check", metavar="DIR", type=Path)
    args = parser.parse_args(argv)
    rendered = render()
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (args.write / name).write_text(text)
        print(f"wrote {len(rendered)} schemas to {args.write}")
        return 0
    stale = [
        name
        for name, text in rendered.items()
        if not (args.check / name).exists() or (args.check / name).read_text() != text
    ]
    if stale:
        print(f"stale JSON Schemas in {args.check}: {', '.join(stale)} — run `make schemas`", file=sys.stderr)
        return 1
    print(f"{len(rendered)} JSON Schemas up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
