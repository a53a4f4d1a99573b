"""Engine, sessions and the one unit of work: a transaction whose commit is the acknowledgement.

Services flush, never commit. A request or a job opens ``db.transaction()``, calls services,
and the context manager commits once, so a message, its jobs, its events and its audit row
land together or not at all. Services that must act just before commit (sealing events with
their sequence numbers) or just after it (publishing those events) register hooks in
``session.info``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from okno.settings import Settings

Hook = Callable[[AsyncSession], Awaitable[None]]
AfterHook = Callable[[], Awaitable[None]]
T = TypeVar("T")


def before_commit(session: AsyncSession, key: str, hook: Hook, *, last: bool = False) -> None:
    """Run ``hook(session)`` once, right before this transaction commits. ``last`` hooks
    run after all others: the audit log takes its chain lock there, so every transaction
    takes its locks in one order (no deadlock) and holds that lock only until commit."""
    hooks: dict[str, Hook] = session.info.setdefault(
        "before_commit_last" if last else "before_commit", {}
    )
    hooks.setdefault(key, hook)


def after_commit(session: AsyncSession, hook: AfterHook) -> None:
    """Run ``hook()`` after this transaction committed (never after a rollback)."""
    session.info.setdefault("after_commit", []).append(hook)


def _make_engine(settings: Settings) -> AsyncEngine:
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=0,
            pool_timeout=60,
            connect_args={"timeout": 30},
        )
        synchronous = settings.sqlite_synchronous

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control from the driver so we can say BEGIN IMMEDIATE:
            # a deferred transaction that later writes can fail with "database is locked"
            # instead of waiting for the other writer.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            if conn.get_execution_options().get("okno_write", True):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=True,
        pool_timeout=60,
    )


class Database:
    """The process's engine and its two kinds of session: write transactions and reads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Set by the app: receives the events a transaction committed (the bus's publish).
        self.publish: Callable[[list[dict[str, Any]]], Awaitable[None]] | None = None
        self.engine = _make_engine(settings)
        self.dialect = self.engine.dialect.name
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        reader_engine = self.engine.execution_options(okno_write=False)
        self._reader = async_sessionmaker(reader_engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queue this process's writers here, where the
        # next one is woken the moment the lock frees, instead of in SQLite's busy handler,
        # which polls with sleeps of up to 100 ms. Other processes still meet the busy
        # timeout.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None

    @asynccontextmanager
    async def transaction(self, *, attempt: int = 0) -> AsyncIterator[AsyncSession]:
        """A write transaction: commits on success, rolls back on any exception.

        ``attempt`` > 0 marks a retry after a lost race (``session.info["attempt"]``), so
        optimistic paths know to look for the winner's row first.
        """
        async with self._serialised(), self._writer() as session:
            session.info["publish"] = self.publish
            session.info["attempt"] = attempt
            try:
                yield session
                for hook in list(session.info.get("before_commit", {}).values()):
                    await hook(session)
                for hook in list(session.info.get("before_commit_last", {}).values()):
                    await hook(session)
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
        for after in session.info.get("after_commit", []):
            await after()

    async def write(self, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction; retry when it lost an insert race or a deadlock.

        A retried attempt starts over and finds what the winner stored (idempotent paths),
        so two concurrent identical sends still store one message.
        """
        for attempt in range(5):
            try:
                async with self.transaction(attempt=attempt) as session:
                    return await fn(session)
            except IntegrityError:
                if attempt == 4:
                    raise
            except DBAPIError as exc:
                orig = getattr(exc, "orig", None)
                code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
                if code not in ("40001", "40P01") or attempt == 4:
                    raise
            await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def _serialised(self) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        async with self._write_lock:
            yield

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only session (never commits; on SQLite it does not take the write lock).

        Closing (not rolling back) keeps loaded rows usable after the block.
        """
        async with self._reader() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
