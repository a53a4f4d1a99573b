"""Customer verification and unmasking (issue 8).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("bank_customer_id", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("answer", sa.String(length=200), nullable=True),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_customer_verifications_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_verifications_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["started_by"],
            ["users.id"],
            name=op.f("fk_customer_verifications_started_by_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_verifications")),
    )
    with op.batch_alter_table("customer_verifications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_customer_verifications_conversation_id"),
            ["conversation_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("customer_verifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_verifications_conversation_id"))
    op.drop_table("customer_verifications")
