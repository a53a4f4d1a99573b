"""Apply Alembic migrations from code (``okno migrate`` and server start-up).

Several processes may start at once against one PostgreSQL: an advisory lock makes the
others wait while one migrates, then they find nothing left to do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from okno.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 7_250_001  # arbitrary, constant: okno's migration advisory lock


def _config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest migration this code knows."""
    return ScriptDirectory.from_config(_config()).get_current_head()


async def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (None when never migrated)."""
    engine = create_async_engine(settings.effective_database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await engine.dispose()


async def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database to ``revision``; safe to run from several processes at once."""
    if settings.is_sqlite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(settings.effective_database_url)
    try:
        async with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_ID})
                await conn.commit()
            try:
                await conn.run_sync(lambda c: command.upgrade(_config(c), revision))
                await conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_ID})
                    await conn.commit()
    finally:
        await engine.dispose()


def make_revision(settings: Settings, message: str) -> None:
    """Autogenerate a migration against a database at head (developer helper)."""
    import asyncio

    async def run() -> None:
        engine = create_async_engine(settings.effective_database_url)
        async with engine.connect() as conn:
            await conn.run_sync(
                lambda c: command.revision(_config(c), message=message, autogenerate=True)
            )
        await engine.dispose()

    asyncio.run(run())
