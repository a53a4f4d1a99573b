"""The ``attachments.scan`` job: scan a held customer file once clamd answers again.

A customer's file that arrived while clamd was down waits in ``scan-pending/``. The scan
runs in the job's prepare step (an outside call must not hold the database's write lock);
clamd still down raises, and the worker retries with backoff. The verdict then applies
to every held attachment with the same content, in one transaction: clean files move into
the store, infected ones into quarantine (and the customer is told), and each affected
message is re-announced with ``attachment.scanned`` so open screens update.

On the last attempt (``scanning.SCAN_ATTEMPTS``, about a day and a half) the job does not
fail silently: every held attachment with that content becomes ``failed`` — blocked
unscanned, moved to quarantine, never served — the operator's screen shows "could not be
checked", the customer is asked to send the file again, and each is audited
(``attachment.blocked``, reason ``not_scanned``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import attachments, clamd, scanning
from okno.conversations.attachments import SCAN_CLEAN, SCAN_FAILED, SCAN_PENDING
from okno.conversations.messaging import record_scanned, tell_file_refused, tell_file_unchecked
from okno.conversations.models import Attachment, Conversation, Message
from okno.db.base import utcnow
from okno.db.session import Database, after_commit
from okno.jobs.worker import JobContext

log = structlog.get_logger("okno.attachments")
# retention marks an attachment whose file it deleted with an empty path
_REMOVED = ""


@dataclass(frozen=True)
class Scanned:
    sha256: str
    storage_path: str
    # None: the antivirus never answered and this was the last attempt (``gave_up`` says why)
    verdict: clamd.Verdict | None
    gave_up: str = ""


async def prepare_scan(db: Database, payload: dict[str, Any], ctx: JobContext) -> Scanned | None:
    """Scan the held file; None when there is nothing left to scan (already settled).
    Raises ScannerUnavailable (the worker retries) unless this is the last attempt."""
    async with db.read() as session:
        row = await session.get(Attachment, int(payload["attachment_id"]))
        if row is None or row.scan_status != SCAN_PENDING or row.storage_path == _REMOVED:
            return None
        sha256, relative = row.sha256, row.storage_path
    path = attachments.path_of(ctx.settings.data_dir, relative, SCAN_PENDING)
    if not path.exists():
        # the held copy is removed only after its verdict committed
        return None
    try:
        verdict = await scanning.scan_bytes(ctx.settings, path.read_bytes())
        if verdict is None:
            raise clamd.ScannerUnavailable(
                "no antivirus is configured (OKNO_CLAMD_ADDRESS) but files wait for a scan"
            )
    except clamd.ScannerUnavailable as exc:
        if ctx.attempt < scanning.SCAN_ATTEMPTS:
            raise
        return Scanned(sha256=sha256, storage_path=relative, verdict=None, gave_up=str(exc))
    return Scanned(sha256=sha256, storage_path=relative, verdict=verdict)


async def _held(session: AsyncSession, sha256: str) -> list[Attachment]:
    """Every attachment still held with this content (locked)."""
    return list(
        (
            await session.scalars(
                select(Attachment)
                .where(
                    Attachment.sha256 == sha256,
                    Attachment.scan_status == SCAN_PENDING,
                    Attachment.storage_path != _REMOVED,
                )
                .with_for_update()
            )
        ).all()
    )


async def scan(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Apply the verdict to every held attachment with this content."""
    scanned: Scanned | None = ctx.prepared
    if scanned is None:
        return
    if scanned.verdict is None:
        await _give_up(session, scanned, ctx)
        return
    data_dir = ctx.settings.data_dir
    if scanned.verdict.infected:
        scanning.quarantine_now(data_dir, scanned.storage_path)
        held_ids = {r.id for r in await _held(session, scanned.sha256)}
        rows = await scanning.block_content(
            session, sha256=scanned.sha256, signature=scanned.verdict.signature
        )
        log.warning("attachment.blocked", sha256=scanned.sha256, threat=scanned.verdict.signature)
        await scanning.audit_blocked(
            session,
            [r for r in rows if r.id in held_ids],
            reason=scanning.INFECTED,
            source="retry",
        )
        await scanning.audit_blocked(
            session,
            [r for r in rows if r.id not in held_ids],
            reason=scanning.INFECTED,
            source="same_content",
        )
        await record_scanned(session, {r.message_id for r in rows})
        # customers hear of files that were waiting, not of older copies found out now
        await _tell_customers(session, [r for r in rows if r.id in held_ids], unchecked=False)
        return
    rows = await _held(session, scanned.sha256)
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


async def _give_up(session: AsyncSession, scanned: Scanned, ctx: JobContext) -> None:
    """The antivirus never answered: block every held copy unscanned, say so everywhere."""
    rows = await _held(session, scanned.sha256)
    now = utcnow()
    for row in rows:
        row.scan_status = SCAN_FAILED
        row.scanned_at = now
    log.warning(
        "attachment.scan_gave_up",
        sha256=scanned.sha256,
        reason=scanned.gave_up,
        attachments=len(rows),
    )
    data_dir = ctx.settings.data_dir

    async def quarantine() -> None:
        # after commit: should the transaction fail, the rows stay held with their file
        attachments.move(
            data_dir, scanned.storage_path, from_status=SCAN_PENDING, to_status=SCAN_FAILED
        )

    after_commit(session, quarantine)
    await scanning.audit_blocked(session, rows, reason=scanning.NOT_SCANNED, source="gave_up")
    await record_scanned(session, {r.message_id for r in rows})
    await _tell_customers(session, rows, unchecked=True)


async def _tell_customers(
    session: AsyncSession, rows: list[Attachment], *, unchecked: bool
) -> None:
    """One notice per customer message whose files were blocked (or could not be checked)."""
    by_message: dict[int, list[str]] = {}
    for row in rows:
        by_message.setdefault(row.message_id, []).append(row.filename)
    for message_id, names in sorted(by_message.items()):
        message = await session.get(Message, message_id)
        if message is None or message.author_kind != "customer":
            continue
        conversation = await session.get(Conversation, message.conversation_id)
        if conversation is None:
            continue
        if unchecked:
            await tell_file_unchecked(session, conversation, names)
        else:
            await tell_file_refused(session, conversation, names)
