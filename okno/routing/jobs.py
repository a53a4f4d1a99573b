"""Routing's jobs: the dispatch pass, and the watchdog that re-queues dialogs of operators
who left and runs a pass even when no event asked for one (waits age into overflow, a queue
opens in the morning)."""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from okno.jobs.worker import JobContext
from okno.routing import service

log = structlog.get_logger("okno.routing")
WATCHDOG = "routing.watchdog"


async def dispatch(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    decisions = await service.dispatch(session)
    for d in decisions:
        log.info(
            "routing.assigned",
            conversation_id=d.conversation_id,
            user_id=d.user_id,
            rule=d.rule,
            strategy=d.strategy,
            candidates=len(d.candidates),
            waited_s=round(d.waited_seconds, 1),
        )


async def watchdog(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    requeued = await service.requeue_abandoned(
        session, grace_seconds=ctx.settings.routing_grace_seconds
    )
    if requeued:
        log.info("routing.requeued", conversations=requeued)
    await dispatch(session, payload, ctx)
