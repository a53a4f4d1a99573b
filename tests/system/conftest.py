"""Fixtures for system tests: seeded databases (SQLite data dirs, dedicated PostgreSQL
databases) and ``okno serve`` processes that are always killed on teardown."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.system import server as srv

DB_PREFIX = "okno_systest_"


@dataclass
class Storage:
    """Where one test's okno keeps its data: a data dir, and a PostgreSQL URL or ''."""

    backend: str
    data_dir: Path
    database_url: str = ""


@pytest.fixture(scope="session")
def sqlite_seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose SQLite database was migrated and seeded by the CLI once;
    each test copies it (three CLI runs per test would cost seconds)."""
    folder = tmp_path_factory.mktemp("seeded-sqlite")
    srv.seed(srv.okno_env(folder))
    return folder


@pytest.fixture(scope="session")
def postgres_seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dedicated template database (never ``test``), migrated and seeded by the CLI;
    each test gets ``CREATE DATABASE … TEMPLATE`` of it."""
    services.require_postgres()
    srv.drop_stale_databases(DB_PREFIX)
    name = f"{DB_PREFIX}{os.getpid()}_tpl"
    url = srv.create_database(name)
    try:
        srv.seed(srv.okno_env(tmp_path_factory.mktemp("seeded-pg"), database_url=url))
        yield name
    finally:
        srv.drop_database(name)


_counter = itertools.count(1)


@pytest.fixture
def storage_factory(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[str], Storage]]:
    """``make("sqlite"|"postgres")`` -> a fresh seeded Storage; databases dropped after."""
    created: list[str] = []

    def make(backend: str) -> Storage:
        data_dir = tmp_path / f"data{next(_counter)}"
        if backend == "sqlite":
            template: Path = request.getfixturevalue("sqlite_seeded")
            data_dir.mkdir()
            for item in template.iterdir():
                if item.name.startswith("okno.db"):
                    shutil.copy(item, data_dir / item.name)
            return Storage("sqlite", data_dir)
        assert backend == "postgres", backend
        template_db: str = request.getfixturevalue("postgres_seeded")
        name = f"{DB_PREFIX}{os.getpid()}_{next(_counter)}"
        url = srv.create_database(name, template=template_db)
        created.append(name)
        data_dir.mkdir()
        return Storage("postgres", data_dir, url)

    yield make
    for name in created:
        srv.drop_database(name)


@pytest.fixture
def storage(request: pytest.FixtureRequest, storage_factory: Callable[[str], Storage]) -> Storage:
    """Parametrize indirectly with "sqlite" or "postgres"."""
    return storage_factory(getattr(request, "param", "sqlite"))


@pytest.fixture
def okno_server() -> Iterator[Callable[..., srv.OknoServer]]:
    """``make(storage, **kwargs)`` -> a not yet started OknoServer; every server made here
    is SIGKILLed at teardown (also when the test failed), its log shown on failure."""
    made: list[srv.OknoServer] = []

    def make(storage: Storage, **kwargs: Any) -> srv.OknoServer:
        server = srv.OknoServer(storage.data_dir, database_url=storage.database_url, **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill9()
    for server in made:  # shown by pytest only when the test failed
        print(server.log_tail())


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
