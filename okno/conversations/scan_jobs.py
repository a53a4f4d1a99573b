"""The ``attachments.scan`` job: scan a held customer file once clamd answers again.

A customer's file that arrived while clamd was down waits in ``scan-pending/``. The scan
runs in the job's prepare step (an outside call must not hold the database's write lock);
clamd still down raises, and the worker retries with backoff. The verdict then applies
to every held attachment with the same content, in one transaction: clean files move into
the store, infected ones into quarantine (and the customer is told), and each affected
message is re-announced with ``attachment.scanned`` so open screens update.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import attachments, clamd, scanning
from okno.conversations.attachments import SCAN_CLEAN, SCAN_PENDING
from okno.conversations.messaging import record_scanned, tell_file_refused
from okno.conversations.models import Attachment, Conversation, Message
from okno.db.base import utcnow
from okno.db.session import Database, after_commit
from okno.jobs.worker import JobContext

log = structlog.get_logger("okno.attachments")


@dataclass(frozen=True)
class Scanned:
    sha256: str
    storage_path: str
    verdict: clamd.Verdict


async def prepare_scan(db: Database, payload: dict[str, Any], ctx: JobContext) -> Scanned | None:
    """Scan the held file; None when there is nothing left to scan (already settled)."""
    async with db.read() as session:
        row = await session.get(Attachment, int(payload["attachment_id"]))
        if row is None or row.scan_status != SCAN_PENDING:
            return None
        sha256, relative = row.sha256, row.storage_path
    path = attachments.path_of(ctx.settings.data_dir, relative, SCAN_PENDING)
    if not path.exists():
        # the held copy is removed only after its verdict committed
        return None
    verdict = await scanning.scan_bytes(ctx.settings, path.read_bytes())
    if verdict is None:
        raise clamd.ScannerUnavailable(
            "no antivirus is configured (OKNO_CLAMD_ADDRESS) but files wait for a scan"
        )
    return Scanned(sha256=sha256, storage_path=relative, verdict=verdict)


async def scan(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Apply the verdict to every held attachment with this content."""
    scanned: Scanned | None = ctx.prepared
    if scanned is None:
        return
    data_dir = ctx.settings.data_dir
    held_ids: set[int] = set()
    if scanned.verdict.infected:
        scanning.quarantine_now(data_dir, scanned.storage_path)
        held_ids = set(
            (
                await session.scalars(
                    select(Attachment.id).where(
                        Attachment.sha256 == scanned.sha256,
                        Attachment.scan_status == SCAN_PENDING,
                    )
                )
            ).all()
        )
        rows = await scanning.block_content(
            session, sha256=scanned.sha256, signature=scanned.verdict.signature
        )
        log.warning(
            "attachment.blocked", sha256=scanned.sha256, threat=scanned.verdict.signature
        )
    else:
        rows = list(
            (
                await session.scalars(
                    select(Attachment)
                    .where(Attachment.sha256 == scanned.sha256)
                    .where(Attachment.scan_status == SCAN_PENDING)
                    .with_for_update()
                )
            ).all()
        )
        held = attachments.path_of(data_dir, scanned.storage_path, SCAN_PENDING)
        served = attachments.path_of(data_dir, scanned.storage_path, SCAN_CLEAN)
        if not served.exists():
            served.parent.mkdir(parents=True, exist_ok=True)
            tmp = served.with_name(f".{served.name}.scan.tmp")
            shutil.copyfile(held, tmp)
            tmp.replace(served)
        now = utcnow()
        for row in rows:
            row.scan_status = SCAN_CLEAN
            row.scanned_at = now

        async def drop_held() -> None:
            held.unlink(missing_ok=True)

        # the held copy goes only once the rows point at the store
        after_commit(session, drop_held)
    await record_scanned(session, {r.message_id for r in rows})
    if scanned.verdict.infected:
        # customers hear of files that were waiting, not of older copies found out now
        await _tell_customers(session, [r for r in rows if r.id in held_ids])


async def _tell_customers(session: AsyncSession, rows: list[Attachment]) -> None:
    """One notice per customer message whose files were blocked."""
    by_message: dict[int, list[str]] = {}
    for row in rows:
        by_message.setdefault(row.message_id, []).append(row.filename)
    for message_id, names in sorted(by_message.items()):
        message = await session.get(Message, message_id)
        if message is None or message.author_kind != "customer":
            continue
        conversation = await session.get(Conversation, message.conversation_id)
        if conversation is not None:
            await tell_file_refused(session, conversation, names)
