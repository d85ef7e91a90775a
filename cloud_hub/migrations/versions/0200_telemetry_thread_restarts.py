"""telemetry.thread_restarts (issue 21: no agent thread dies silently)

Revision ID: 0200_thread_restarts
Revises: 0100_rollout
Create Date: 2026-12-05 16:50:00

The agent's supervisor counts the loops it restarted after an error; telemetry carries the total.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0200_thread_restarts"
down_revision = "0100_rollout"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_restarts", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("telemetry", schema=None) as batch_op:
        batch_op.drop_column("thread_restarts")
