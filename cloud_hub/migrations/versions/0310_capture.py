"""issue 24: site capture — captures (who asked, state), their frames, chunks in flight

Revision ID: 0310_capture
Revises: 0300_model_kind
Create Date: 2026-12-05 23:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0310_capture"
down_revision = "0300_model_kind"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "captures",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.Float(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("max_bytes", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("camera", sa.String(length=64), nullable=True),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("frames_received", sa.Integer(), nullable=False),
        sa.Column("rejected_frames", sa.JSON(), nullable=False),
        sa.Column("device_captured", sa.Integer(), nullable=False),
        sa.Column("last_progress_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["device_id"], ["devices.id"], name="fk_captures_device_id_devices",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_captures"),
    )
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.create_index("ix_captures_device_id", ["device_id"], unique=False)
        batch_op.create_index("ix_captures_requested_at", ["requested_at"], unique=False)
        batch_op.create_index("ix_captures_state", ["state"], unique=False)
    op.create_table(
        "capture_frames",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("capture_id", sa.String(length=40), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=128), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["capture_id"], ["captures.id"], name="fk_capture_frames_capture_id_captures",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_capture_frames"),
        sa.UniqueConstraint("capture_id", "frame", name="uq_capture_frames_capture_frame"),
    )
    with op.batch_alter_table("capture_frames", schema=None) as batch_op:
        batch_op.create_index("ix_capture_frames_capture_id", ["capture_id"], unique=False)
        batch_op.create_index("ix_capture_frames_path", ["path"], unique=False)
        batch_op.create_index("ix_capture_frames_received_at", ["received_at"], unique=False)
    op.create_table(
        "capture_chunks",
        sa.Column("capture_id", sa.String(length=40), nullable=False),
        sa.Column("frame", sa.Integer(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["capture_id"], ["captures.id"], name="fk_capture_chunks_capture_id_captures",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("capture_id", "frame", "chunk", name="pk_capture_chunks"),
    )


def downgrade() -> None:
    op.drop_table("capture_chunks")
    with op.batch_alter_table("capture_frames", schema=None) as batch_op:
        batch_op.drop_index("ix_capture_frames_received_at")
        batch_op.drop_index("ix_capture_frames_path")
        batch_op.drop_index("ix_capture_frames_capture_id")
    op.drop_table("capture_frames")
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_index("ix_captures_state")
        batch_op.drop_index("ix_captures_requested_at")
        batch_op.drop_index("ix_captures_device_id")
    op.drop_table("captures")
