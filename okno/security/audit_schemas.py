"""Response shapes of the audit log and retention API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AuditEntryOut(BaseModel):
    seq: int = Field(description="Position in the chain: 1, 2, 3 ... without gaps.")
    at: str = Field(description="When, UTC, ISO 8601 with microseconds.")
    actor_id: int | None
    actor_login: str
    actor_role: str
    ip: str
    action: str = Field(description="What happened, `noun.past_verb` (auth.sign_in ...).")
    object_type: str
    object_id: str
    outcome: str = Field(description="success, failure, denied or locked.")
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPageOut(BaseModel):
    entries: list[AuditEntryOut]
    next_cursor: int | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class AuditBreakOut(BaseModel):
    seq: int
    problem: str = Field(description="changed, missing or reordered.")
    detail: str


class AuditVerificationOut(BaseModel):
    ok: bool
    count: int = Field(description="Entries verified.")
    first_seq: int | None
    last_seq: int | None
    base_seq: int = Field(description="Entries up to here were removed by retention.")
    broken: AuditBreakOut | None = None


class RetentionRunOut(BaseModel):
    id: int
    started_at: str | None
    finished_at: str | None
    dry_run: bool
    trigger: str
    actor_id: int | None
    report: dict[str, Any]


class RetentionRunsOut(BaseModel):
    runs: list[RetentionRunOut]
