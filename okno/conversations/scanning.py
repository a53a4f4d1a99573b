"""Antivirus scanning of attachments through ClamAV's clamd, with quarantine.

Every file okno accepts (widget uploads, staff uploads, files downloaded from
messengers) is type- and size-checked first, then, when ``OKNO_CLAMD_ADDRESS`` is set,
streamed to clamd before it is written anywhere okno serves files from:

- clean: written to the attachment store as usual (``scan_status = clean``);
- infected: written to ``<data_dir>/quarantine/`` instead. A customer's message is still
  stored (nothing a customer sent is lost), its attachment row is marked ``blocked`` with
  the signature name, the operator sees "файл заблокирован антивирусом", downloads are
  refused, and the customer is told the file was not accepted. Other attachments with the
  same content are blocked and quarantined too. A staff upload is refused outright
  (``attachment_infected``): nothing reaches the customer.
- scanner down (unreachable, timeout, an ERROR reply): *fail closed*. A customer's file
  is held in ``<data_dir>/scan-pending/`` (``scan_status = pending``, not downloadable)
  and the job ``attachments.scan`` retries the scan with backoff; a staff upload is
  refused with 503 ``scanner_unavailable`` so the operator can try again. When the job
  gives up, the file is *blocked unscanned* (``scan_status = failed``): quarantined, never
  served, the operator sees "could not be checked" and the customer is asked to send it
  again.

Every block (infected on arrival, on a retry, an earlier copy of infected content, a
refused staff upload, a file that could not be checked) is written to the audit log as
``attachment.blocked``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import attachments, clamd
from okno.conversations.attachments import (
    SCAN_BLOCKED,
    SCAN_CLEAN,
    SCAN_FAILED,
    SCAN_NONE,
    SCAN_PENDING,
    StoredFile,
)
from okno.conversations.models import Attachment, Conversation, Message
from okno.conversations.service import attachments_of
from okno.db.base import utcnow
from okno.db.session import Database
from okno.errors import Conflict, Forbidden, ServiceUnavailable, Unprocessable
from okno.events.service import PendingEvent, record_event
from okno.jobs import service as jobs
from okno.security import audit
from okno.settings import Settings

log = structlog.get_logger("okno.attachments")
SCAN_JOB = "attachments.scan"
# Backoff doubles up to an hour: about a day and a half of retries before giving up.
SCAN_ATTEMPTS = 40
# Why a file was blocked (the audit entry's ``reason``).
INFECTED = "infected"
NOT_SCANNED = "not_scanned"


def scanner_of(settings: Settings) -> clamd.Address | None:
    """clamd's address, or None when no antivirus is configured."""
    return clamd.parse_address(settings.clamd_address) if settings.clamd_address else None


async def scan_bytes(settings: Settings, data: bytes) -> clamd.Verdict | None:
    """clamd's verdict on ``data``; None when scanning is off; ScannerUnavailable when down."""
    address = scanner_of(settings)
    if address is None:
        return None
    return await clamd.scan(address, data, seconds=settings.clamd_timeout_seconds)


async def accept_customer_file(data: bytes, filename: str, *, settings: Settings) -> StoredFile:
    """Check, scan and store a file a customer sent. Raises only for bad input (type,
    size): an infected file is quarantined and a file the scanner could not look at is
    held, both returned so the message is stored with them."""
    attachments.check(
        data,
        filename,
        max_bytes=settings.max_attachment_bytes,
        type_limits=settings.attachment_type_limits,
    )
    try:
        verdict = await scan_bytes(settings, data)
    except clamd.ScannerUnavailable as exc:
        log.warning("attachment.scan_deferred", reason=str(exc))
        return _store(data, filename, settings, SCAN_PENDING)
    if verdict is None:
        return _store(data, filename, settings, SCAN_NONE)
    if verdict.infected:
        stored = _store(data, filename, settings, SCAN_BLOCKED, verdict.signature)
        quarantine_now(settings.data_dir, stored.storage_path)
        log.warning("attachment.blocked", sha256=stored.sha256, threat=verdict.signature)
        return stored
    return _store(data, filename, settings, SCAN_CLEAN)


async def accept_staff_file(
    data: bytes,
    filename: str,
    *,
    settings: Settings,
    db: Database,
    actor: audit.Actor,
    conversation_id: int,
) -> StoredFile:
    """Check, scan and store a file staff send to a customer; an infected file is
    quarantined and refused (422 ``attachment_infected``), and with the scanner down the
    upload is refused (503 ``scanner_unavailable``): the operator still has the file.

    An infected upload also blocks every earlier attachment with the same content (open
    screens update, as when a customer's file is found infected) and is audited."""
    attachments.check(
        data,
        filename,
        max_bytes=settings.max_attachment_bytes,
        type_limits=settings.attachment_type_limits,
    )
    try:
        verdict = await scan_bytes(settings, data)
    except clamd.ScannerUnavailable as exc:
        log.warning("attachment.scanner_unavailable", reason=str(exc))
        raise ServiceUnavailable(
            "the antivirus is not answering, so the file cannot be checked; try again "
            "in a few minutes",
            code="scanner_unavailable",
        ) from None
    if verdict is None:
        return _store(data, filename, settings, SCAN_NONE)
    if verdict.infected:
        stored = _store(data, filename, settings, SCAN_BLOCKED, verdict.signature)
        quarantine_now(settings.data_dir, stored.storage_path)
        log.warning("attachment.blocked", sha256=stored.sha256, threat=verdict.signature)
        signature = verdict.signature

        async def block_earlier_copies(session: AsyncSession) -> None:
            rows = await block_content(session, sha256=stored.sha256, signature=signature)
            await record_scanned(session, {r.message_id for r in rows})
            await audit.record(
                session,
                action=audit.ATTACHMENT_BLOCKED,
                actor=actor,
                object_type="file",
                object_id=stored.sha256,  # the quarantined file's name
                outcome="denied",
                details={
                    "reason": INFECTED,
                    "source": "staff_upload",
                    "threat": signature,
                    "conversation_id": conversation_id,
                    "copies_blocked": len(rows),
                },
            )
            await audit_blocked(session, rows, reason=INFECTED, source="same_content")

        await db.write(block_earlier_copies)
        raise Unprocessable(
            "the antivirus found a threat in this file; it was not sent",
            code="attachment_infected",
            signature=signature,
        )
    return _store(data, filename, settings, SCAN_CLEAN)


def _store(
    data: bytes, filename: str, settings: Settings, status: str, signature: str | None = None
) -> StoredFile:
    return attachments.store(
        data,
        filename,
        data_dir=settings.data_dir,
        max_bytes=settings.max_attachment_bytes,
        type_limits=settings.attachment_type_limits,
        scan_status=status,
        scan_signature=signature,
    )


async def after_insert(session: AsyncSession, rows: Sequence[Attachment]) -> list[Attachment]:
    """Follow-up for freshly inserted attachment rows: a held file gets its retry job, an
    infected one blocks every other attachment with the same content. Returns the rows
    (of any message) newly blocked besides ``rows``."""
    newly_blocked: list[Attachment] = []
    for row in rows:
        if row.scan_status == SCAN_PENDING:
            await jobs.enqueue(
                session,
                kind=SCAN_JOB,
                queue="inbound",
                priority=jobs.HOUSEKEEPING,
                payload={"attachment_id": row.id},
                dedup_key=f"{SCAN_JOB}:{row.id}",
                max_attempts=SCAN_ATTEMPTS,
            )
        elif row.scan_status == SCAN_BLOCKED:
            row.scanned_at = utcnow()
            await audit_blocked(session, [row], reason=INFECTED, source="arrived")
            others = await block_content(
                session, sha256=row.sha256, signature=row.scan_signature, except_ids={row.id}
            )
            await audit_blocked(session, others, reason=INFECTED, source="same_content")
            newly_blocked += others
    return newly_blocked


async def block_content(
    session: AsyncSession,
    *,
    sha256: str,
    signature: str | None,
    except_ids: set[int] | None = None,
) -> list[Attachment]:
    """Mark every not-yet-blocked attachment with this content blocked (the caller moved
    its files into quarantine first, :func:`quarantine_now`). Returns the rows it blocked:
    announce them with :func:`record_scanned` and audit them with :func:`audit_blocked`."""
    query = (
        select(Attachment)
        .where(Attachment.sha256 == sha256, Attachment.scan_status != SCAN_BLOCKED)
        .with_for_update()
    )
    rows = [r for r in (await session.scalars(query)).all() if r.id not in (except_ids or set())]
    if not rows:
        return []
    now = utcnow()
    for row in rows:
        row.scan_status = SCAN_BLOCKED
        row.scan_signature = signature
        row.scanned_at = now
    return rows


async def audit_blocked(
    session: AsyncSession, rows: Sequence[Attachment], *, reason: str, source: str
) -> None:
    """One ``attachment.blocked`` audit entry per attachment row blocked, by the system.

    ``reason``: ``infected`` or ``not_scanned``; ``source``: ``arrived`` (scanned on
    arrival), ``retry`` (a held file scanned later), ``same_content`` (another copy of
    content found infected), ``gave_up`` (the antivirus never answered)."""
    for row in rows:
        await audit.record(
            session,
            action=audit.ATTACHMENT_BLOCKED,
            actor=audit.SYSTEM,
            object_type="attachment",
            object_id=row.id,
            details={
                "reason": reason,
                "source": source,
                "threat": row.scan_signature,
                "conversation_id": row.conversation_id,
                "message_id": row.message_id,
            },
        )


async def record_scanned(session: AsyncSession, message_ids: set[int]) -> None:
    """Record ``attachment.scanned`` for messages whose files got a verdict after they
    were stored: ``{message_id, attachments: [{id, scan_status, scan_signature}]}``, so open
    screens swap a "being checked" file for a link, for "blocked" or for "could not be
    checked" (no file names: they may hold personal data and are already on screen). The
    customer's copy of the event carries no threat name (``events.customer_payload``)."""
    for message_id in sorted(message_ids):
        message = await session.get(Message, message_id)
        if message is None:
            continue
        conversation = await session.get(Conversation, message.conversation_id)
        if conversation is None:
            continue
        rows = await attachments_of(session, [message.id])
        record_event(
            session,
            PendingEvent(
                type="attachment.scanned",
                conversation_id=conversation.id,
                payload={
                    "message_id": message.id,
                    "attachments": [
                        {
                            "id": a.id,
                            "scan_status": a.scan_status,
                            "scan_signature": a.scan_signature,
                        }
                        for a in rows
                    ],
                },
                customer_id=conversation.customer_id,
                customer_visible=not message.internal,
                team_id=conversation.team_id,
                assignee_id=conversation.assignee_id,
            ),
        )


def quarantine_now(data_dir: Path, relative: str) -> None:
    """Move every copy of infected content into quarantine at once, before the rows that
    point at it are marked ``blocked``: should that transaction fail, those rows find no
    file (404 ``file_missing``), never the infected one."""
    for status in (SCAN_NONE, SCAN_PENDING):
        attachments.move(data_dir, relative, from_status=status, to_status=SCAN_BLOCKED)


def is_served(row: Attachment) -> bool:
    """Only files never scanned (no antivirus configured) or found clean are served."""
    return row.scan_status in (SCAN_NONE, SCAN_CLEAN)


def refuse_unless_served(row: Attachment, *, staff: bool) -> None:
    """Raise the download refusal for a blocked (403 ``attachment_blocked``), unscanned
    (403 ``attachment_scan_failed``) or held (409 ``attachment_pending_scan``) file. Only
    ``staff`` are told the threat's name; a customer is not."""
    if row.scan_status == SCAN_BLOCKED:
        extra = {"signature": row.scan_signature} if staff else {}
        raise Forbidden(
            "the antivirus blocked this file; it is kept in quarantine and cannot be downloaded",
            code="attachment_blocked",
            **extra,
        )
    if row.scan_status == SCAN_FAILED:
        raise Forbidden(
            "the antivirus could not check this file in time; it is kept in quarantine and "
            "cannot be downloaded",
            code="attachment_scan_failed",
        )
    if row.scan_status == SCAN_PENDING:
        raise Conflict(
            "the file is waiting for its antivirus scan; try again later",
            code="attachment_pending_scan",
        )
