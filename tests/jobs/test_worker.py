"""Durable jobs: transactional enqueue, dedup, priority, retry with backoff, lease expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.db.session import Database
from okno.jobs import service
from okno.jobs.models import Job
from okno.jobs.worker import JobContext, Registry, Worker
from okno.settings import Settings


class Recorder:
    """A job kind that writes what it did, so effects are checked in the database."""

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.calls: list[Any] = []

    async def __call__(
        self, session: AsyncSession, payload: dict[str, Any], ctx: JobContext
    ) -> None:
        self.calls.append((payload.get("n"), ctx.attempt))
        if len(self.calls) <= self.fail_times:
            raise ConnectionError("provider down")


async def jobs(db: Database) -> list[Job]:
    async with db.read() as session:
        return list((await session.scalars(select(Job).order_by(Job.id))).all())


async def test_job_exists_only_if_its_transaction_commits(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            await service.enqueue(session, kind="test.record", payload={"n": 1})
            raise RuntimeError("cause failed")
    assert await jobs(db) == []
    async with db.transaction() as session:
        await service.enqueue(session, kind="test.record", payload={"n": 2})
    assert [j.payload for j in await jobs(db)] == [{"n": 2}]


async def test_same_dedup_key_keeps_one_job(db: Database) -> None:
    for _ in range(3):
        async with db.transaction() as session:
            await service.enqueue(session, kind="test.record", dedup_key="once")
    assert len(await jobs(db)) == 1


async def test_worker_runs_urgent_jobs_first(db: Database, settings: Settings) -> None:
    recorder = Recorder()
    registry = Registry()
    registry.register("test.record", recorder)
    async with db.transaction() as session:
        await service.enqueue(
            session, kind="test.record", payload={"n": "bulk"}, priority=service.BULK
        )
        await service.enqueue(
            session, kind="test.record", payload={"n": "urgent"}, priority=service.URGENT
        )
    worker = Worker(db, settings.model_copy(update={"worker_concurrency": 1}), registry)
    await worker.drain()
    assert [n for n, _ in recorder.calls] == ["urgent", "bulk"]
    assert {j.status for j in await jobs(db)} == {"done"}


async def test_failure_is_retried_with_backoff_then_succeeds(
    db: Database, settings: Settings
) -> None:
    recorder = Recorder(fail_times=1)
    registry = Registry()
    registry.register("test.record", recorder)
    async with db.transaction() as session:
        await service.enqueue(session, kind="test.record", payload={"n": 1})
    # the tests' settings retry within a fraction of a second; here the wait must outlast
    # the checks below
    slow = settings.model_copy(
        update={"job_retry_base_seconds": 60.0, "job_retry_max_seconds": 3600.0}
    )
    worker = Worker(db, slow, registry)
    await worker.drain()
    (job,) = await jobs(db)
    assert job.status == "pending" and job.attempts == 1
    assert "provider down" in (job.last_error or "")
    assert job.run_at > utcnow() + timedelta(seconds=30)  # backoff: not due yet
    async with db.transaction() as session:  # time passes
        await session.execute(update(Job).values(run_at=utcnow() - timedelta(seconds=1)))
    await worker.drain()
    (job,) = await jobs(db)
    assert job.status == "done" and job.attempts == 2
    assert recorder.calls == [(1, 1), (1, 2)]


def test_default_backoff_doubles_from_two_seconds_up_to_an_hour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = Settings.model_fields
    base, cap = fields["job_retry_base_seconds"].default, fields["job_retry_max_seconds"].default
    assert (base, cap) == (2.0, 3600.0)

    def schedule() -> list[float]:
        return [
            service.backoff_seconds(attempt, base_seconds=base, max_seconds=cap)
            for attempt in range(1, 15)
        ]

    capped = [2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0] + [3600.0] * 3
    for jitter in (0.75, 1.0, 1.25):  # the jitter's extremes and middle
        monkeypatch.setattr(service.random, "uniform", lambda low, high, j=jitter: j)
        assert schedule() == [s * jitter for s in capped]
    monkeypatch.undo()
    for waits in (schedule() for _ in range(20)):  # real jitter stays within ±25 %
        assert all(0.75 * s <= w <= 1.25 * s for w, s in zip(waits, capped, strict=True))


async def test_job_gives_up_after_max_attempts(db: Database, settings: Settings) -> None:
    recorder = Recorder(fail_times=99)
    registry = Registry()
    registry.register("test.record", recorder)
    async with db.transaction() as session:
        await service.enqueue(session, kind="test.record", max_attempts=2)
    worker = Worker(db, settings, registry)
    for _ in range(2):
        await worker.drain()
        async with db.transaction() as session:
            await session.execute(update(Job).values(run_at=utcnow() - timedelta(seconds=1)))
    (job,) = await jobs(db)
    assert job.status == "failed" and job.attempts == 2


async def test_job_of_a_dead_worker_is_taken_over_after_its_lease(
    db: Database, settings: Settings
) -> None:
    recorder = Recorder()
    registry = Registry()
    registry.register("test.record", recorder)
    async with db.transaction() as session:
        await service.enqueue(session, kind="test.record", payload={"n": 1})
    async with db.transaction() as session:  # a worker claims it, then dies
        claimed = await service.claim(session, worker_id="dead", limit=5, lease_seconds=60)
    assert len(claimed) == 1
    alive = Worker(db, settings, registry)
    await alive.drain()
    assert recorder.calls == []  # lease still valid
    async with db.transaction() as session:
        await session.execute(update(Job).values(locked_until=utcnow() - timedelta(seconds=1)))
    await alive.drain()
    assert recorder.calls == [(1, 2)]
    (job,) = await jobs(db)
    assert job.status == "done" and job.locked_by == alive.id


async def test_two_workers_never_run_one_job_twice(db: Database, settings: Settings) -> None:
    recorder = Recorder()
    registry = Registry()
    registry.register("test.record", recorder)
    async with db.transaction() as session:
        for n in range(40):
            await service.enqueue(session, kind="test.record", payload={"n": n})
    a, b = Worker(db, settings, registry, name="a"), Worker(db, settings, registry, name="b")
    await asyncio.gather(a.drain(), b.drain())
    assert sorted(n for n, _ in recorder.calls) == list(range(40))


async def test_unknown_job_kind_fails_visibly(db: Database, settings: Settings) -> None:
    async with db.transaction() as session:
        await service.enqueue(session, kind="nobody.handles", max_attempts=1)
    await Worker(db, settings, Registry()).drain()
    (job,) = await jobs(db)
    assert job.status == "failed" and "no handler" in (job.last_error or "")


async def test_queue_stats_report_depth_and_age(db: Database) -> None:
    async with db.transaction() as session:
        await service.enqueue(
            session, kind="x", queue="outbound", run_at=utcnow() - timedelta(seconds=30)
        )
        await service.enqueue(session, kind="x", queue="outbound")
    async with db.read() as session:
        ((queue, depth, age),) = await service.queue_stats(session)
    assert queue == "outbound" and depth == 2 and 25 < age < 120
