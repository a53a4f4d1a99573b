"""Retention: after a period per data type, delete or anonymise what okno no longer needs.

Per data type (``OKNO_RETENTION_*_DAYS``, 0 = kept for ever):

- messages: in dialogs closed longer ago than the period, every message's text is erased
  (and its ``meta``: buttons, places, contact cards), the dialog's preview and rating
  comment too. The dialog itself stays (its dates, channel, topic, rating: statistics);
- attachments: in such dialogs the files are deleted from disk — served ones, and those
  the antivirus put in quarantine or held for a scan; the row stays, marked removed (no
  name, no path), so the history shows that a file was there. Quarantined files no row
  points at (a staff upload refused as infected) go once older than the period;
- customers: once every dialog of a customer has been erased, their name, attributes,
  tags, notes and channel identities (phone numbers, e-mail addresses, messenger ids)
  are removed; a customer writing again is a new customer;
- recordings: okno stores no call recordings yet; the period is reported and applies
  once it does;
- audit: entries older than the period are deleted only after every configured SIEM
  target has received them (``audit_cursors``), and only from the oldest end: the last
  deleted entry's number and hash become the chain's checkpoint (``audit_state.base_*``),
  so ``okno audit verify`` keeps verifying what is left. With no SIEM target nothing is
  deleted from the audit log.

Every run (periodic job ``retention.run`` once a day, ``okno retention run``, or
``POST /api/v1/retention/runs``) stores a report of what it removed (or, dry, would
remove) in ``retention_runs`` and records ``retention.run`` in the audit log.

This module is the one place that erases rows of several domains at once; it works on
their tables directly because no domain service should know about the others' erasure.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import and_, delete, exists, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations.attachments import AREAS, SCAN_NONE, SCAN_PENDING
from okno.conversations.models import Attachment, Conversation, Message
from okno.customers.models import Customer, CustomerIdentity, CustomerNote
from okno.db.base import utcnow
from okno.jobs.worker import JobContext
from okno.security import audit, siem
from okno.security.audit_models import AuditEntry, RetentionRun
from okno.settings import Settings

log = structlog.get_logger("okno.retention")
RUN = "retention.run"
EVERY_SECONDS = 24 * 3600
REMOVED_NAME = "removed"
REMOVED_PATH = ""  # an attachment row whose file retention deleted
STORE = AREAS[SCAN_NONE]  # attachments/: files that are served
QUARANTINE = "quarantine"  # blocked and unscanned files, refused staff uploads
HELD = AREAS[SCAN_PENDING]  # scan-pending/: files waiting for the antivirus


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


def _cutoff(now: datetime, days: int) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


def _expired_dialogs(cutoff: datetime) -> Any:
    """Ids of dialogs closed before ``cutoff``."""
    return select(Conversation.id).where(
        Conversation.status == "closed", Conversation.closed_at < cutoff
    )


def enabled(settings: Settings) -> bool:
    """Whether any retention period is set."""
    return any(
        (
            settings.retention_messages_days,
            settings.retention_attachments_days,
            settings.retention_recordings_days,
            settings.retention_audit_days,
        )
    )


async def _messages(
    session: AsyncSession, cutoff: datetime | None, *, dry_run: bool
) -> dict[str, Any]:
    if cutoff is None:
        return {"cutoff": None, "messages_erased": 0, "dialogs": 0}
    dialogs = _expired_dialogs(cutoff)
    pending = and_(Message.conversation_id.in_(dialogs), Message.text != "")
    count = int(await session.scalar(select(func.count()).select_from(Message).where(pending)) or 0)
    touched = int(
        await session.scalar(
            select(func.count(func.distinct(Message.conversation_id))).where(pending)
        )
        or 0
    )
    if not dry_run and count:
        ids = select(Message.conversation_id).where(pending).distinct().scalar_subquery()
        await session.execute(
            update(Conversation)
            .where(Conversation.id.in_(ids))
            .values(last_message_preview="", rating_comment=None)
            .execution_options(synchronize_session=False)
        )
        await session.execute(
            update(Message)
            .where(pending)
            .values(text="", meta=null())
            .execution_options(synchronize_session=False)
        )
    return {"cutoff": _iso(cutoff), "messages_erased": count, "dialogs": touched}


async def _attachments(
    session: AsyncSession, settings: Settings, cutoff: datetime | None, *, dry_run: bool
) -> dict[str, Any]:
    """Delete the files of attachments in expired dialogs, wherever their scan state put
    them: the store (``attachments/``), the quarantine (blocked and unscanned files) and
    the holding folder (files still waiting for the antivirus); then quarantined and held
    files no attachment points at (a staff upload refused as infected) once older than
    the period."""
    out: dict[str, Any] = {
        "cutoff": _iso(cutoff),
        "files_deleted": 0,
        "quarantined_files_deleted": 0,
        "held_files_deleted": 0,
        "rows_marked": 0,
        "bytes_freed": 0,
    }
    if cutoff is None:
        return out
    rows = list(
        (
            await session.execute(
                select(Attachment.id, Attachment.storage_path, Attachment.scan_status).where(
                    Attachment.conversation_id.in_(_expired_dialogs(cutoff)),
                    Attachment.storage_path != REMOVED_PATH,
                )
            )
        ).all()
    )
    ids = [r.id for r in rows]
    files = {(AREAS.get(r.scan_status, STORE), r.storage_path) for r in rows}
    # Files are stored once per content (by sha256) and folder: keep a file another,
    # still kept attachment points at.
    still_used: set[tuple[str, str]] = set()
    paths = {path for _, path in files}
    if paths:
        still_used = {
            (AREAS.get(status, STORE), path)
            for path, status in (
                await session.execute(
                    select(Attachment.storage_path, Attachment.scan_status).where(
                        Attachment.storage_path.in_(paths), Attachment.id.not_in(ids)
                    )
                )
            ).all()
        }
    doomed = [settings.data_dir / area / path for area, path in sorted(files - still_used)]
    doomed += await _orphans(session, settings.data_dir, cutoff)
    for file in doomed:
        if not file.is_file():
            continue
        area = file.relative_to(settings.data_dir).parts[0]
        out["bytes_freed"] += file.stat().st_size
        out["files_deleted"] += 1
        if area == QUARANTINE:
            out["quarantined_files_deleted"] += 1
        elif area == HELD:
            out["held_files_deleted"] += 1
        if not dry_run:
            _unlink(file)
    if not dry_run and ids:
        # Files go first: should this transaction then fail, a row points at a missing
        # file (the download says so) and the next run marks it; never the reverse.
        await session.execute(
            update(Attachment)
            .where(Attachment.id.in_(ids))
            .values(filename=REMOVED_NAME, storage_path=REMOVED_PATH)
            .execution_options(synchronize_session=False)
        )
    out["rows_marked"] = len(ids)
    return out


async def _orphans(session: AsyncSession, data_dir: Path, cutoff: datetime) -> list[Path]:
    """Files in the quarantine and holding folders that no attachment points at and that
    arrived before ``cutoff`` (a file is written before its row commits: a recent one may
    be on its way). Those folders stay small, so they are walked whole."""
    candidates: dict[str, list[Path]] = {}
    moment = cutoff.timestamp()
    for area in (QUARANTINE, HELD):
        root = data_dir / area
        if not root.is_dir():
            continue
        for file in sorted(root.rglob("*")):
            if file.is_file() and not file.name.startswith(".") and file.stat().st_mtime < moment:
                candidates.setdefault(file.relative_to(root).as_posix(), []).append(file)
    names = sorted(candidates)
    for start in range(0, len(names), 500):
        batch = names[start : start + 500]
        used = (
            await session.scalars(
                select(Attachment.storage_path).where(Attachment.storage_path.in_(batch))
            )
        ).all()
        for path in used:
            candidates.pop(path, None)
    return [file for files in candidates.values() for file in files]


def _unlink(file: Path) -> None:
    try:
        file.unlink()
    except FileNotFoundError:
        pass


async def _customers(
    session: AsyncSession, cutoff: datetime | None, *, dry_run: bool
) -> dict[str, Any]:
    """Customers all of whose dialogs are erased, and who still have a name, notes or
    channel identities."""
    if cutoff is None:
        return {"anonymised": 0}
    has_dialog = exists().where(Conversation.customer_id == Customer.id)
    has_live_dialog = exists().where(
        Conversation.customer_id == Customer.id,
        or_(
            Conversation.status != "closed",
            Conversation.closed_at.is_(None),
            Conversation.closed_at >= cutoff,
        ),
    )
    has_identity = exists().where(CustomerIdentity.customer_id == Customer.id)
    has_note = exists().where(CustomerNote.customer_id == Customer.id)
    ids = list(
        (
            await session.scalars(
                select(Customer.id).where(
                    has_dialog,
                    ~has_live_dialog,
                    or_(
                        Customer.display_name != "",
                        Customer.verified_phone_hash.is_not(None),
                        has_identity,
                        has_note,
                    ),
                )
            )
        ).all()
    )
    if not dry_run and ids:
        await session.execute(delete(CustomerNote).where(CustomerNote.customer_id.in_(ids)))
        await session.execute(delete(CustomerIdentity).where(CustomerIdentity.customer_id.in_(ids)))
        await session.execute(
            update(Customer)
            .where(Customer.id.in_(ids))
            .values(display_name="", attributes={}, tags=[], verified_phone_hash=None)
            .execution_options(synchronize_session=False)
        )
    return {"anonymised": len(ids)}


async def _audit(
    session: AsyncSession, settings: Settings, cutoff: datetime | None, *, dry_run: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"cutoff": _iso(cutoff), "entries_deleted": 0, "checkpoint_seq": None}
    targets = siem.targets(settings)
    if cutoff is None:
        return out
    if not targets:
        out["kept_reason"] = (
            "no SIEM target is configured (OKNO_AUDIT_SHIP_FILE, OKNO_AUDIT_SYSLOG): entries "
            "are deleted only after they were shipped"
        )
        return out
    shipped_through = min([await siem.cursor_of(session, t) for t in targets])
    state = await audit.lock_state(session)
    last = await session.scalar(
        select(func.max(AuditEntry.seq)).where(
            AuditEntry.at < cutoff,
            AuditEntry.seq <= shipped_through,
            AuditEntry.seq > state.base_seq,
        )
    )
    waiting = await session.scalar(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.at < cutoff, AuditEntry.seq > shipped_through)
    )
    out["not_yet_shipped"] = int(waiting or 0)
    if last is None:
        out["checkpoint_seq"] = state.base_seq or None
        return out
    count = int(
        await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.seq > state.base_seq, AuditEntry.seq <= last)
        )
        or 0
    )
    out["entries_deleted"] = count
    out["checkpoint_seq"] = int(last)
    if not dry_run:
        anchor = await session.get(AuditEntry, last)
        assert anchor is not None
        state.base_seq = anchor.seq
        state.base_hash = anchor.hash
        await session.flush()  # the delete trigger allows entries at or below the base
        await session.execute(delete(AuditEntry).where(AuditEntry.seq <= last))
    return out


async def run(
    session: AsyncSession,
    settings: Settings,
    *,
    dry_run: bool = False,
    trigger: str = "job",
    actor: audit.Actor | None = None,
) -> RetentionRun:
    """Apply every retention period once; store and return the report (flushes)."""
    started = utcnow()
    report: dict[str, Any] = {
        "dry_run": dry_run,
        "periods_days": {
            "messages": settings.retention_messages_days,
            "attachments": settings.retention_attachments_days,
            "recordings": settings.retention_recordings_days,
            "audit": settings.retention_audit_days,
        },
    }
    msg_cutoff = _cutoff(started, settings.retention_messages_days)
    report["attachments"] = await _attachments(
        session, settings, _cutoff(started, settings.retention_attachments_days), dry_run=dry_run
    )
    report["messages"] = await _messages(session, msg_cutoff, dry_run=dry_run)
    report["customers"] = await _customers(session, msg_cutoff, dry_run=dry_run)
    report["recordings"] = {
        "cutoff": _iso(_cutoff(started, settings.retention_recordings_days)),
        "removed": 0,
        "note": "okno stores no call recordings yet",
    }
    report["audit"] = await _audit(
        session, settings, _cutoff(started, settings.retention_audit_days), dry_run=dry_run
    )
    row = RetentionRun(
        started_at=started,
        finished_at=utcnow(),
        dry_run=dry_run,
        trigger=trigger,
        actor_id=actor.user_id if actor else None,
        report=report,
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session,
        action=audit.RETENTION_RUN,
        actor=actor or audit.SYSTEM,
        object_type="retention_run",
        object_id=row.id,
        details={
            "dry_run": dry_run,
            "trigger": trigger,
            "messages_erased": report["messages"]["messages_erased"],
            "files_deleted": report["attachments"]["files_deleted"],
            "quarantined_files_deleted": report["attachments"]["quarantined_files_deleted"],
            "held_files_deleted": report["attachments"]["held_files_deleted"],
            "customers_anonymised": report["customers"]["anonymised"],
            "audit_entries_deleted": report["audit"]["entries_deleted"],
            "audit_checkpoint_seq": report["audit"]["checkpoint_seq"],
        },
    )
    log.info(
        "retention.run",
        run_id=row.id,
        dry_run=dry_run,
        messages=report["messages"]["messages_erased"],
        files=report["attachments"]["files_deleted"],
        customers=report["customers"]["anonymised"],
        audit=report["audit"]["entries_deleted"],
    )
    return row


def run_out(row: RetentionRun) -> dict[str, Any]:
    """A run as JSON (API and CLI)."""
    return {
        "id": row.id,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "dry_run": row.dry_run,
        "trigger": row.trigger,
        "actor_id": row.actor_id,
        "report": row.report,
    }


async def list_runs(session: AsyncSession, *, limit: int = 20) -> list[RetentionRun]:
    """The newest runs first."""
    return list(
        (
            await session.scalars(
                select(RetentionRun).order_by(RetentionRun.id.desc()).limit(limit)
            )
        ).all()
    )


async def run_job(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """The daily job: a run when any period is set (otherwise nothing to report)."""
    if enabled(ctx.settings):
        await run(session, ctx.settings, trigger="job")
