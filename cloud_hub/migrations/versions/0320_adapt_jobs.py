"""issue 24: site adaptation jobs (state, progress, lease) and their bounded logs

Revision ID: 0320_adapt_jobs
Revises: 0310_capture
Create Date: 2026-12-06 01:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0320_adapt_jobs"
down_revision = "0310_capture"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "adapt_jobs",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("capture_id", sa.String(length=40), nullable=True),
        sa.Column("capture_started", sa.Boolean(), nullable=False),
        sa.Column("teacher_ref", sa.String(length=160), nullable=False),
        sa.Column("base_ref", sa.String(length=160), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("frames_train", sa.Integer(), nullable=True),
        sa.Column("frames_judge", sa.Integer(), nullable=True),
        sa.Column("result_ref", sa.String(length=160), nullable=True),
        sa.Column("campaign_id", sa.String(length=32), nullable=True),
        sa.Column("worker", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"], name="fk_adapt_jobs_device_id_devices", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["capture_id"], ["captures.id"], name="fk_adapt_jobs_capture_id_captures", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_adapt_jobs"),
    )
    with op.batch_alter_table("adapt_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_adapt_jobs_device_id", ["device_id"], unique=False)
        batch_op.create_index("ix_adapt_jobs_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_adapt_jobs_state", ["state"], unique=False)
    op.create_table(
        "adapt_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["adapt_jobs.id"], name="fk_adapt_log_job_id_adapt_jobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_adapt_log"),
    )
    with op.batch_alter_table("adapt_log", schema=None) as batch_op:
        batch_op.create_index("ix_adapt_log_job_id", ["job_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("adapt_log")
    op.drop_table("adapt_jobs")
