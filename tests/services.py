"""Where the real PostgreSQL, Redis and Chromium are, and how a test asks for them.

A test that needs one calls ``require_*``: on a machine without it the test is skipped
with the reason shown; under ``OKNO_TEST_REQUIRE_ALL=1`` (what .ci/run sets) a missing
service fails the test instead, so CI never passes by skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

import pytest

T = TypeVar("T")

# Under pytest-xdist each worker (gw0, gw1, …) gets a database and a Redis database of its
# own, so parallel tests never truncate each other's tables: test_gw1, redis db 14, …
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_WORKER_NUMBER = int(WORKER[2:]) if WORKER.startswith("gw") and WORKER[2:].isdigit() else 0
BASE_PG_URL = os.environ.get(
    "OKNO_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def _for_worker_pg(url: str) -> str:
    if not WORKER:
        return url
    parsed = urlparse(url)
    return parsed._replace(path=f"{parsed.path.rstrip('/') or '/test'}_{WORKER}").geturl()


def _for_worker_redis(url: str) -> str:
    parsed = urlparse(url)
    base = int(parsed.path.strip("/") or 0)
    return parsed._replace(path=f"/{(base - _WORKER_NUMBER) % 16}").geturl()


PG_URL = _for_worker_pg(BASE_PG_URL)
REDIS_URL = _for_worker_redis(os.environ.get("OKNO_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
CHROMIUM = os.environ.get("OKNO_TEST_CHROMIUM", "/usr/bin/chromium")
DB_BACKEND = os.environ.get("OKNO_TEST_DB", "sqlite")
REQUIRE_ALL = os.environ.get("OKNO_TEST_REQUIRE_ALL") == "1"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def _missing(reason: str) -> None:
    if REQUIRE_ALL:
        pytest.fail(f"{reason} (OKNO_TEST_REQUIRE_ALL=1: CI must run every test)")
    pytest.skip(reason)


def require_postgres() -> str:
    if not _reachable(PG_URL, 5432):
        _missing(f"PostgreSQL is not reachable at {PG_URL}")
    if PG_URL != BASE_PG_URL and not _created:
        run_in_thread(_create_worker_database)
        _created.append(PG_URL)
    return PG_URL


_created: list[str] = []


async def _create_worker_database() -> None:
    """This worker's own database, made once through the configured one."""
    import asyncpg

    name = urlparse(PG_URL).path.strip("/")
    conn = await asyncpg.connect(BASE_PG_URL.replace("+asyncpg", ""))
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def require_redis() -> str:
    if not _reachable(REDIS_URL, 6379):
        _missing(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


def require_chromium() -> str:
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        _missing(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[test]')")
    return CHROMIUM


def require_dovecot() -> str:
    """Debian's Dovecot IMAP server, which the e-mail channel's tests start on loopback."""
    for path in (shutil.which("dovecot"), "/usr/sbin/dovecot"):
        if path and os.path.exists(path):
            return path
    _missing("Dovecot is not installed (apt-get install dovecot-imapd)")
    raise AssertionError("unreachable")


def require_slapd() -> tuple[str, str]:
    """Debian's OpenLDAP server and ``ldapadd``, which the directory sign-in tests start
    on loopback with a database in a temporary folder: (slapd, ldapadd)."""
    slapd = shutil.which("slapd") or (
        "/usr/sbin/slapd" if os.path.exists("/usr/sbin/slapd") else ""
    )
    ldapadd = shutil.which("ldapadd") or ""
    if not slapd or not ldapadd:
        _missing("OpenLDAP is not installed (apt-get install slapd ldap-utils)")
    return slapd, ldapadd


def run_in_thread(fn: Callable[[], Any]) -> Any:
    """Run an async function to completion on a fresh loop in another thread (usable from
    inside a running event loop, e.g. an async test's fixture)."""
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(fn())
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
