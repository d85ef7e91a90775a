"""Campaigns: which devices get a model in which wave, and the operator's actions on them.

A campaign is data; ``controller.py`` moves it forward. Actions here only change rows, so they work
the same from the CLI, the dashboard or a test, whichever process runs the controller.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.models import Device
from cloud_hub.rollout.models import STUDENT, Campaign, CampaignDevice, ModelVersion
from cloud_hub.rollout.registry import RecordTampered, verify_record
from shared.payloads import ModelOffer
from shared.rollout import DEFAULT_CHUNK_SIZE, semver_key
from shared.signing import sign

RUNNING, PAUSED, COMPLETED, ABORTING, ABORTED = "running", "paused", "completed", "aborting", "aborted"
QUEUED, SENT = "QUEUED", "SENT"  # hub-side device states before the device reports its own
SUCCESS = {"ACTIVE"}
FAILURE = {"FAILED", "ROLLED_BACK", "TIMED_OUT"}  # TIMED_OUT: hub-side, no report within the deadline
DEFAULT_SHADOW_THRESHOLDS = {"min_agreement": 0.9, "max_latency_ratio": 1.5, "min_frames": 20}


class CampaignError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    kind: str  # devices | group | tag | all
    values: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Target:
        """``group:G``, ``tag:T``, ``all`` or a comma-separated device list (``devices:`` optional)."""
        kind, sep, rest = text.partition(":")
        if text == "all":
            return cls("all", ())
        if sep and kind in ("group", "tag", "devices"):
            values = tuple(v.strip() for v in rest.split(",") if v.strip())
        else:
            kind, values = "devices", tuple(v.strip() for v in text.split(",") if v.strip())
        if not values:
            raise CampaignError(f"target {text!r} names no device, group or tag")
        return cls(kind, values)


def resolve_target(db: Session, target: Target) -> list[str]:
    """Device ids of a target; groups and tags are the ones given at ``cloud-hub devices add``."""
    if target.kind == "devices":
        return sorted(set(target.values))
    from cloud_hub.identity.models import DeviceCredential

    if target.kind == "all":
        revoked = set(
            db.scalars(select(DeviceCredential.device_id).where(DeviceCredential.revoked_at.isnot(None)))
        )
        return sorted(d for d in db.scalars(select(Device.id)) if d not in revoked)
    rows = db.scalars(select(DeviceCredential).where(DeviceCredential.revoked_at.is_(None))).all()
    wanted = set(target.values)
    if target.kind == "group":
        return sorted(r.device_id for r in rows if r.group in wanted)
    return sorted(r.device_id for r in rows if wanted & set(r.tags or []))


def by_readiness(db: Session, device_ids: list[str]) -> tuple[list[str], list[str]]:
    """Online devices first (the canary must be able to answer), then ones seen before, then the
    never-seen; returns the order and the never-seen ids (a campaign waits for them: say so)."""
    known = dict(db.execute(select(Device.id, Device.state).where(Device.id.in_(device_ids))).all())
    rank = {d: 0 if known.get(d) == "online" else 1 if d in known else 2 for d in device_ids}
    ordered = sorted(device_ids, key=lambda d: (rank[d], d))
    return ordered, [d for d in ordered if rank[d] == 2]


def parse_percentages(text: str) -> list[float]:
    try:
        values = [float(p.strip().rstrip("%")) / 100.0 for p in text.split(",") if p.strip()]
    except ValueError:
        raise CampaignError(f"waves {text!r}: expected percentages like 10%,50%,100%") from None
    if not values or any(not 0 < v <= 1 for v in values) or values != sorted(values):
        raise CampaignError(f"waves {text!r}: ascending percentages in (0, 100]")
    return values


def parse_fraction(text: str) -> float:
    value = float(text.strip().rstrip("%")) / 100.0 if text.strip().endswith("%") else float(text)
    if not 0 <= value <= 1:
        raise CampaignError(f"{text!r}: a fraction 0..1 or a percentage")
    return value


def plan_waves(devices: list[str], canary: int, waves: list[float]) -> list[list[str]]:
    """Canary first (wave 0), then cumulative percentages of the whole target; empty waves dropped."""
    canary = min(canary, len(devices))
    plan = [devices[:canary]] if canary else []
    done = canary
    for fraction in waves:
        cutoff = max(done, math.ceil(fraction * len(devices)))
        if cutoff > done:
            plan.append(devices[done:cutoff])
            done = cutoff
    if done < len(devices):
        plan.append(devices[done:])
    return plan


def signed_offer(
    key: Ed25519PrivateKey,
    campaign_id: str,
    model: ModelVersion,
    chunk_size: int,
    rollback: bool,
    shadow: bool,
) -> dict:
    offer = ModelOffer(
        campaign_id=campaign_id,
        name=model.name,
        version=model.version,
        sha256=model.sha256,
        size_bytes=model.size_bytes,
        chunk_size=chunk_size,
        manifest=model.manifest,
        rollback=rollback,
        shadow=shadow,
        device_scope=model.device_scope,
    )
    offer = offer.model_copy(update={"signature": sign(key, offer.signed_bytes())})
    return offer.model_dump(mode="json", by_alias=True, exclude_none=True)


def check_offerable(model: ModelVersion, key: Ed25519PrivateKey) -> None:
    """Refuse a teacher, and a record whose signature does not verify (its scope or content was changed
    in the database after registering), whatever the target."""
    if model.kind != STUDENT:
        raise CampaignError(
            f"{model.ref} is a {model.kind} model: it labels frames on the hub and is never offered to a "
            "device; roll out a student model instead")
    try:
        verify_record(model, key.public_key())
    except RecordTampered as exc:
        raise CampaignError(str(exc)) from None


def check_scope(model: ModelVersion, device_ids: list[str]) -> None:
    """Refuse a version scoped to one device when the target holds any other."""
    refusals = [r for r in (model.scope_refusal(d) for d in device_ids) if r]
    if refusals:
        more = f" (nor to {len(refusals) - 1} more device(s) of the target)" if len(refusals) > 1 else ""
        raise CampaignError(refusals[0] + more)


def create(
    db: Session,
    key: Ed25519PrivateKey,
    model: ModelVersion,
    target_text: str,
    *,
    canary: int = 1,
    waves: list[float] | None = None,
    max_failure: float = 0.1,
    max_concurrent: int = 50,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    rollback: bool = False,
    shadow: bool = False,
    shadow_thresholds: dict[str, float] | None = None,
    devices: list[str] | None = None,
) -> Campaign:
    check_offerable(model, key)
    device_ids = devices if devices is not None else resolve_target(db, Target.parse(target_text))
    if not device_ids:
        raise CampaignError(f"target {target_text!r} matches no device")
    check_scope(model, list(device_ids))
    device_ids, _never_seen = by_readiness(db, list(device_ids))
    waves = waves or [1.0]
    campaign_id = "c-" + secrets.token_hex(5)
    now = time.time()
    campaign = Campaign(
        id=campaign_id,
        model_id=model.id,
        target=target_text,
        state=RUNNING,
        phase="shadow" if shadow else "rollout",
        canary=canary,
        waves=waves,
        current_wave=0,
        max_failure=max_failure,
        max_concurrent=max_concurrent,
        chunk_size=chunk_size,
        rollback=rollback,
        shadow=shadow,
        shadow_thresholds={**DEFAULT_SHADOW_THRESHOLDS, **(shadow_thresholds or {})} if shadow else None,
        offer=signed_offer(key, campaign_id, model, chunk_size, rollback, shadow),
        acked_failures=0,
        created_at=now,
        updated_at=now,
    )
    db.add(campaign)
    db.flush()
    plan = [device_ids] if shadow else plan_waves(device_ids, canary, waves)
    for wave, members in enumerate(plan):
        for device_id in members:
            db.add(
                CampaignDevice(
                    campaign_id=campaign_id, device_id=device_id, wave=wave, state=QUEUED, updated_at=now
                )
            )
    db.commit()
    return campaign


def get(db: Session, campaign_id: str) -> Campaign:
    campaign = db.get(Campaign, campaign_id)
    if campaign is None:
        raise CampaignError(f"no campaign {campaign_id!r}")
    return campaign


def devices_of(db: Session, campaign_id: str) -> list[CampaignDevice]:
    return list(
        db.scalars(
            select(CampaignDevice)
            .where(CampaignDevice.campaign_id == campaign_id)
            .order_by(CampaignDevice.wave, CampaignDevice.device_id)
        )
    )


def _set(db: Session, campaign: Campaign, state: str, reason: str | None) -> Campaign:
    campaign.state, campaign.reason, campaign.updated_at = state, reason, time.time()
    db.commit()
    return campaign


def pause(db: Session, campaign_id: str, reason: str = "paused by operator") -> Campaign:
    campaign = get(db, campaign_id)
    if campaign.state != RUNNING:
        raise CampaignError(f"{campaign_id} is {campaign.state}, not running")
    return _set(db, campaign, PAUSED, reason)


def resume(db: Session, campaign_id: str) -> Campaign:
    """Resume; failures seen so far are acknowledged, so only new ones count against the threshold."""
    campaign = get(db, campaign_id)
    if campaign.state != PAUSED:
        raise CampaignError(f"{campaign_id} is {campaign.state}, not paused")
    campaign.acked_failures = sum(1 for d in devices_of(db, campaign_id) if d.state in FAILURE)
    return _set(db, campaign, RUNNING, None)


def abort(db: Session, campaign_id: str, reason: str = "aborted by operator") -> Campaign:
    """Stop the campaign; the controller withdraws the offers of devices that have not finished."""
    campaign = get(db, campaign_id)
    if campaign.state in (COMPLETED, ABORTED, ABORTING):
        raise CampaignError(f"{campaign_id} is already {campaign.state}")
    return _set(db, campaign, ABORTING, reason)


def rollback(
    db: Session,
    key: Ed25519PrivateKey,
    campaign_id: str,
    to_version: str | None = None,
    max_concurrent: int | None = None,
) -> Campaign:
    """An explicit, signed rollback campaign to an earlier version, for the devices of ``campaign_id``."""
    campaign = get(db, campaign_id)
    current = db.get(ModelVersion, campaign.model_id)
    assert current is not None
    rows = [r for r in db.scalars(select(ModelVersion).where(ModelVersion.name == current.name))
            if r.kind == STUDENT]
    members = [d.device_id for d in devices_of(db, campaign_id) if d.state not in (QUEUED,)]
    if to_version:
        candidates = [r for r in rows if r.version == to_version]  # a scope that does not fit: refused below
    else:  # the newest older version every member may run (a version scoped to another device is skipped)
        older = [r for r in rows if semver_key(r.version) < semver_key(current.version)
                 and not any(r.scope_refusal(d) for d in members)]
        candidates = [max(older, key=lambda r: semver_key(r.version))] if older else []
    if not candidates:
        raise CampaignError(f"no earlier version of {current.name} than {current.version} to roll back to")
    if not members:
        raise CampaignError(f"{campaign_id} has not reached any device; abort it instead")
    check_offerable(candidates[0], key)  # refused before the campaign it would supersede is touched
    check_scope(candidates[0], members)
    if campaign.state not in (COMPLETED, ABORTED, ABORTING):
        campaign.state, campaign.reason = ABORTED, "superseded by a rollback"
    new = create(
        db,
        key,
        candidates[0],
        f"rollback of {campaign_id}",
        canary=0,
        waves=[1.0],
        max_failure=1.0,
        max_concurrent=max_concurrent or campaign.max_concurrent,
        chunk_size=campaign.chunk_size,
        rollback=True,
        devices=members,
    )
    return new
