"""Fixtures: a fresh migrated database per test (SQLite file, or PostgreSQL when
``OKNO_TEST_DB=postgres``), settings pointing at it, an app client, named staff personas."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from okno.app import create_app
from okno.bot import assist
from okno.bot import service as bot_service
from okno.db import migrate
from okno.db.registry import Base
from okno.db.session import Database
from okno.settings import Settings, load_settings
from tests import services
from tests.builders import Staff, seed_staff


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database, copied for each test (migrating each time is slow)."""
    folder = tmp_path_factory.mktemp("template")
    services.run_in_thread(lambda: migrate.upgrade(load_settings(data_dir=folder)))
    return folder / "okno.db"


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    url = services.require_postgres()
    services.run_in_thread(lambda: _reset_postgres(url, drop=True))
    services.run_in_thread(lambda: migrate.upgrade(load_settings(database_url=url)))
    return url


async def _reset_postgres(url: str, *, drop: bool = False) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        if drop:
            await conn.execute(text("DROP SCHEMA public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        else:
            tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            await conn.execute(
                text(
                    "INSERT INTO counters (name, value) VALUES "
                    "('events', 0), ('events_pruned_through', 0)"
                )
            )
    await engine.dispose()


def make_settings(tmp_path: Path, database_url: str = "", **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": database_url,
        "auto_migrate": False,
        "worker_in_process": False,
        "secret_key": "test-signing-key-0123456789-abcdefgh",
        "log_level": "info",
        # A failed job is retried within a fraction of a second, not after 2, 4, 8 … s:
        # tests of retries still see every failed try and the one delivery, without
        # waiting out the production back-off (tests/jobs checks that schedule).
        "job_retry_base_seconds": 0.05,
        "job_retry_max_seconds": 1.0,
    }
    values.update(overrides)
    return load_settings(**values)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, migrated, empty database for this test."""
    if services.DB_BACKEND == "postgres":
        url: str = request.getfixturevalue("postgres_migrated")
        services.run_in_thread(lambda: _reset_postgres(url))
        # the same URL now names an empty database: indexes built from the last test's
        # data must not answer this one's questions
        bot_service.forget_bases()
        assist.forget_histories()
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    shutil.copy(template, tmp_path / "okno.db")
    return ""


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
def staff(settings: Settings) -> Staff:
    """Named personas: anna and igor (operators, team Поддержка), olga (operator, team
    Кредиты), sveta (supervisor, no team), root (admin)."""
    return services.run_in_thread(lambda: seed_staff(settings))


@pytest.fixture
def client(settings: Settings, staff: Staff) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app) as test_client:
        yield test_client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests meaningful only on PostgreSQL run in the PostgreSQL pass, not as skips here;
    and the PostgreSQL pass runs only tests that use the database under test (the others
    would do exactly what they did in the SQLite pass)."""
    if services.DB_BACKEND == "postgres":
        kept = [
            i
            for i in items
            if "database_url" in getattr(i, "fixturenames", ())
            or i.get_closest_marker("postgres_only") is not None
        ]
    else:
        kept = [i for i in items if i.get_closest_marker("postgres_only") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    # Under pytest-xdist (--dist loadgroup) the tests that use Redis run one after another on
    # one worker: one of them kills every pub/sub connection of the server on purpose.
    for item in items:
        if item.get_closest_marker("redis") is not None:
            item.add_marker(pytest.mark.xdist_group("redis"))
