"""device credentials (issue 7: device identity)

Revision ID: identity_0001
Revises: 0001
Create Date: 2026-11-25 21:30:00

A branch of its own off the initial schema, so it applies beside other features' revisions
(``cloud-hub db upgrade`` upgrades to ``heads``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "identity_0001"
down_revision = "0001"
branch_labels = ("identity",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_credentials",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=False),
        sa.Column("device_group", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("rotated_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_credentials_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_credentials")),
    )
    with op.batch_alter_table("device_credentials", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_credentials_device_group"), ["device_group"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_device_credentials_revoked_at"), ["revoked_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_credentials", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_credentials_revoked_at"))
        batch_op.drop_index(batch_op.f("ix_device_credentials_device_group"))
    op.drop_table("device_credentials")
