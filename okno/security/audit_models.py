"""Tables of the audit log (hash-chained entries, the chain's state, SIEM cursors) and of
retention runs.

The audit table is append-only: the database itself refuses UPDATE and DELETE on it
(triggers from migration 0012), except DELETE of entries at or below the checkpoint that
retention moved forward after those entries were shipped to the SIEM.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow


class AuditEntry(Base):
    """One thing that happened: who did what to which object, when, with what outcome."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_action", "action", "seq"),
        Index("ix_audit_entries_actor", "actor_login", "seq"),
        Index("ix_audit_entries_object", "object_type", "object_id", "seq"),
        Index("ix_audit_entries_at", "at"),
    )

    # The position in the chain: 1, 2, 3 ... without gaps (a gap is a deleted entry).
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(Integer)  # no FK: entries outlive users
    actor_login: Mapped[str] = mapped_column(String(200), default="")
    actor_role: Mapped[str] = mapped_column(String(50), default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50), default="")
    object_id: Mapped[str] = mapped_column(String(100), default="")
    outcome: Mapped[str] = mapped_column(String(20), default="success")
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditState(Base):
    """The single row that serialises appends (locked FOR UPDATE on PostgreSQL) and anchors
    the chain: ``head_*`` is the newest entry (so a cut-off tail is noticed), ``base_*`` the
    last entry retention removed (verification starts after it)."""

    __tablename__ = "audit_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), default="")
    base_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    base_hash: Mapped[str] = mapped_column(String(64), default="")


class AuditCursor(Base):
    """How far one SIEM target (``file`` or ``syslog``) has received the log."""

    __tablename__ = "audit_cursors"

    target: Mapped[str] = mapped_column(String(50), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RetentionRun(Base):
    """One retention run and its report of what was (or, dry, would be) removed."""

    __tablename__ = "retention_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    trigger: Mapped[str] = mapped_column(String(20), default="job")  # job, cli, api
    actor_id: Mapped[int | None] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
