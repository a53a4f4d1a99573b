"""Shipping the audit log to a SIEM: JSON lines to a file, RFC 5424 syslog over UDP and
TCP to real listeners on loopback; a durable cursor, so nothing is lost across restarts
or while the collector is down."""

from __future__ import annotations

import asyncio
import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from okno.db.session import Database
from okno.jobs import service as jobs
from okno.jobs.registry import default_registry
from okno.jobs.worker import Worker
from okno.security import audit, siem
from okno.settings import Settings
from tests.services import free_port

# <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG
RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) okno (?P<pid>\d+) (?P<msgid>\S+) "
    r'\[okno@32473 seq="(?P<seq>\d+)" outcome="(?P<outcome>\w+)"\] (?P<msg>\{.*\})$'
)


async def _record(db: Database, count: int, *, outcome: str = "success") -> None:
    for n in range(count):
        async with db.transaction() as session:
            await audit.record(
                session,
                action=audit.AUTH_SIGN_IN,
                actor=audit.Actor(user_id=1, login="anna", role="operator", ip="10.1.1.1"),
                object_type="user",
                object_id=1,
                outcome=outcome,
                details={"attempt": n},
            )


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_entries_go_to_the_file_once_each_and_the_cursor_survives_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "siem" / "audit.jsonl"
    shipping = settings.model_copy(update={"audit_ship_file": str(target)})
    db = Database(shipping)
    await _record(db, 3)
    assert await siem.ship_once(db, shipping) == {"file": 3}
    assert await siem.ship_once(db, shipping) == {"file": 0}
    await db.dispose()

    restarted = Database(shipping)  # a new process: only the database remembers
    try:
        await _record(restarted, 2)
        assert await siem.ship_once(restarted, shipping) == {"file": 2}
    finally:
        await restarted.dispose()
    lines = _lines(target)
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["action"] == "auth.sign_in" and lines[0]["actor_login"] == "anna"
    assert lines[1]["prev_hash"] == lines[0]["hash"]


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[str] = []

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data.decode("utf-8"))


async def test_syslog_over_udp_sends_one_rfc5424_message_per_entry(
    settings: Settings,
) -> None:
    loop = asyncio.get_running_loop()
    transport, listener = await loop.create_datagram_endpoint(
        _Udp, local_addr=("127.0.0.1", 0), family=socket.AF_INET
    )
    port = transport.get_extra_info("sockname")[1]
    shipping = settings.model_copy(update={"audit_syslog": f"udp://127.0.0.1:{port}"})
    db = Database(shipping)
    try:
        await _record(db, 2)
        await _record(db, 1, outcome="failure")
        assert await siem.ship_once(db, shipping) == {"syslog": 3}
        for _ in range(50):
            if len(listener.received) == 3:
                break
            await asyncio.sleep(0.02)
    finally:
        transport.close()
        await db.dispose()
    parsed = [RFC5424.match(m) for m in listener.received]
    assert all(parsed), listener.received
    ok = [m for m in parsed if m]
    assert [int(m["seq"]) for m in ok] == [1, 2, 3]
    # facility 13 (log audit): severity 6 for a success, 4 (warning) for a failure
    assert [int(m["pri"]) for m in ok] == [110, 110, 108]
    assert ok[0]["msgid"] == "auth.sign_in"
    body = json.loads(ok[2]["msg"])
    assert body["outcome"] == "failure" and body["seq"] == 3


async def test_syslog_over_tcp_uses_octet_counting_and_loses_nothing_while_down(
    settings: Settings,
) -> None:
    port = free_port()
    shipping = settings.model_copy(update={"audit_syslog": f"tcp://127.0.0.1:{port}"})
    db = Database(shipping)
    received: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            length = await reader.readuntil(b" ") if not reader.at_eof() else b""
            if not length:
                break
            received.append((await reader.readexactly(int(length[:-1]))).decode("utf-8"))
            if reader.at_eof():
                break
        writer.close()

    try:
        await _record(db, 2)
        with pytest.raises(siem.ShipError):  # the collector is not there yet
            await siem.ship_once(db, shipping)
        async with db.read() as session:
            assert await siem.cursor_of(session, "syslog") == 0

        server = await asyncio.start_server(lambda r, w: _safe(handle(r, w)), "127.0.0.1", port)
        async with server:
            await _record(db, 1)
            assert await siem.ship_once(db, shipping) == {"syslog": 3}
            for _ in range(50):
                if len(received) == 3:
                    break
                await asyncio.sleep(0.02)
        async with db.read() as session:
            assert await siem.cursor_of(session, "syslog") == 3
    finally:
        await db.dispose()
    seqs = [int(m["seq"]) for m in map(RFC5424.match, received) if m]
    assert seqs == [1, 2, 3], received


async def _safe(coro: Any) -> None:
    try:
        await coro
    except (asyncio.IncompleteReadError, ConnectionError):
        pass


async def test_the_periodic_job_ships_after_commit(settings: Settings, tmp_path: Path) -> None:
    target = tmp_path / "audit.jsonl"
    shipping = settings.model_copy(update={"audit_ship_file": str(target)})
    db = Database(shipping)
    try:
        await _record(db, 2)
        async with db.transaction() as session:
            await jobs.enqueue(session, kind=siem.SHIP)
        await Worker(db, shipping, default_registry()).drain()
    finally:
        await db.dispose()
    assert [e["seq"] for e in _lines(target)] == [1, 2]


def test_a_bad_syslog_address_names_the_setting() -> None:
    from okno.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="OKNO_AUDIT_SYSLOG"):
        load_settings(audit_syslog="syslog.bank.local:514")
    with pytest.raises(SettingsError, match="OKNO_AUDIT_SYSLOG"):
        load_settings(audit_syslog="tcp://collector:99999")


def test_syslog_header_fields_are_printable_ascii() -> None:
    message = siem.syslog_message(
        {
            "seq": 7,
            "at": "2026-11-23T10:00:00.000000+00:00",
            "action": "customer.viewed",
            "outcome": "success",
            "actor_login": "Анна",
        },
        hostname="okno host 1",
    )
    match = RFC5424.match(message)
    assert match and match["host"] == "oknohost1"
    assert message.isascii()  # the JSON body escapes Cyrillic: no BOM needed


def test_okno_audit_ship_ships_now_or_says_what_is_missing(
    settings: Settings, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from okno.cli import main as okno_main
    from tests import services

    async def seed() -> None:
        db = Database(settings)
        try:
            await _record(db, 2)
        finally:
            await db.dispose()

    services.run_in_thread(seed)
    env = {
        "OKNO_DATA_DIR": str(settings.data_dir),
        "OKNO_DATABASE_URL": settings.database_url,
        "OKNO_SECRET_KEY": settings.secret_key,
        "OKNO_LOG_LEVEL": "error",
    }
    missing = CliRunner().invoke(okno_main, ["audit", "ship"], env=env)
    assert missing.exit_code == 1
    assert "OKNO_AUDIT_SHIP_FILE or OKNO_AUDIT_SYSLOG" in missing.output
    target = tmp_path / "shipped.jsonl"
    env["OKNO_AUDIT_SHIP_FILE"] = str(target)
    shipped = CliRunner().invoke(okno_main, ["audit", "ship", "--json"], env=env)
    assert shipped.exit_code == 0, shipped.output
    assert json.loads(shipped.stdout) == {"file": 2}
    assert [e["seq"] for e in _lines(target)] == [1, 2]
