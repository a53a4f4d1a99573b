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
  refused with 503 ``scanner_unavailable`` so the operator can try again.
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
    SCAN_NONE,
    SCAN_PENDING,
    StoredFile,
)
from okno.conversations.models import Attachment
from okno.db.base import utcnow
from okno.errors import Conflict, Forbidden, ServiceUnavailable, Unprocessable
from okno.jobs import service as jobs
from okno.settings import Settings

log = structlog.get_logger("okno.attachments")
SCAN_JOB = "attachments.scan"
# Backoff doubles up to an hour: about a day and a half of retries before giving up.
SCAN_ATTEMPTS = 40


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


async def accept_staff_file(data: bytes, filename: str, *, settings: Settings) -> StoredFile:
    """Check, scan and store a file staff send to a customer; an infected file is
    quarantined and refused (422 ``attachment_infected``), and with the scanner down the
    upload is refused (503 ``scanner_unavailable``): the operator still has the file."""
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
        raise Unprocessable(
            "the antivirus found a threat in this file; it was not sent",
            code="attachment_infected",
            signature=verdict.signature,
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
            newly_blocked += await block_content(
                session, sha256=row.sha256, signature=row.scan_signature, except_ids={row.id}
            )
    return newly_blocked


async def block_content(
    session: AsyncSession,
    *,
    sha256: str,
    signature: str | None,
    except_ids: set[int] | None = None,
) -> list[Attachment]:
    """Block every not-yet-blocked attachment with this content and, after commit, move
    its files out of the store and the holding folder. Returns the rows it blocked."""
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


def quarantine_now(data_dir: Path, relative: str) -> None:
    """Move every copy of infected content into quarantine at once, before the rows that
    point at it are marked ``blocked``: should that transaction fail, those rows find no
    file (404 ``file_missing``), never the infected one."""
    for status in (SCAN_NONE, SCAN_PENDING):
        attachments.move(data_dir, relative, from_status=status, to_status=SCAN_BLOCKED)


def is_served(row: Attachment) -> bool:
    """Only files never scanned (no antivirus configured) or found clean are served."""
    return row.scan_status in (SCAN_NONE, SCAN_CLEAN)


def refuse_unless_served(row: Attachment) -> None:
    """Raise the download refusal for a blocked (403 ``attachment_blocked``) or held
    (409 ``attachment_pending_scan``) file."""
    if row.scan_status == SCAN_BLOCKED:
        raise Forbidden(
            "the antivirus blocked this file; it is kept in quarantine and cannot be downloaded",
            code="attachment_blocked",
            signature=row.scan_signature,
        )
    if row.scan_status == SCAN_PENDING:
        raise Conflict(
            "the file is waiting for its antivirus scan; try again later",
            code="attachment_pending_scan",
        )
