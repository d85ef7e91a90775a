"""issue 24: a model version may be scoped to one device (a site-adapted model is for that camera only)

Revision ID: 0330_model_scope
Revises: 0320_adapt_jobs
Create Date: 2026-12-06 05:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0330_model_scope"
down_revision = "0320_adapt_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: every existing row stays fleet-wide and its signed record is unchanged.
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device_scope", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("device_scope")
