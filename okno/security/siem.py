"""Shipping the audit log to a SIEM: JSON lines to a file and/or RFC 5424 syslog.

Entries are shipped after they committed, by the periodic job ``audit.ship``: for each
configured target it reads the entries after that target's durable cursor
(``audit_cursors``), sends them, then moves the cursor. A restart or a collector that is
down loses nothing; it can at worst send a batch twice (the entry's ``seq`` identifies
duplicates). Because sequence numbers are assigned under the chain lock and committed in
order, an entry never commits behind a cursor that already passed it.

Syslog lines (RFC 5424)::

    <110>1 2026-11-23T10:00:00.000001+00:00 host okno - auth.sign_in
        [okno@32473 seq="17" outcome="success"] {"seq": 17, ...}

facility 13 ("log audit"), severity 6 (informational) for successes and 4 (warning) for
failures, denials and lockouts. Over TCP each message is framed by octet counting
(RFC 6587: ``LEN SP MSG``); over UDP one message per datagram. The MSG is ASCII JSON
(non-ASCII escaped), so no BOM is needed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.db.session import Database
from okno.jobs.worker import JobContext
from okno.security.audit import entry_dict
from okno.security.audit_models import AuditCursor, AuditEntry
from okno.settings import Settings

log = structlog.get_logger("okno.audit")
SHIP = "audit.ship"
EVERY_SECONDS = 10
BATCH = 500
FACILITY_LOG_AUDIT = 13
ENTERPRISE_ID = 32473  # the IANA number reserved for documentation examples (RFC 5612)
TIMEOUT_SECONDS = 5.0


class ShipError(Exception):
    """A target could not take the entries; the cursor stays and the job retries."""


def targets(settings: Settings) -> list[str]:
    """The configured targets by name: ``file`` and/or ``syslog``."""
    found = []
    if settings.audit_ship_file:
        found.append("file")
    if settings.audit_syslog:
        found.append("syslog")
    return found


def json_line(entry: dict[str, Any]) -> str:
    """One entry as a JSON line (UTF-8, keys sorted)."""
    return json.dumps(entry, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def syslog_message(entry: dict[str, Any], *, hostname: str | None = None) -> str:
    """One entry as an RFC 5424 message."""
    failed = entry.get("outcome") != "success"
    pri = FACILITY_LOG_AUDIT * 8 + (4 if failed else 6)
    host = _printable(hostname or socket.gethostname(), 255) or "-"
    msgid = _printable(entry["action"], 32) or "-"
    sd = (
        f'[okno@{ENTERPRISE_ID} seq="{int(entry["seq"])}" '
        f'outcome="{_sd_value(str(entry.get("outcome", "")))}"]'
    )
    body = json.dumps(entry, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    return f"<{pri}>1 {entry['at']} {host} okno {os.getpid()} {msgid} {sd} {body}"


def _printable(value: str, limit: int) -> str:
    """RFC 5424 header fields: printable US-ASCII without spaces."""
    return "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]


def _sd_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _append_file(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(line + "\n" for line in lines))
        handle.flush()
        os.fsync(handle.fileno())


def _address(url: str) -> tuple[str, str, int]:
    scheme, _, rest = url.partition("://")
    host, _, port = rest.rpartition(":")
    return scheme, host.strip("[]"), int(port)


async def _send_syslog(url: str, messages: list[str]) -> None:
    scheme, host, port = _address(url)
    if scheme == "udp":
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(host, port)
        )
        try:
            for message in messages:
                transport.sendto(message.encode("utf-8"))
        finally:
            transport.close()
        return
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port), timeout=TIMEOUT_SECONDS
    )
    try:
        for message in messages:
            data = message.encode("utf-8")
            writer.write(str(len(data)).encode() + b" " + data)
        await asyncio.wait_for(writer.drain(), timeout=TIMEOUT_SECONDS)
    finally:
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), timeout=TIMEOUT_SECONDS)
        except (OSError, TimeoutError):
            pass
    del reader


async def deliver(settings: Settings, target: str, entries: list[dict[str, Any]]) -> None:
    """Send ``entries`` to one target; raises ShipError when it cannot."""
    try:
        if target == "file":
            lines = [json_line(e) for e in entries]
            await asyncio.to_thread(_append_file, Path(settings.audit_ship_file), lines)
        elif target == "syslog":
            await _send_syslog(settings.audit_syslog, [syslog_message(e) for e in entries])
    except (OSError, TimeoutError) as exc:
        raise ShipError(f"{target}: {type(exc).__name__}: {exc}") from exc


async def cursor_of(session: AsyncSession, target: str) -> int:
    """How far ``target`` has received the log (0: nothing yet)."""
    row = await session.get(AuditCursor, target)
    return row.seq if row else 0


async def ship_once(db: Database, settings: Settings) -> dict[str, int]:
    """Ship every entry after each target's cursor; returns entries shipped per target."""
    shipped: dict[str, int] = {}
    for target in targets(settings):
        shipped[target] = 0
        while True:
            async with db.read() as session:
                after = await cursor_of(session, target)
                rows = (
                    await session.scalars(
                        select(AuditEntry)
                        .where(AuditEntry.seq > after)
                        .order_by(AuditEntry.seq)
                        .limit(BATCH)
                    )
                ).all()
                batch = [entry_dict(r) for r in rows]
            if not batch:
                break
            await deliver(settings, target, batch)  # outside any write transaction
            last = int(batch[-1]["seq"])
            async with db.transaction() as session:
                await _advance(session, target, last)
            shipped[target] += len(batch)
            if len(batch) < BATCH:
                break
    if any(shipped.values()):
        log.info("audit.shipped", **shipped)
    return shipped


async def _advance(session: AsyncSession, target: str, seq: int) -> None:
    row = await session.get(AuditCursor, target, with_for_update=True)
    if row is None:
        session.add(AuditCursor(target=target, seq=seq, updated_at=utcnow()))
    elif seq > row.seq:
        row.seq = seq
        row.updated_at = utcnow()
    await session.flush()


async def prepare_ship(db: Database, payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """The job's work, done before (and outside) its own transaction: a slow collector
    must not hold the database's write lock."""
    try:
        return await ship_once(db, ctx.settings)
    except ShipError as exc:
        log.warning("audit.ship_failed", error=str(exc))
        raise


async def ship_job(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Nothing left to do in the transaction: ``prepare_ship`` moved the cursors."""
