"""Alembic environment: runs on the connection ``okno.db.migrate`` hands over."""

from alembic import context

from okno.db.registry import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only `alembic` CLI without okno
    raise RuntimeError("run migrations with `okno migrate`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
