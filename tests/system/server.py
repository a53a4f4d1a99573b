"""Real ``okno`` processes for system tests: the CLI, ``okno serve`` and dedicated databases.

Everything here is bounded in time and talks only to 127.0.0.1. A test gets servers from
the ``okno_server`` fixture (tests/system/conftest.py), which kills them on teardown even
when the test failed; :class:`OknoServer` can also be used directly with ``try/finally``.

- :func:`okno_command` — argv prefix that runs the ``okno`` console script of this
  interpreter (or ``python -m okno.cli`` when the script is not installed).
- :func:`run_cli` — run one CLI command with a given ``OKNO_*`` environment.
- :class:`OknoServer` — ``okno serve --port P`` as a subprocess: ``start()`` waits for
  ``/readyz`` 200, ``kill9()`` sends SIGKILL, ``restart()`` starts it again on the same
  port and data directory.
- :func:`create_database` / :func:`drop_database` — a dedicated PostgreSQL database (never
  the ``test`` database the unit tests truncate), optionally cloned from a template.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from tests import services

SECRET_KEY = "system-test-signing-key-0123456789-abcdef"
PASSWORD = "correct-horse-1"
WIDGET_KEY = "acme"
CLI_TIMEOUT = 60.0
START_TIMEOUT = 45.0


def okno_command() -> list[str]:
    """How to run ``okno`` with this interpreter (the console script next to it)."""
    script = Path(sys.executable).with_name("okno")
    if script.exists():
        return [str(script)]
    found = shutil.which("okno")
    if found and "shims" not in found:
        return [found]
    return [sys.executable, "-m", "okno.cli"]


def okno_env(
    data_dir: Path,
    *,
    database_url: str = "",
    redis_url: str = "",
    secret_key: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of an okno process: no stray ``OKNO_*`` from the caller's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKNO_")}
    env["OKNO_DATA_DIR"] = str(data_dir)
    env["OKNO_LOG_LEVEL"] = "warning"
    env["PYTHONUNBUFFERED"] = "1"
    if database_url:
        env["OKNO_DATABASE_URL"] = database_url
    if redis_url:
        env["OKNO_REDIS_URL"] = redis_url
    if secret_key:
        env["OKNO_SECRET_KEY"] = secret_key
    env.update(extra or {})
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], *, timeout: float = CLI_TIMEOUT, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``okno ARGS``; with ``check`` a non-zero exit raises with its output."""
    result = subprocess.run(
        [*okno_command(), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"okno {' '.join(args)} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def seed(env: Mapping[str, str]) -> None:
    """Staff and widget every system test uses: operator ``anna`` and widget ``acme``
    (the CLI migrates the database first)."""
    run_cli(
        [
            "users",
            "create",
            "--login",
            "anna",
            "--password",
            PASSWORD,
            "--role",
            "operator",
            "--name",
            "Анна",
        ],
        env,
    )
    out = run_cli(["channels", "add", "widget", "--key", WIDGET_KEY, "--json"], env)
    assert json.loads(out.stdout)["key"] == WIDGET_KEY


_LIVE: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    """Last line of defence (fixtures kill their servers): none outlives pytest."""
    for proc in list(_LIVE):
        if proc.poll() is None:
            proc.kill()


class OknoServer:
    """One ``okno serve`` process; its output goes to ``log_path``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database_url: str = "",
        redis_url: str = "",
        secret_key: str | None = None,
        port: int | None = None,
        extra_env: Mapping[str, str] | None = None,
        name: str = "okno",
    ) -> None:
        self.data_dir = data_dir
        self._port_chosen = port is None  # by free_port(): another may be taken
        self.port = port or services.free_port()
        self.env = okno_env(
            data_dir,
            database_url=database_url,
            redis_url=redis_url,
            secret_key=secret_key,
            extra=extra_env,
        )
        self.name = name
        self.log_path = data_dir / f"{name}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # -- addresses ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    # -- life cycle -----------------------------------------------------------------------
    def spawn(self) -> None:
        """Start the process without waiting (see :meth:`wait_ready`)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"\n----- start #{self.starts} -----\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [*okno_command(), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C of pytest does not hit it; we stop it
            )
            _LIVE.add(self.proc)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        """Poll ``/readyz`` until 200; fail with the log when the process dies or is slow."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(
                        f"{self.name} exited with {self.proc.returncode} while starting\n"
                        + self.log_tail()
                    )
                try:
                    response = client.get(f"{self.url}/readyz")
                    if response.status_code == 200:
                        body: dict[str, Any] = response.json()
                        return body
                    last = f"{response.status_code} {response.text}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        raise AssertionError(
            f"{self.name} not ready after {timeout}s (last: {last})\n" + self.log_tail()
        )

    def start(self, timeout: float = START_TIMEOUT) -> OknoServer:
        first = self.starts == 0
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except AssertionError:
                # A port chosen by free_port() can be taken by another process (a parallel
                # test) before the server binds it: a first start then moves to another.
                if attempt == 2 or not (first and self._port_chosen and self._port_taken()):
                    raise
                self.port = services.free_port()
                self.log_path = self.data_dir / f"{self.name}-{self.port}.log"
        raise AssertionError("unreachable")

    def _port_taken(self) -> bool:
        exited = self.returncode not in (None, 0)
        return exited and "address already in use" in self.log_tail(600).lower()

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash of the process (``returncode``
        is then ``-9``, unless it had exited by itself before)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        _LIVE.discard(self.proc)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL when it does not exit within ``timeout``."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        _LIVE.discard(self.proc)

    def restart(self, timeout: float = START_TIMEOUT) -> OknoServer:
        """Kill (-9) if still running, then start again on the same port and data."""
        self.kill9()
        return self.start(timeout)

    def cli(self, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run the CLI against this server's database (same environment)."""
        return run_cli(args, self.env, **kwargs)

    def log_tail(self, chars: int = 6000) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- {self.log_path} (tail) ---\n{text[-chars:]}"


# -- PostgreSQL ------------------------------------------------------------------------------


def pg_admin_dsn() -> str:
    """A libpq DSN to the maintenance database of the test PostgreSQL server."""
    parsed = urlparse(services.PG_URL.replace("+asyncpg", ""))
    user = parsed.username or "postgres"
    auth = f"{user}:{parsed.password}@" if parsed.password else f"{user}@"
    return f"postgresql://{auth}{parsed.hostname or '127.0.0.1'}:{parsed.port or 5432}/postgres"


def pg_url(database: str) -> str:
    """``services.PG_URL`` pointed at another database on the same server."""
    parsed = urlparse(services.PG_URL)
    return parsed._replace(path=f"/{database}").geturl()


_NAME = re.compile(r"^[a-z0-9_]+$")


async def _admin(*statements: str) -> None:
    import asyncpg

    conn = await asyncio.wait_for(asyncpg.connect(pg_admin_dsn()), timeout=10)
    try:
        for statement in statements:
            await asyncio.wait_for(conn.execute(statement), timeout=30)
    finally:
        await conn.close()


def create_database(name: str, *, template: str | None = None) -> str:
    """Drop and create database ``name`` (optionally a copy of ``template``); its URL."""
    assert _NAME.match(name), name
    clone = f" TEMPLATE {template}" if template else ""
    services.run_in_thread(
        lambda: _admin(
            f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}{clone}"
        )
    )
    return pg_url(name)


def drop_database(name: str) -> None:
    assert _NAME.match(name), name
    services.run_in_thread(lambda: _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def drop_stale_databases(prefix: str) -> None:
    """Drop ``PREFIX<pid>_*`` databases left by test runs whose process is gone."""

    async def run() -> None:
        import asyncpg

        conn = await asyncio.wait_for(asyncpg.connect(pg_admin_dsn()), timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
            )
            for row in rows:
                match = re.match(re.escape(prefix) + r"(\d+)_", row["datname"])
                if not match:
                    continue
                pid = int(match.group(1))
                if pid == os.getpid() or _alive(pid):
                    continue
                await asyncio.wait_for(
                    conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)'), 30
                )
        finally:
            await conn.close()

    services.run_in_thread(run)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# -- realtime clients ------------------------------------------------------------------------


class EventStream:
    """A WebSocket client of ``/api/v1/ws`` or ``/api/v1/widget/ws`` that remembers every
    event it received; ``async with`` connects and waits for ``stream.ready``."""

    def __init__(self, url: str, *, label: str = "ws") -> None:
        self.url = url
        self.label = label
        self.seen: list[dict[str, Any]] = []
        self._ws: Any = None

    async def __aenter__(self) -> EventStream:
        from websockets.asyncio.client import connect

        self._ws = await connect(self.url, open_timeout=10, close_timeout=2, max_size=1 << 22)
        await self.wait_for(lambda e: e.get("type") == "stream.ready", within=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            try:
                await asyncio.wait_for(self._ws.close(), timeout=3)
            except Exception:  # the server may be gone (killed): nothing to close politely
                pass

    async def wait_for(self, predicate: Any, *, within: float) -> dict[str, Any]:
        """The first event (already received or arriving within ``within`` s) matching."""
        for event in self.seen:
            if predicate(event):
                return event
        deadline = time.monotonic() + within
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                kinds = [(e.get("seq"), e.get("type")) for e in self.seen]
                raise AssertionError(
                    f"{self.label}: no matching event within {within}s; got {kinds}"
                )
            try:
                raw = await asyncio.wait_for(self._ws.recv(), timeout=remaining)
            except TimeoutError:
                continue
            event = json.loads(raw)
            self.seen.append(event)
            if event.get("type") == "stream.error":
                raise AssertionError(f"{self.label}: stream error {event}")
            if predicate(event):
                return event


def message_event(client_msg_id: str) -> Any:
    """Predicate: the ``message.created`` event of the message with this client_msg_id."""

    def match(event: dict[str, Any]) -> bool:
        message = (event.get("payload") or {}).get("message") or {}
        return event.get("type") == "message.created" and (
            message.get("client_msg_id") == client_msg_id
        )

    return match


# -- async API helpers shared by the system tests --------------------------------------------


async def staff_token(http: httpx.AsyncClient, login: str = "anna") -> str:
    """A staff bearer token from a running server."""
    response = await http.post("/api/v1/auth/token", json={"login": login, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def widget_session(http: httpx.AsyncClient) -> str:
    """A new visitor's widget session token from a running server."""
    response = await http.post("/api/v1/widget/sessions", json={"widget_key": WIDGET_KEY})
    assert response.status_code == 200, response.text
    token: str = response.json()["session_token"]
    return token
