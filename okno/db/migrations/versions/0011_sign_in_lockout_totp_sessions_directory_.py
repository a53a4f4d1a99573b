"""Sign-in: lockout, TOTP, sessions, directory and OpenID users, IP allow-lists (issue 8).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_state",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("totp_secret", sa.String(length=300), nullable=True),
        sa.Column("totp_pending_secret", sa.String(length=300), nullable=True),
        sa.Column("totp_enabled", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("token_generation", sa.Integer(), nullable=False),
        sa.Column("sessions_revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sign_in_state_user_id_users")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_sign_in_state")),
        sa.UniqueConstraint("external_id", name=op.f("uq_sign_in_state_external_id")),
    )
    with op.batch_alter_table("sign_in_state", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_state_sessions_revoked_at"),
            ["sessions_revoked_at"],
            unique=False,
        )
    op.create_table(
        "staff_ip_allowlist",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=50), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_ip_allowlist")),
        sa.UniqueConstraint("cidr", name=op.f("uq_staff_ip_allowlist_cidr")),
    )
    op.create_table(
        "two_factor_roles",
        sa.Column("role", sa.String(length=30), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_two_factor_roles")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "ip_allowlist",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("ip_allowlist")
    op.drop_table("two_factor_roles")
    op.drop_table("staff_ip_allowlist")
    with op.batch_alter_table("sign_in_state", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_state_sessions_revoked_at"))
    op.drop_table("sign_in_state")
