"""The worker loop: claims due jobs, runs their handlers, retries failures.

Runs as ``okno worker`` or inside ``okno serve`` (the embedded default). Several workers,
in one process or many, share the table safely.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.session import Database
from okno.jobs import service
from okno.jobs.models import Job
from okno.settings import Settings

log = structlog.get_logger(__name__)


class LeaseLost(Exception):
    """The job's lease expired while it ran; its transaction is rolled back."""


@dataclass
class JobContext:
    """What a handler gets besides its session and payload."""

    settings: Settings
    job_id: int
    attempt: int
    # What the kind's `prepare` step returned (work done before the transaction opened).
    prepared: Any = None


JobHandler = Callable[[AsyncSession, dict[str, Any], JobContext], Awaitable[None]]
# Runs before the handler's transaction, for slow outside calls (a bank back-end) that must
# not hold the database's write lock; it may read through the Database it is given.
JobPrepare = Callable[[Database, dict[str, Any], JobContext], Awaitable[Any]]


@dataclass
class Periodic:
    kind: str
    every_seconds: int
    priority: int = service.HOUSEKEEPING
    queue: str = "maintenance"


@dataclass
class Registry:
    """Job kinds this deployment knows, and the periodic ones to schedule."""

    handlers: dict[str, JobHandler] = field(default_factory=dict)
    periodic: list[Periodic] = field(default_factory=list)
    prepares: dict[str, JobPrepare] = field(default_factory=dict)

    def register(
        self, kind: str, handler: JobHandler, *, prepare: JobPrepare | None = None
    ) -> None:
        if kind in self.handlers:
            raise ValueError(f"job kind {kind!r} registered twice")
        self.handlers[kind] = handler
        if prepare is not None:
            self.prepares[kind] = prepare

    def every(self, kind: str, seconds: int, **kw: Any) -> None:
        self.periodic.append(Periodic(kind, seconds, **kw))


class Worker:
    def __init__(
        self, db: Database, settings: Settings, registry: Registry, *, name: str | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.registry = registry
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        self._sem = asyncio.Semaphore(settings.worker_concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._last_schedule = 0.0
        self.completed = 0
        self.failed = 0

    async def wake(self) -> None:
        """Look for jobs now (called after a transaction enqueued some)."""
        self._wake.set()

    async def schedule_periodic(self) -> None:
        """Enqueue periodic jobs for the current time bucket (idempotent across workers)."""
        now = time.time()
        async with self.db.transaction() as session:
            for p in self.registry.periodic:
                bucket = int(now // p.every_seconds)
                await service.enqueue(
                    session,
                    kind=p.kind,
                    queue=p.queue,
                    priority=p.priority,
                    dedup_key=f"periodic:{p.kind}:{bucket}",
                    max_attempts=3,
                )
        self._last_schedule = now

    async def run_once(self) -> int:
        """Claim one batch of due jobs and run them all; returns how many were claimed."""
        free = self.settings.worker_concurrency - len(self._running)
        if free <= 0:
            return 0
        async with self.db.transaction() as session:
            jobs = await service.claim(
                session,
                worker_id=self.id,
                limit=free,
                lease_seconds=self.settings.job_lease_seconds,
            )
            claimed = [(j.id, j.kind, dict(j.payload), j.attempts) for j in jobs]
        for job_id, kind, payload, attempt in claimed:
            task = asyncio.create_task(self._run(job_id, kind, payload, attempt))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return len(claimed)

    async def drain(self, max_seconds: float = 30.0) -> None:
        """Run until no job is due (tests and one-shot use)."""
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            n = await self.run_once()
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            if n == 0 and not self._running:
                return

    async def _run(self, job_id: int, kind: str, payload: dict[str, Any], attempt: int) -> None:
        async with self._sem:
            handler = self.registry.handlers.get(kind)
            started = time.perf_counter()
            try:
                if handler is None:
                    raise LookupError(f"no handler for job kind {kind!r}")
                ctx = JobContext(settings=self.settings, job_id=job_id, attempt=attempt)
                prepare = self.registry.prepares.get(kind)
                if prepare is not None:
                    ctx.prepared = await prepare(self.db, payload, ctx)
                async with self.db.transaction() as session:
                    await handler(session, payload, ctx)
                    if not await service.finish(session, job_id=job_id, worker_id=self.id):
                        # Our lease ran out and another worker has the job: undo our
                        # effects so they do not land twice.
                        raise LeaseLost(f"job {job_id} was taken over after its lease")
                self.completed += 1
                log.info(
                    "job.done",
                    job_id=job_id,
                    kind=kind,
                    attempt=attempt,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
            except Exception as exc:
                self.failed += 1
                error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                try:
                    async with self.db.transaction() as session:
                        status = await service.fail(
                            session,
                            job_id=job_id,
                            worker_id=self.id,
                            error=error,
                            retry_base_seconds=self.settings.job_retry_base_seconds,
                            retry_max_seconds=self.settings.job_retry_max_seconds,
                            retry_after=getattr(exc, "retry_after", None),
                        )
                except Exception:
                    status = "unrecorded"  # the lease will expire and the job run again
                log.warning(
                    "job.failed",
                    job_id=job_id,
                    kind=kind,
                    attempt=attempt,
                    error=type(exc).__name__,
                    next=status,
                )

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Poll for jobs until ``stop`` is set; finish running jobs before returning."""
        log.info("worker.started", worker=self.id)
        while not stop.is_set():
            try:
                if time.time() - self._last_schedule > 10 and self.registry.periodic:
                    await self.schedule_periodic()
                claimed = await self.run_once()
            except Exception as exc:  # database briefly away: keep the loop alive
                log.warning("worker.poll_failed", error=type(exc).__name__)
                claimed = 0
            if claimed:
                await asyncio.sleep(0)
                continue
            self._wake.clear()
            waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(
                waiters,
                timeout=self.settings.worker_poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            for w in waiters:
                w.cancel()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        log.info("worker.stopped", worker=self.id)


__all__ = ["Job", "JobContext", "JobHandler", "Registry", "Worker"]
