"""The audit log for the security officer (search, verify) and retention runs (reports,
run now). Every route needs a signed-in staff user holding the named permission."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from okno.errors import BadRequest, NotFound
from okno.http import State, require, write
from okno.inputs import IdPath, OptionalSeqQuery, parse_moment
from okno.operators.models import User
from okno.security import audit, retention
from okno.security.audit_models import RetentionRun
from okno.security.audit_schemas import (
    AuditBreakOut,
    AuditEntryOut,
    AuditPageOut,
    AuditVerificationOut,
    RetentionRunOut,
    RetentionRunsOut,
)

router = APIRouter(prefix="/api/v1", tags=["audit"])
_TEXT = r"^[^\x00]*$"
AuditReader = Annotated[User, require("audit.read")]
AuditVerifier = Annotated[User, require("audit.verify")]
RetentionManager = Annotated[User, require("retention.manage")]


@router.get("/audit", response_model=AuditPageOut)
async def search_audit(
    request: Request,
    user: AuditReader,
    state: State,
    actor: Annotated[
        str, Query(max_length=200, pattern=_TEXT, description="A login or a user id.")
    ] = "",
    action: Annotated[
        str,
        Query(
            max_length=100,
            pattern=_TEXT,
            description="An action (auth.sign_in), or a prefix ending in `.` or `*` (auth.).",
        ),
    ] = "",
    object_ref: Annotated[
        str,
        Query(
            alias="object",
            max_length=160,
            pattern=_TEXT,
            description="An object type (customer) or type:id (customer:42).",
        ),
    ] = "",
    outcome: Annotated[
        str, Query(pattern=r"^(|success|failure|denied|locked)$", description="Outcome.")
    ] = "",
    since: Annotated[
        str | None, Query(alias="from", max_length=40, description="From (a date or date-time).")
    ] = None,
    until: Annotated[
        str | None, Query(alias="to", max_length=40, description="To (a date includes its day).")
    ] = None,
    cursor: OptionalSeqQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPageOut:
    """Search the audit log, newest first (permission ``audit.read``). Every search is
    itself recorded (``audit.searched``) with its filters."""
    start = parse_moment(since, name="from", end=False) if since else None
    end = parse_moment(until, name="to", end=True) if until else None
    if start and end and start >= end:
        raise BadRequest("from must be before to", code="bad_period", field="from")

    async def run(session: AsyncSession) -> AuditPageOut:
        page = await audit.search(
            session,
            actor=actor.strip(),
            action=action.strip(),
            object_ref=object_ref.strip(),
            outcome=outcome,
            since=start,
            until=end,
            before_seq=cursor,
            limit=limit,
        )
        await audit.record(
            session,
            action=audit.AUDIT_SEARCHED,
            actor=audit.actor_of(user, request),
            details={
                "actor": actor,
                "action": action,
                "object": object_ref,
                "outcome": outcome,
                "from": since,
                "to": until,
                "cursor": cursor,
                "found": len(page.entries),
            },
        )
        return AuditPageOut(
            entries=[AuditEntryOut(**audit.entry_dict(e)) for e in page.entries],
            next_cursor=page.next_cursor,
        )

    return await write(state, run)


@router.get("/audit/verify", response_model=AuditVerificationOut)
async def verify_audit(user: AuditVerifier, state: State) -> AuditVerificationOut:
    """Walk the hash chain now (permission ``audit.verify``); ``broken`` names the first
    entry that is changed, missing or reordered. The same as ``okno audit verify``."""
    async with state.db.read() as session:
        result = await audit.verify(session)
    return AuditVerificationOut(
        ok=result.ok,
        count=result.count,
        first_seq=result.first_seq,
        last_seq=result.last_seq,
        base_seq=result.base_seq,
        broken=(
            AuditBreakOut(
                seq=result.broken.seq, problem=result.broken.problem, detail=result.broken.detail
            )
            if result.broken
            else None
        ),
    )


def _run_out(row: RetentionRun) -> RetentionRunOut:
    return RetentionRunOut(**retention.run_out(row))


@router.get("/retention/runs", response_model=RetentionRunsOut)
async def retention_runs(
    user: RetentionManager, state: State, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> RetentionRunsOut:
    """The newest retention runs and their reports (permission ``retention.manage``)."""
    async with state.db.read() as session:
        rows = await retention.list_runs(session, limit=limit)
    return RetentionRunsOut(runs=[_run_out(r) for r in rows])


@router.get("/retention/runs/{run_id}", response_model=RetentionRunOut)
async def retention_run(run_id: IdPath, user: RetentionManager, state: State) -> RetentionRunOut:
    """One retention run's report."""
    async with state.db.read() as session:
        row = await session.get(RetentionRun, run_id)
    if row is None:
        raise NotFound(f"retention run {run_id} does not exist", code="not_found")
    return _run_out(row)


@router.post("/retention/runs", response_model=RetentionRunOut, status_code=201)
async def run_retention(
    request: Request,
    user: RetentionManager,
    state: State,
    dry_run: Annotated[
        bool, Query(description="Only report what would be removed; remove nothing.")
    ] = True,
) -> RetentionRunOut:
    """Run retention now with the configured periods (permission ``retention.manage``).
    A dry run by default: pass ``dry_run=false`` to remove."""

    async def run(session: AsyncSession) -> RetentionRunOut:
        row = await retention.run(
            session,
            state.settings,
            dry_run=dry_run,
            trigger="api",
            actor=audit.actor_of(user, request),
        )
        return _run_out(row)

    return await write(state, run)
