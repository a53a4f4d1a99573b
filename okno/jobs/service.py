"""Enqueue, claim, finish and retry durable jobs.

A job is enqueued with ``enqueue`` inside the transaction that causes it, so it exists
exactly when its cause does. Workers claim due jobs with a lease (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL; SQLite serialises writers anyway); a worker that dies leaves the
lease to expire and another worker takes the job again. Handlers therefore must be
idempotent. A handler's database effects and the job's ``done`` mark commit together.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.db.session import after_commit
from okno.jobs.models import Job

# Priorities: lower first. What a customer is waiting for is never behind bulk work.
URGENT = 0
HOUSEKEEPING = 50
BULK = 100


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    payload: dict[str, Any] | None = None,
    queue: str = "default",
    priority: int = HOUSEKEEPING,
    run_at: datetime | None = None,
    dedup_key: str | None = None,
    max_attempts: int = 8,
) -> None:
    """Add a job to this transaction; a second job with the same ``dedup_key`` is dropped."""
    values = {
        "kind": kind,
        "payload": payload or {},
        "queue": queue,
        "priority": priority,
        "run_at": run_at or utcnow(),
        "dedup_key": dedup_key,
        "max_attempts": max_attempts,
        "status": "pending",
        "attempts": 0,
        "created_at": utcnow(),
    }
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = pg_insert(Job).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"])
    else:
        stmt = (
            sqlite_insert(Job).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"])
        )
    await session.execute(stmt)
    wake = session.info.get("wake_worker")
    if wake is not None:
        after_commit(session, wake)


def _due(now: datetime) -> Any:
    return or_(
        and_(Job.status == "pending", Job.run_at <= now),
        and_(Job.status == "running", Job.locked_until < now),
    )


async def claim(
    session: AsyncSession, *, worker_id: str, limit: int, lease_seconds: int
) -> list[Job]:
    """Lease up to ``limit`` due jobs to this worker, most urgent first."""
    now = utcnow()
    ids_query = (
        select(Job.id)
        .where(_due(now))
        .order_by(Job.priority, Job.run_at, Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.scalars(ids_query)).all())
    if not ids:
        return []
    await session.execute(
        update(Job)
        .where(Job.id.in_(ids))
        .values(
            status="running",
            attempts=Job.attempts + 1,
            locked_until=now + timedelta(seconds=lease_seconds),
            locked_by=worker_id,
        )
    )
    jobs = (await session.scalars(select(Job).where(Job.id.in_(ids)))).all()
    return sorted(jobs, key=lambda j: (j.priority, j.run_at, j.id))


async def finish(session: AsyncSession, *, job_id: int, worker_id: str) -> bool:
    """Mark the job done if this worker still holds it; False when the lease was lost."""
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.locked_by == worker_id, Job.status == "running")
        .values(status="done", finished_at=utcnow(), locked_until=None, last_error=None)
    )
    return bool(getattr(result, "rowcount", 0))


def backoff_seconds(attempt: int, *, base_seconds: float, max_seconds: float) -> float:
    """The wait before retrying a job that failed its ``attempt``-th run: ``base_seconds``
    doubled for each earlier failure, capped at ``max_seconds``, with ±25 % jitter so jobs
    that failed together do not all come back at once. With the defaults
    (``OKNO_JOB_RETRY_BASE_SECONDS`` 2, ``OKNO_JOB_RETRY_MAX_SECONDS`` 3600): ~2 s, 4 s,
    8 s ... up to an hour."""
    exponent = min(max(attempt, 1) - 1, 64)  # 2**64 times any base is past any cap
    delay = min(max_seconds, base_seconds * 2.0**exponent)
    return float(delay * random.uniform(0.75, 1.25))


async def fail(
    session: AsyncSession,
    *,
    job_id: int,
    worker_id: str,
    error: str,
    retry_base_seconds: float,
    retry_max_seconds: float,
    retry_after: float | None = None,
) -> str:
    """Schedule a retry with backoff (``backoff_seconds``; or after ``retry_after`` seconds
    when the cause said when, e.g. a platform's Retry-After), or give up after
    ``max_attempts``; returns the status."""
    job = await session.get(Job, job_id, with_for_update=True)
    if job is None or job.locked_by != worker_id or job.status != "running":
        return "lost"
    job.last_error = error[:4000]
    job.locked_until = None
    if job.attempts >= job.max_attempts:
        job.status = "failed"
        job.finished_at = utcnow()
    else:
        job.status = "pending"
        if retry_after is None:
            delay = backoff_seconds(
                job.attempts, base_seconds=retry_base_seconds, max_seconds=retry_max_seconds
            )
        else:
            delay = max(0.0, retry_after)
        job.run_at = utcnow() + timedelta(seconds=delay)
    return job.status


async def queue_stats(session: AsyncSession) -> list[tuple[str, int, float]]:
    """Per queue: pending jobs that are due, and the age in seconds of the oldest one."""
    now = utcnow()
    rows = await session.execute(
        select(Job.queue, func.count(), func.min(Job.run_at))
        .where(Job.status == "pending", Job.run_at <= now)
        .group_by(Job.queue)
    )
    stats = []
    for queue, count, oldest in rows:
        if isinstance(oldest, str):  # SQLite aggregate bypasses the column type
            oldest = datetime.fromisoformat(oldest).replace(tzinfo=now.tzinfo)
        elif oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        age = (now - oldest).total_seconds() if oldest else 0.0
        stats.append((queue, int(count), max(0.0, age)))
    return stats


async def prune_jobs(session: AsyncSession, *, older_than_days: int = 7) -> int:
    """Delete finished jobs older than the retention (failed ones are kept for inspection)."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    result = await session.execute(
        delete(Job).where(Job.status == "done", Job.finished_at < cutoff)
    )
    return int(getattr(result, "rowcount", 0) or 0)
