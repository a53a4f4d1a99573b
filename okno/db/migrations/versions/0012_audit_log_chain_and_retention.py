"""Audit log chain and retention (issue 8): the hash-chained audit table, its state row,
SIEM cursors, retention run reports; triggers that refuse UPDATE and DELETE on the audit
table (DELETE is allowed only at or below the retention checkpoint).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_REFUSE_UPDATE = "audit entries are append-only: UPDATE is refused"
_REFUSE_DELETE = (
    "audit entries are append-only: only entries at or below the retention checkpoint "
    "may be deleted"
)
_REFUSE_STATE = "the audit chain state only moves forward"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_entries_no_update BEFORE UPDATE ON audit_entries
    BEGIN SELECT RAISE(ABORT, '{_REFUSE_UPDATE}'); END""",
    f"""CREATE TRIGGER audit_entries_no_delete BEFORE DELETE ON audit_entries
    WHEN OLD.seq > COALESCE((SELECT base_seq FROM audit_state WHERE id = 1), 0)
    BEGIN SELECT RAISE(ABORT, '{_REFUSE_DELETE}'); END""",
    f"""CREATE TRIGGER audit_state_forward_only BEFORE UPDATE ON audit_state
    WHEN NEW.head_seq < OLD.head_seq OR NEW.base_seq < OLD.base_seq
    BEGIN SELECT RAISE(ABORT, '{_REFUSE_STATE}'); END""",
    f"""CREATE TRIGGER audit_state_no_delete BEFORE DELETE ON audit_state
    BEGIN SELECT RAISE(ABORT, '{_REFUSE_STATE}'); END""",
]

POSTGRES_TRIGGERS = [
    f"""CREATE FUNCTION okno_audit_entries_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            RAISE EXCEPTION '{_REFUSE_UPDATE}' USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF OLD.seq > COALESCE((SELECT base_seq FROM audit_state WHERE id = 1), 0) THEN
            RAISE EXCEPTION '{_REFUSE_DELETE}' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION okno_audit_entries_guard()""",
    f"""CREATE FUNCTION okno_audit_state_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR NEW.head_seq < OLD.head_seq OR NEW.base_seq < OLD.base_seq
        THEN
            RAISE EXCEPTION '{_REFUSE_STATE}' USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN NEW;
    END $$""",
    """CREATE TRIGGER audit_state_forward_only BEFORE UPDATE OR DELETE ON audit_state
    FOR EACH ROW EXECUTE FUNCTION okno_audit_state_guard()""",
]


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_login", sa.String(length=200), nullable=False),
        sa.Column("actor_role", sa.String(length=50), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=100), nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=False),
        sa.Column("object_id", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index("ix_audit_entries_action", ["action", "seq"], unique=False)
        batch_op.create_index("ix_audit_entries_actor", ["actor_login", "seq"], unique=False)
        batch_op.create_index(
            "ix_audit_entries_object", ["object_type", "object_id", "seq"], unique=False
        )
        batch_op.create_index("ix_audit_entries_at", ["at"], unique=False)

    op.create_table(
        "audit_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("head_seq", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("base_seq", sa.BigInteger(), nullable=False),
        sa.Column("base_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_state")),
    )
    op.create_table(
        "audit_cursors",
        sa.Column("target", sa.String(length=50), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", name=op.f("pk_audit_cursors")),
    )
    op.create_table(
        "retention_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column(
            "report", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    triggers = POSTGRES_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_state_forward_only ON audit_state")
        op.execute("DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries")
        op.execute("DROP FUNCTION IF EXISTS okno_audit_state_guard()")
        op.execute("DROP FUNCTION IF EXISTS okno_audit_entries_guard()")
    op.drop_table("retention_runs")
    op.drop_table("audit_cursors")
    op.drop_table("audit_state")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_entries_at")
        batch_op.drop_index("ix_audit_entries_object")
        batch_op.drop_index("ix_audit_entries_actor")
        batch_op.drop_index("ix_audit_entries_action")
    op.drop_table("audit_entries")
