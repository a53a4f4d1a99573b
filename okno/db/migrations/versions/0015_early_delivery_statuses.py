"""Delivery statuses that arrive before the send is recorded (WhatsApp's fast "failed").

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "early_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("wait_for_customer", sa.Boolean(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_early_statuses_channel_external", "early_statuses", ["channel_id", "external_id"]
    )
    op.create_index("ix_early_statuses_received_at", "early_statuses", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_early_statuses_received_at", table_name="early_statuses")
    op.drop_index("ix_early_statuses_channel_external", table_name="early_statuses")
    op.drop_table("early_statuses")
