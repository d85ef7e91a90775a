"""rollout: model registry, campaigns, per-device campaign state

Revision ID: 0100_rollout
Revises: 0001
Create Date: 2026-11-25 21:20:00

Its own branch off the initial schema (the rollout area is developed beside others); ``db upgrade``
applies every head.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0100_rollout"
down_revision = "0001"
branch_labels = ("rollout",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("model_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    op.create_index(op.f("ix_model_versions_name"), "model_versions", ["name"], unique=False)
    op.create_index(op.f("ix_model_versions_sha256"), "model_versions", ["sha256"], unique=False)
    op.create_table(
        "rollout_campaigns",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("canary", sa.Integer(), nullable=False),
        sa.Column("waves", sa.JSON(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("max_failure", sa.Float(), nullable=False),
        sa.Column("max_concurrent", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("rollback", sa.Boolean(), nullable=False),
        sa.Column("shadow", sa.Boolean(), nullable=False),
        sa.Column("shadow_thresholds", sa.JSON(), nullable=True),
        sa.Column("offer", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("acked_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["model_versions.id"], name=op.f("fk_rollout_campaigns_model_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_campaigns")),
    )
    op.create_index(op.f("ix_rollout_campaigns_model_id"), "rollout_campaigns", ["model_id"], unique=False)
    op.create_index(op.f("ix_rollout_campaigns_state"), "rollout_campaigns", ["state"], unique=False)
    op.create_table(
        "rollout_devices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("campaign_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("shadow", sa.JSON(), nullable=True),
        sa.Column("offered_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["rollout_campaigns.id"],
            name=op.f("fk_rollout_devices_campaign_id_rollout_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_devices")),
        sa.UniqueConstraint("campaign_id", "device_id", name="uq_rollout_devices_campaign_device"),
    )
    op.create_index(
        "ix_rollout_devices_campaign_wave", "rollout_devices", ["campaign_id", "wave"], unique=False
    )
    op.create_index(op.f("ix_rollout_devices_device_id"), "rollout_devices", ["device_id"], unique=False)


def downgrade() -> None:
    op.drop_table("rollout_devices")
    op.drop_table("rollout_campaigns")
    op.drop_table("model_versions")
