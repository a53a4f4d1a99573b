"""The ``okno`` command as an operator or a script uses it: real processes, a temporary
data directory, exit codes, one clear line on stderr for bad input, never a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from okno.cli import main as okno_main
from tests import services
from tests.system.conftest import Storage
from tests.system.server import PASSWORD, OknoServer, okno_env, pg_url, run_cli

Result = subprocess.CompletedProcess[str]


def run_many(calls: list[tuple[list[str], dict[str, str]]]) -> list[Result]:
    """Run several CLI commands at once (each is a cold Python start)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: run_cli(call[0], call[1], check=False), calls))


def assert_clean_failure(result: Result, *words: str) -> str:
    """Non-zero exit, no traceback, and one ``Error: …`` line naming the problem. (Click's
    own usage errors may add its ``Usage:``/``Try …`` hint lines above it.)"""
    shown = f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode != 0, shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, shown
    hints = [line for line in lines if line not in errors]
    assert all(line.startswith(("Usage:", "Try ")) for line in hints), shown
    for word in words:
        assert word.lower() in errors[0].lower(), shown
    return errors[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return okno_env(tmp_path / "data")


def _commands(group: click.Group, prefix: list[str]) -> Iterator[list[str]]:
    for name, command in sorted(group.commands.items()):
        yield [*prefix, name]
        if isinstance(command, click.Group):
            yield from _commands(command, [*prefix, name])


def test_every_command_has_help(env: dict[str, str]) -> None:
    paths = [[], *_commands(okno_main, [])]
    assert ["users", "create"] in paths and ["channels", "add"] in paths and ["serve"] in paths
    # As real processes: the console script starts, imports cleanly and writes nothing to
    # stderr (every command is registered when `okno.cli` is imported, and --help runs no
    # command's code, so one cold start per command — a minute of CI — would add nothing).
    real = run_many([(["--help"], env), (["users", "create", "--help"], env)])
    for result in real:
        shown = f"{result.args}: {result.returncode}\n{result.stderr}"
        assert result.returncode == 0 and result.stdout.startswith("Usage: okno "), shown
        assert result.stderr == "", shown
    # Every command, from the same click objects in this process.
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(okno_main, [*path, "--help"], prog_name="okno", env=env)
        shown = f"okno {' '.join(path)} --help: {result.exit_code}\n{result.output}"
        assert result.exit_code == 0 and result.exception is None, shown
        assert result.stdout.startswith(f"Usage: okno {' '.join([*path, ''])}"), shown
        assert result.stderr == "", shown
    in_process = runner.invoke(okno_main, ["users", "create", "--help"], prog_name="okno")
    assert real[1].stdout == in_process.stdout  # the same text either way


def test_migrate_prints_the_revision_and_is_repeatable(env: dict[str, str]) -> None:
    first = run_cli(["migrate", "--json"], env)
    revision = json.loads(first.stdout)["revision"]
    assert isinstance(revision, str) and revision
    again = run_cli(["migrate", "--json"], env)
    assert json.loads(again.stdout) == {"revision": revision}


def _count(env: dict[str, str], sql: str) -> int:
    with sqlite3.connect(Path(env["OKNO_DATA_DIR"]) / "okno.db") as conn:
        return int(conn.execute(sql).fetchone()[0])


def test_users_create(env: dict[str, str]) -> None:
    migrated = env  # users create and channels add migrate a new database first
    created = run_cli(
        [
            "users",
            "create",
            "--login",
            "anna",
            "--password",
            PASSWORD,
            "--role",
            "operator",
            "--team",
            "Поддержка",
            "--json",
        ],
        migrated,
    )
    user = json.loads(created.stdout)
    assert user["login"] == "anna" and user["role"] == "operator" and user["team_id"]

    def attempt(login: str, password: str, role: str) -> list[str]:
        return [
            "users",
            "create",
            "--login",
            login,
            "--password",
            password,
            "--role",
            role,
            "--team",
            "Кредиты",
        ]

    bad_role, short_password, duplicate = run_many(
        [
            (attempt("boris", PASSWORD, "king"), migrated),
            (attempt("boris", "short", "operator"), migrated),
            (attempt("anna", PASSWORD, "supervisor"), migrated),
        ]
    )
    assert_clean_failure(bad_role, "role")
    assert_clean_failure(short_password, "password", "10")
    assert_clean_failure(duplicate, "anna", "taken")
    # Nothing half-written: no new user, and the team named in the failed calls is not there.
    assert _count(migrated, "SELECT count(*) FROM users") == 1
    assert _count(migrated, "SELECT count(*) FROM teams WHERE name = 'Кредиты'") == 0


def test_users_create_with_skills(env: dict[str, str]) -> None:
    base = ["users", "create", "--password", PASSWORD, "--role", "operator", "--json"]
    created = run_cli([*base, "--login", "anna", "--skills", "cards:3, credits,карты:5"], env)
    assert json.loads(created.stdout)["skills"] == {"cards": 3, "credits": 1, "карты": 5}
    with sqlite3.connect(Path(env["OKNO_DATA_DIR"]) / "okno.db") as conn:
        stored = conn.execute("SELECT skills FROM users WHERE login = 'anna'").fetchone()[0]
    assert json.loads(stored) == {"cards": 3, "credits": 1, "карты": 5}

    bad_level, bad_name, twice = run_many(
        [
            ([*base, "--login", "boris", "--skills", "cards:7"], env),
            ([*base, "--login", "boris", "--skills", "card s:2"], env),
            ([*base, "--login", "boris", "--skills", "cards:1,cards:2"], env),
        ]
    )
    assert_clean_failure(bad_level, "--skills", "cards", "1-5")
    assert_clean_failure(bad_name, "--skills", "card s")
    assert_clean_failure(twice, "--skills", "twice")
    assert _count(env, "SELECT count(*) FROM users") == 1


def test_channels_add_widget(env: dict[str, str]) -> None:
    migrated = env
    added = run_cli(["channels", "add", "widget", "--key", "acme", "--json"], migrated)
    data = json.loads(added.stdout)
    assert isinstance(data["id"], int)
    assert data["key"] == "acme"
    assert 'data-widget-key="acme"' in data["snippet"] and "widget.js" in data["snippet"]

    bad_key, taken = run_many(
        [
            (["channels", "add", "widget", "--key", "a b", "--json"], migrated),
            (["channels", "add", "widget", "--key", "acme", "--json"], migrated),
        ]
    )
    assert_clean_failure(bad_key, "key")
    assert_clean_failure(taken, "acme")
    assert bad_key.stdout == "" and taken.stdout == ""  # a script reading --json gets nothing
    assert _count(migrated, "SELECT count(*) FROM channels") == 1


def test_channels_switch_the_bot_on_and_off(env: dict[str, str]) -> None:
    run_cli(["channels", "add", "widget", "--key", "acme", "--bot", "--json"], env)
    with sqlite3.connect(Path(env["OKNO_DATA_DIR"]) / "okno.db") as conn:
        (config,) = conn.execute("SELECT config FROM channels WHERE key = 'acme'").fetchone()
    assert json.loads(config)["bot"] is True
    off = run_cli(["channels", "update", "acme", "--no-bot", "--json"], env)
    assert json.loads(off.stdout)["bot"] is False
    kept = run_cli(["channels", "update", "acme", "--greeting", "Здравствуйте!", "--json"], env)
    assert json.loads(kept.stdout)["bot"] is False  # not given: unchanged


def test_bad_settings_are_named(env: dict[str, str]) -> None:
    cases = {
        "OKNO_PORT": "notanumber",
        "OKNO_SECRET_KEY": "too-short",
        "OKNO_DATABASE_URL": "mysql://root@127.0.0.1/okno",
        "OKNO_LOG_LEVEL": "loud",
    }
    alone, together = run_many(
        [(["migrate"], {**env, "OKNO_PORT": "notanumber"}), (["migrate"], {**env, **cases})]
    )
    assert_clean_failure(alone, "OKNO_PORT")
    # Several bad settings at once: one line naming every one of them.
    assert_clean_failure(together, *cases)
    assert not (Path(env["OKNO_DATA_DIR"]) / "okno.db").exists()  # nothing was started


def test_unreachable_database_is_a_clean_error(env: dict[str, str]) -> None:
    port = services.free_port()  # nothing listens there
    result = run_cli(
        ["migrate"],
        {**env, "OKNO_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{port}/okno"},
        check=False,
    )
    assert_clean_failure(result, "database")


class TracebackShown(AssertionError):
    """The command printed a Python traceback instead of a message."""


@pytest.mark.parametrize("problem", ["missing-postgres-database", "corrupt-sqlite-file"])
def test_database_errors_are_clean(env: dict[str, str], problem: str) -> None:
    if problem == "missing-postgres-database":
        services.require_postgres()
        env = {**env, "OKNO_DATABASE_URL": pg_url("okno_systest_no_such_database")}
    else:
        data = Path(env["OKNO_DATA_DIR"])
        data.mkdir(parents=True)
        (data / "okno.db").write_text("this is not a database\n")
    result = run_cli(["migrate"], env, check=False)
    if "Traceback" in result.stderr:
        raise TracebackShown(result.stderr[-2000:])
    assert_clean_failure(result, "database")


def test_several_server_processes_need_redis(env: dict[str, str]) -> None:
    result = run_cli(["serve", "--workers", "2"], env, check=False)
    assert_clean_failure(result, "OKNO_REDIS_URL")


def _sign_in(server: OknoServer, login: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v1/auth/token", json={"login": login, "password": PASSWORD}
    )


def test_users_unlock_lets_a_locked_out_sole_admin_back_in(
    storage: Storage, okno_server: Callable[..., OknoServer]
) -> None:
    # lockout without a period: only an admin unlocks, and the only admin is locked
    server = okno_server(
        storage, extra_env={"OKNO_LOCKOUT_ATTEMPTS": "2", "OKNO_LOCKOUT_MINUTES": "0"}
    )
    server.cli(["users", "create", "--login", "boss", "--password", PASSWORD, "--role", "admin"])
    server.start()
    for _ in range(2):
        wrong = httpx.post(
            f"{server.url}/api/v1/auth/token",
            json={"login": "boss", "password": "not-the-password-1"},
        )
        assert wrong.status_code == 401
    assert _sign_in(server, "boss").status_code == 401  # locked, the right password too

    unlocked = server.cli(["users", "unlock", "boss"])
    assert unlocked.stdout.startswith("unlocked boss"), unlocked.stdout
    signed_in = _sign_in(server, "boss")
    assert signed_in.status_code == 200, signed_in.text

    token = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    entries = httpx.get(
        f"{server.url}/api/v1/audit", params={"action": "auth.unlocked"}, headers=token
    ).json()["entries"]
    assert [(e["actor_login"], e["details"]) for e in entries] == [("system", {"by": "cli"})]
    again = json.loads(server.cli(["users", "unlock", "boss", "--json"]).stdout)
    assert again["login"] == "boss" and again["was_locked"] is False
    missing = server.cli(["users", "unlock", "nobody"], check=False)
    assert_clean_failure(missing, "nobody")


def test_tokens_create_with_an_allow_list(
    storage: Storage, okno_server: Callable[..., OknoServer]
) -> None:
    server = okno_server(storage)
    created = server.cli(
        [
            "tokens",
            "create",
            "--name",
            "CRM",
            "--scope",
            "users.read",
            "--allow",
            "127.0.0.1, 10.20.0.0/16",
            "--allow",
            "10.20.30.40",
            "--json",
        ]
    )
    crm = json.loads(created.stdout)
    assert crm["ip_allowlist"] == ["127.0.0.1/32", "10.20.0.0/16", "10.20.30.40/32"]
    elsewhere = json.loads(
        server.cli(
            [
                "tokens",
                "create",
                "--name",
                "Core",
                "--scope",
                "users.read",
                "--allow",
                "10.0.0.0/8",
                "--json",
            ]
        ).stdout
    )
    bad = server.cli(
        ["tokens", "create", "--name", "X", "--scope", "users.read", "--allow", "10.0.0.300"],
        check=False,
    )
    assert_clean_failure(bad, "--allow", "10.0.0.300")
    listed = json.loads(server.cli(["tokens", "list", "--json"]).stdout)["tokens"]
    assert {t["name"]: t["ip_allowlist"] for t in listed} == {
        "CRM": crm["ip_allowlist"],
        "Core": ["10.0.0.0/8"],
    }

    server.start()  # the test calls from 127.0.0.1
    ok = httpx.get(
        f"{server.url}/api/v1/users", headers={"Authorization": f"Bearer {crm['token']}"}
    )
    assert ok.status_code == 200, ok.text
    refused = httpx.get(
        f"{server.url}/api/v1/users", headers={"Authorization": f"Bearer {elsewhere['token']}"}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"
