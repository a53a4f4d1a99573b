"""Attachment scanning and quarantine (issue 8).

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        # Files stored before scanning existed count as "none": not scanned, served.
        batch_op.add_column(
            sa.Column("scan_status", sa.String(length=20), nullable=False, server_default="none")
        )
        batch_op.add_column(sa.Column("scan_signature", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_attachments_sha256", ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index("ix_attachments_sha256")
        batch_op.drop_column("scanned_at")
        batch_op.drop_column("scan_signature")
        batch_op.drop_column("scan_status")
