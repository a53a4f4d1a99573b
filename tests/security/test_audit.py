"""The audit log: entries chained by hash, written with the action they record, refused
changes by the database, and ``okno audit verify`` naming the first broken entry."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from okno.cli import main as okno_main
from okno.db.session import Database
from okno.security import audit
from okno.security.audit_models import AuditEntry
from okno.settings import Settings
from tests import services

ANNA = audit.Actor(user_id=1, login="anna", role="operator", ip="10.0.0.7")


async def _write(db: Database, count: int, *, action: str = audit.CUSTOMER_VIEWED) -> None:
    for n in range(count):
        async with db.transaction() as session:
            await audit.record(
                session, action=action, actor=ANNA, object_type="customer", object_id=n + 1
            )


async def _entries(db: Database) -> list[AuditEntry]:
    async with db.read() as session:
        return list((await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all())


def _verify_cli(settings: Settings, *args: str) -> Result:
    env = {
        "OKNO_DATA_DIR": str(settings.data_dir),
        "OKNO_DATABASE_URL": settings.database_url,
        "OKNO_SECRET_KEY": settings.secret_key,
        "OKNO_LOG_LEVEL": "error",
    }
    return CliRunner().invoke(okno_main, ["audit", "verify", *args], env=env)


def _sqlite(settings: Settings) -> sqlite3.Connection:
    return sqlite3.connect(settings.data_dir / "okno.db", isolation_level=None)


async def test_entries_are_numbered_without_gaps_and_each_links_to_the_one_before(
    db: Database,
) -> None:
    await _write(db, 3)
    rows = await _entries(db)
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == audit.GENESIS
    assert rows[1].prev_hash == rows[0].hash and rows[2].prev_hash == rows[1].hash
    assert rows[0].actor_login == "anna" and rows[0].ip == "10.0.0.7"
    assert rows[2].object_type == "customer" and rows[2].object_id == "3"
    async with db.read() as session:
        result = await audit.verify(session)
    assert result.ok and result.count == 3 and result.last_seq == 3


async def test_an_action_that_rolls_back_leaves_no_entry_and_no_gap(db: Database) -> None:
    await _write(db, 1)
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await audit.record(session, action=audit.USER_UPDATED, actor=ANNA)
            raise RuntimeError("the action failed")
    await _write(db, 1)
    assert [r.seq for r in await _entries(db)] == [1, 2]
    assert all(r.action == audit.CUSTOMER_VIEWED for r in await _entries(db))


async def test_concurrent_writers_never_fork_the_chain(db: Database) -> None:
    async def one(n: int) -> None:
        async with db.transaction() as session:
            await audit.record(session, action=audit.EXPORT, actor=ANNA, object_id=n)
            await asyncio.sleep(0)  # let the others interleave before commit

    await asyncio.gather(*(one(n) for n in range(20)))
    rows = await _entries(db)
    assert [r.seq for r in rows] == list(range(1, 21))
    assert sorted(int(r.object_id) for r in rows) == list(range(20))
    async with db.read() as session:
        assert (await audit.verify(session)).ok


async def test_details_are_kept_small_and_without_personal_data(db: Database) -> None:
    async with db.transaction() as session:
        await audit.record(
            session,
            action=audit.EXPORT,
            actor=ANNA,
            details={"query": "карта 4111 1111 1111 1111", "rows": 12, "ratio": 0.5},
        )
    (entry,) = await _entries(db)
    assert "4111 1111 1111 1111" not in json.dumps(entry.details, ensure_ascii=False)
    assert entry.details["rows"] == 12
    assert entry.details["ratio"] == "0.5"  # floats as text: the hash survives JSONB


async def test_a_refused_action_is_recorded_in_its_own_transaction(db: Database) -> None:
    await audit.record_separately(
        db,
        action=audit.AUTH_SIGN_IN,
        actor=audit.Actor(login="mallory", ip="192.0.2.1"),
        outcome="failure",
        details={"reason": "bad_password"},
    )
    (entry,) = await _entries(db)
    assert (entry.action, entry.outcome, entry.actor_id) == ("auth.sign_in", "failure", None)


async def test_an_unknown_outcome_is_a_programming_error(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(ValueError, match="outcome"):
            await audit.record(session, action=audit.EXPORT, outcome="maybe")


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="SQLite triggers")
async def test_sqlite_refuses_to_update_or_delete_an_entry(
    db: Database, settings: Settings
) -> None:
    await _write(db, 2)
    conn = _sqlite(settings)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit_entries SET outcome = 'failure' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_entries WHERE seq = 2")
    with pytest.raises(sqlite3.IntegrityError, match="only moves forward"):
        conn.execute("UPDATE audit_state SET head_seq = 0")
    conn.close()
    assert len(await _entries(db)) == 2


def _tamper(settings: Settings, *statements: str) -> None:
    """What someone holding the database file can do: drop the guards, then edit."""
    conn = _sqlite(settings)
    conn.execute("DROP TRIGGER audit_entries_no_update")
    conn.execute("DROP TRIGGER audit_entries_no_delete")
    for statement in statements:
        conn.execute(statement)
    conn.close()


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="edits the SQLite file")
def test_verify_passes_on_an_intact_log(settings: Settings) -> None:
    services.run_in_thread(lambda: _with_db(settings, 5))
    result = _verify_cli(settings)
    assert result.exit_code == 0, result.output
    assert "5 entries verified" in result.output
    as_json = _verify_cli(settings, "--json")
    assert json.loads(as_json.output) == {
        "ok": True,
        "count": 5,
        "first_seq": 1,
        "last_seq": 5,
        "base_seq": 0,
    }


async def _with_db(settings: Settings, count: int) -> None:
    db = Database(settings)
    try:
        await _write(db, count)
    finally:
        await db.dispose()


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="edits the SQLite file")
def test_editing_one_entry_makes_verify_fail_naming_it(settings: Settings) -> None:
    services.run_in_thread(lambda: _with_db(settings, 5))
    _tamper(settings, "UPDATE audit_entries SET actor_login = 'igor' WHERE seq = 3")
    result = _verify_cli(settings)
    assert result.exit_code == 1
    assert "BROKEN at entry 3 (changed)" in result.output
    assert "no longer matches its hash" in result.output
    as_json = json.loads(_verify_cli(settings, "--json").stdout.splitlines()[0])
    assert as_json["ok"] is False and as_json["count"] == 2
    assert as_json["broken"]["seq"] == 3 and as_json["broken"]["problem"] == "changed"


_FIELDS = (
    "seq",
    "at",
    "actor_id",
    "actor_login",
    "actor_role",
    "ip",
    "action",
    "object_type",
    "object_id",
    "outcome",
    "details",
)


def _forge(settings: Settings, seq: int, **changes: str) -> None:
    """Change entry ``seq`` and give it a hash that matches its new content, as a forger
    who read this module would."""
    conn = _sqlite(settings)
    row = conn.execute(
        f"SELECT {', '.join(_FIELDS)}, prev_hash FROM audit_entries WHERE seq = ?", (seq,)
    ).fetchone()
    conn.close()
    fields = dict(zip(_FIELDS, row[:-1], strict=True))
    fields["at"] = datetime.fromisoformat(fields["at"]).replace(tzinfo=UTC)
    fields["details"] = json.loads(fields["details"])
    prev = changes.pop("prev_hash", row[-1])
    fields.update(changes)
    forged = audit.chain_hash(prev, fields)
    sets = ", ".join(f"{k} = '{v}'" for k, v in changes.items())
    sets = f"{sets}, " if sets else ""
    _tamper(
        settings,
        f"UPDATE audit_entries SET {sets}prev_hash = '{prev}', hash = '{forged}' WHERE seq = {seq}",
    )


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="edits the SQLite file")
def test_rewriting_an_entry_with_a_fresh_hash_is_still_caught_by_the_next_link(
    settings: Settings,
) -> None:
    services.run_in_thread(lambda: _with_db(settings, 4))
    _forge(settings, 2, object_id="999")
    result = _verify_cli(settings)
    assert result.exit_code == 1
    assert "BROKEN at entry 2 (changed)" in result.output
    assert "entry 3 still points at its original hash" in result.output


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="edits the SQLite file")
def test_an_entry_chained_after_another_than_its_predecessor_is_reported_reordered(
    settings: Settings,
) -> None:
    services.run_in_thread(lambda: _with_db(settings, 3))
    conn = _sqlite(settings)
    first_hash = conn.execute("SELECT hash FROM audit_entries WHERE seq = 1").fetchone()[0]
    conn.close()
    _forge(settings, 3, prev_hash=first_hash)
    result = _verify_cli(settings)
    assert result.exit_code == 1
    assert "BROKEN at entry 3 (reordered)" in result.output
    assert "chained after entry 1, not after entry 2" in result.output


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="edits the SQLite file")
def test_deleting_an_entry_makes_verify_fail_naming_the_missing_one(settings: Settings) -> None:
    services.run_in_thread(lambda: _with_db(settings, 5))
    _tamper(settings, "DELETE FROM audit_entries WHERE seq = 2")
    result = _verify_cli(settings)
    assert result.exit_code == 1
    assert "BROKEN at entry 2 (missing)" in result.output


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="edits the SQLite file")
def test_cutting_off_the_newest_entries_is_noticed(settings: Settings) -> None:
    services.run_in_thread(lambda: _with_db(settings, 5))
    _tamper(settings, "DELETE FROM audit_entries WHERE seq >= 4")
    result = _verify_cli(settings)
    assert result.exit_code == 1
    assert "BROKEN at entry 4 (missing)" in result.output
    assert "entries 4–5" in result.output


@pytest.mark.postgres_only
@pytest.mark.skipif(services.DB_BACKEND != "postgres", reason="PostgreSQL triggers")
async def test_postgresql_refuses_to_update_or_delete_an_entry(db: Database) -> None:
    await _write(db, 2)
    for statement in (
        "UPDATE audit_entries SET outcome = 'failure' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 2",
        "UPDATE audit_state SET head_seq = 0",
    ):
        with pytest.raises((DBAPIError, IntegrityError)):
            async with db.engine.begin() as conn:
                await conn.execute(text(statement))
    assert [r.seq for r in await _entries(db)] == [1, 2]
    async with db.read() as session:
        assert (await audit.verify(session)).ok


@pytest.mark.postgres_only
@pytest.mark.skipif(services.DB_BACKEND != "postgres", reason="needs parallel writers")
async def test_postgresql_writers_in_two_processes_worth_of_pools_never_fork_the_chain(
    settings: Settings,
) -> None:
    """Two Database objects (as two app processes) append at once: the state-row lock
    serialises them, so the numbers stay 1..N and the chain verifies."""
    first, second = Database(settings), Database(settings)
    try:

        async def one(db: Database, n: int) -> None:
            async with db.transaction() as session:
                await audit.record(session, action=audit.EXPORT, object_id=n)

        await asyncio.gather(*(one(first if n % 2 else second, n) for n in range(40)))
        rows = await _entries(first)
        assert [r.seq for r in rows] == list(range(1, 41))
        async with first.read() as session:
            assert (await audit.verify(session)).ok
    finally:
        await first.dispose()
        await second.dispose()
