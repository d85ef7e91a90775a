"""Moves campaigns forward: offers within the transfer limit, wave after successful wave, pauses at the
failure threshold, shadow evaluation then promotion, and records what devices report.

``tick`` and ``apply_state`` run on one thread with one session, so a campaign is never advanced by
two writers at once; publishing is a callable so the same logic runs under tests and the service.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud_hub.rollout import campaigns as c
from cloud_hub.rollout.models import STUDENT, Campaign, CampaignDevice, ModelVersion
from shared.payloads import ModelStatePayload

log = logging.getLogger(__name__)

PublishOffer = Callable[[str, bytes], None]  # (device_id, retained payload; b"" withdraws)


@dataclass(frozen=True)
class Grant:
    """What the chunk server may serve: this artifact, in these chunks, to these devices."""

    sha256: str
    size_bytes: int
    chunk_size: int
    devices: frozenset[str]


def apply_state(db: Session, report: ModelStatePayload) -> bool:
    """Record a device's report on its campaign row; False when it belongs to no campaign we run."""
    if not report.campaign_id:
        return False
    row = db.scalar(
        select(CampaignDevice).where(
            CampaignDevice.campaign_id == report.campaign_id, CampaignDevice.device_id == report.device_id
        )
    )
    campaign = db.get(Campaign, report.campaign_id)
    if row is None or campaign is None:
        return False
    if report.state.value == "SHADOW" and campaign.phase != "shadow":
        return False  # a late shadow report after promotion
    if row.state == c.QUEUED:
        return False  # not offered in this phase yet: a late report of the shadow phase
    row.state = report.state.value
    row.progress = report.progress if report.progress is not None else row.progress
    row.reason = report.reason
    if report.shadow is not None:
        row.shadow = report.shadow
    row.updated_at = time.time()
    return True


def _failure_summary(rows: list[CampaignDevice], limit: int = 3) -> str:
    failed = [r for r in rows if r.state in c.FAILURE]
    text = "; ".join(f"{r.device_id}: {r.state} {r.reason or ''}".strip() for r in failed[:limit])
    return text + (f"; and {len(failed) - limit} more" if len(failed) > limit else "")


def shadow_verdict(row: CampaignDevice, thresholds: dict[str, float]) -> str | None:
    """None when the device's shadow statistics pass, else the reason."""
    stats = row.shadow or {}
    agreement = stats.get("agreement", 0.0)
    if agreement < thresholds["min_agreement"]:
        return f"{row.device_id}: agreement {agreement:.3f} < {thresholds['min_agreement']}"
    errors, max_errors = stats.get("candidate_errors", 0.0), thresholds.get("max_candidate_errors")
    if max_errors is not None and errors > max_errors:
        return f"{row.device_id}: the candidate failed on {errors:.0f} frames (at most {max_errors:.0f})"
    active, candidate = stats.get("active_ms_p50", 0.0), stats.get("candidate_ms_p50", 0.0)
    if active > 0 and candidate > thresholds["max_latency_ratio"] * active:
        return (
            f"{row.device_id}: candidate latency {candidate:.2f} ms > "
            f"{thresholds['max_latency_ratio']}x active {active:.2f} ms"
        )
    return None


class Controller:
    def __init__(self, publish_offer: PublishOffer, signing_key=None, device_timeout_s: float | None = None):
        self.publish_offer = publish_offer
        self.signing_key = signing_key
        self.device_timeout_s = device_timeout_s
        self._grants: dict[str, Grant] = {}

    def _expire(self, rows: list[CampaignDevice]) -> None:
        """A device offered a model that reports nothing for ``device_timeout_s`` counts as failed, so
        an offline camera cannot hold a wave open forever (a late report still overwrites it)."""
        if not self.device_timeout_s:
            return
        now = time.time()
        for row in rows:
            stale = now - row.updated_at > self.device_timeout_s
            if stale and row.state not in c.SUCCESS | c.FAILURE | {c.QUEUED, "SHADOW", "CANCELLED"}:
                row.reason = f"no report for {self.device_timeout_s:.0f} s (last state {row.state})"
                row.state, row.updated_at = "TIMED_OUT", now

    def grants(self, db: Session) -> dict[str, Grant]:
        """Campaigns whose chunks may be served now (running, paused or completed: a device that comes
        back online later still finds its retained offer). A campaign's members never change after it
        is created, so their set is read once and cached."""
        rows = db.execute(
            select(
                Campaign.id,
                Campaign.chunk_size,
                ModelVersion.sha256,
                ModelVersion.size_bytes,
                ModelVersion.device_scope,
            )
            .join(ModelVersion, Campaign.model_id == ModelVersion.id)
            .where(Campaign.state.in_([c.RUNNING, c.PAUSED, c.COMPLETED]), ModelVersion.kind == STUDENT)
        ).all()
        out: dict[str, Grant] = {}
        for campaign_id, chunk_size, sha256, size_bytes, scope in rows:
            grant = self._grants.get(campaign_id)
            if grant is None:
                members = set(
                    db.scalars(
                        select(CampaignDevice.device_id).where(CampaignDevice.campaign_id == campaign_id)
                    )
                )
                if scope is not None:  # a scoped version's bundle goes to its device only, whatever the rows
                    members &= {scope}
                grant = Grant(sha256, size_bytes, chunk_size, frozenset(members))
            out[campaign_id] = grant
        self._grants = out
        return out

    def tick(self, db: Session) -> None:
        for campaign in db.scalars(select(Campaign).where(Campaign.state.in_([c.RUNNING, c.ABORTING]))):
            if campaign.state == c.ABORTING:
                self._withdraw(db, campaign)
            elif campaign.phase == "shadow":
                self._advance_shadow(db, campaign)
            else:
                self._advance(db, campaign)
        db.commit()

    # ----------------------------------------------------------------------------------- steps
    def _send(self, db: Session, campaign: Campaign, rows: list[CampaignDevice], busy: int) -> None:
        """Offer to queued devices, keeping at most ``max_concurrent`` transfers going."""
        body = json.dumps(campaign.offer, separators=(",", ":")).encode()
        scope = campaign.offer.get("device_scope")
        room = campaign.max_concurrent - busy
        for row in rows:
            if room <= 0:
                break
            if row.state == c.QUEUED and scope is not None and row.device_id != scope:
                # create() never plans this; a row added behind its back is not sent a scoped model
                row.state, row.updated_at = "FAILED", time.time()
                row.reason = f"not offered: the model is scoped to {scope}"
                continue
            if row.state == c.QUEUED:
                self.publish_offer(row.device_id, body)
                row.state, row.offered_at, row.updated_at = c.SENT, time.time(), time.time()
                room -= 1

    @staticmethod
    def _busy(rows: list[CampaignDevice], done: set[str]) -> int:
        return sum(1 for r in rows if r.state not in done and r.state != c.QUEUED)

    def _advance(self, db: Session, campaign: Campaign) -> None:
        rows = c.devices_of(db, campaign.id)
        self._expire(rows)
        started = [r for r in rows if r.wave <= campaign.current_wave]
        failures = sum(1 for r in started if r.state in c.FAILURE) - campaign.acked_failures
        if started and failures > 0 and failures / len(started) > campaign.max_failure:
            campaign.state = c.PAUSED
            campaign.reason = (
                f"failures {failures}/{len(started)} "
                f"({failures / len(started):.0%}) > {campaign.max_failure:.0%}: "
                f"{_failure_summary(started)}"
            )
            campaign.updated_at = time.time()
            log.warning("campaign %s paused: %s", campaign.id, campaign.reason)
            return
        done = c.SUCCESS | c.FAILURE
        wave_rows = [r for r in rows if r.wave == campaign.current_wave]
        if wave_rows and all(r.state in done for r in wave_rows):
            last_wave = max(r.wave for r in rows)
            if campaign.current_wave >= last_wave:
                campaign.state, campaign.reason = c.COMPLETED, None
                campaign.updated_at = time.time()
                log.info("campaign %s completed", campaign.id)
                return
            campaign.current_wave += 1
            campaign.updated_at = time.time()
            log.info("campaign %s: wave %d", campaign.id, campaign.current_wave)
            wave_rows = [r for r in rows if r.wave == campaign.current_wave]
        self._send(db, campaign, wave_rows, self._busy(rows, done))

    def _advance_shadow(self, db: Session, campaign: Campaign) -> None:
        thresholds = campaign.shadow_thresholds or c.DEFAULT_SHADOW_THRESHOLDS
        rows = c.devices_of(db, campaign.id)
        self._expire(rows)
        evaluated = [
            r
            for r in rows
            if r.state == "SHADOW" and (r.shadow or {}).get("frames", 0) >= thresholds["min_frames"]
        ]
        failed = [r for r in rows if r.state in c.FAILURE]
        if len(evaluated) + len(failed) < len(rows):
            done = c.FAILURE | {"SHADOW"}
            self._send(db, campaign, rows, self._busy(rows, done))
            return
        reasons = [v for v in (shadow_verdict(r, thresholds) for r in evaluated) if v]
        reasons += [f"{r.device_id}: {r.state} {r.reason or ''}".strip() for r in failed]
        if rows and len(reasons) / len(rows) > campaign.max_failure:
            campaign.state, campaign.updated_at = c.PAUSED, time.time()
            campaign.reason = "shadow thresholds not met, not promoted: " + "; ".join(reasons[:3])
            log.warning("campaign %s: %s", campaign.id, campaign.reason)
            return
        model = db.get(ModelVersion, campaign.model_id)
        if self.signing_key is None or model is None:
            return
        campaign.phase = "rollout"
        campaign.offer = c.signed_offer(
            self.signing_key, campaign.id, model, campaign.chunk_size, campaign.rollback, shadow=False
        )
        campaign.reason = "shadow passed: promoted"
        campaign.updated_at = time.time()
        members = [r.device_id for r in rows]
        for row in rows:
            db.delete(row)
        db.flush()
        for wave, ids in enumerate(c.plan_waves(members, campaign.canary, campaign.waves)):
            for device_id in ids:
                db.add(
                    CampaignDevice(
                        campaign_id=campaign.id,
                        device_id=device_id,
                        wave=wave,
                        state=c.QUEUED,
                        updated_at=time.time(),
                    )
                )
        log.info("campaign %s: shadow passed on %d devices, promoting", campaign.id, len(evaluated))

    def _withdraw(self, db: Session, campaign: Campaign) -> None:
        for row in c.devices_of(db, campaign.id):
            if row.state not in c.SUCCESS | c.FAILURE | {c.QUEUED}:
                self.publish_offer(row.device_id, b"")
                row.state, row.reason, row.updated_at = "CANCELLED", campaign.reason, time.time()
        campaign.state, campaign.updated_at = c.ABORTED, time.time()
