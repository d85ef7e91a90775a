"""Read models of campaigns and registered models for the CLI, the API and the dashboard (one shape for
all three)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.rollout import campaigns as c
from cloud_hub.rollout.models import Campaign, CampaignDevice, ModelVersion
from cloud_hub.rollout.registry import RecordTampered, verify_record


def _wave_summary(index: int, rows: list[CampaignDevice], current: int) -> dict[str, Any]:
    counts = Counter(r.state for r in rows)
    success = sum(counts[s] for s in c.SUCCESS)
    failed = sum(counts[s] for s in c.FAILURE)
    return {
        "index": index,
        "label": "canary" if index == 0 else f"wave {index}",
        "total": len(rows),
        "success": success,
        "failed": failed,
        "counts": dict(counts),
        "percent": round(100.0 * success / len(rows), 1) if rows else 0.0,
        "status": "done"
        if success + failed == len(rows)
        else ("running" if index == current else ("waiting" if index > current else "running")),
    }


def campaign_summary(db: Session, campaign: Campaign) -> dict[str, Any]:
    model = db.get(ModelVersion, campaign.model_id)
    rows = c.devices_of(db, campaign.id)
    by_wave: dict[int, list[CampaignDevice]] = {}
    for row in rows:
        by_wave.setdefault(row.wave, []).append(row)
    waves = [_wave_summary(i, by_wave[i], campaign.current_wave) for i in sorted(by_wave)]
    if waves and campaign.canary == 0:
        for wave in waves:
            wave["label"] = f"wave {wave['index'] + 1}"
    counts = Counter(r.state for r in rows)
    success = sum(counts[s] for s in c.SUCCESS)
    return {
        "id": campaign.id,
        "model": model.ref if model else None,
        "state": campaign.state,
        "phase": campaign.phase,
        "reason": campaign.reason,
        "target": campaign.target,
        "rollback": campaign.rollback,
        "shadow": campaign.shadow,
        "shadow_thresholds": campaign.shadow_thresholds,
        "max_failure": campaign.max_failure,
        "max_concurrent": campaign.max_concurrent,
        "current_wave": campaign.current_wave,
        "created_at": campaign.created_at,
        "updated_at": campaign.updated_at,
        "total": len(rows),
        "done": success,
        "percent": round(100.0 * success / len(rows), 1) if rows else 0.0,
        "counts": dict(counts),
        "waves": waves,
        "failures": [
            {"device_id": r.device_id, "state": r.state, "reason": r.reason}
            for r in rows
            if r.state in c.FAILURE
        ],
        "devices": [
            {
                "device_id": r.device_id,
                "wave": r.wave,
                "state": r.state,
                "progress": r.progress,
                "reason": r.reason,
                "shadow": r.shadow,
                "updated_at": r.updated_at,
            }
            for r in rows
        ],
    }


def campaign_list(db: Session) -> list[dict[str, Any]]:
    out = []
    for campaign in db.scalars(select(Campaign).order_by(Campaign.created_at.desc())):
        summary = campaign_summary(db, campaign)
        out.append(
            {
                k: summary[k]
                for k in (
                    "id",
                    "model",
                    "state",
                    "phase",
                    "reason",
                    "total",
                    "done",
                    "percent",
                    "created_at",
                    "rollback",
                    "shadow",
                )
            }
        )
    return out


def model_summary(row: ModelVersion, public_key: Ed25519PublicKey | None = None) -> dict[str, Any]:
    """A registry row; ``signature_ok`` is None when no hub key is at hand to check the record with."""
    signature_ok = None
    if public_key is not None:
        try:
            verify_record(row, public_key)
            signature_ok = True
        except RecordTampered:
            signature_ok = False
    return {
        "ref": row.ref,
        "name": row.name,
        "version": row.version,
        "kind": row.kind,
        "device_scope": row.device_scope,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "model_sha256": row.model_sha256,
        "created_at": row.created_at,
        "signature_ok": signature_ok,
    }
