"""camera previews and remote configs (issue 25: see and steer the camera)

Revision ID: camera_0001
Revises: 0001
Create Date: 2026-12-05 16:45:00

A branch of its own off the initial schema like identity and rollout, so it applies beside other
features' revisions (``cloud-hub db upgrade`` upgrades to ``heads``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "camera_0001"
down_revision = "0001"
branch_labels = ("camera",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "camera_previews",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("jpeg", sa.LargeBinary(), nullable=False),
        sa.Column("boxes", sa.JSON(), nullable=True),
        sa.Column("zones", sa.JSON(), nullable=True),
        sa.Column("lines", sa.JSON(), nullable=True),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_camera_previews_device_id_devices",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", "camera", name="pk_camera_previews"),
    )
    op.create_table(
        "device_configs",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("desired_id", sa.String(length=64), nullable=True),
        sa.Column("desired", sa.JSON(), nullable=True),
        sa.Column("desired_at", sa.Float(), nullable=True),
        sa.Column("desired_by", sa.String(length=64), nullable=True),
        sa.Column("reported_id", sa.String(length=64), nullable=True),
        sa.Column("reported_state", sa.String(length=16), nullable=True),
        sa.Column("reported_reason", sa.Text(), nullable=True),
        sa.Column("reported_cameras", sa.JSON(), nullable=True),
        sa.Column("reported_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_device_configs_device_id_devices",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_configs"),
    )


def downgrade() -> None:
    op.drop_table("device_configs")
    op.drop_table("camera_previews")
