"""Every job kind okno runs, wired in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import jobs as bot_jobs
from okno.channels import outbound, polling
from okno.conversations import jobs as conversation_jobs
from okno.conversations import scan_jobs
from okno.conversations.scanning import SCAN_JOB
from okno.customers import verification
from okno.events.service import prune_events
from okno.jobs.service import prune_jobs
from okno.jobs.worker import JobContext, Registry
from okno.routing import jobs as routing_jobs
from okno.routing.triggers import DISPATCH
from okno.security import retention, siem


async def _prune_events(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    await prune_events(session, older_than_days=ctx.settings.event_retention_days)


async def _prune_jobs(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    await prune_jobs(session, older_than_days=7)


def default_registry() -> Registry:
    registry = Registry()
    registry.register("conversations.autoclose_sweep", conversation_jobs.autoclose_sweep)
    registry.register("conversations.autoclose", conversation_jobs.autoclose_one)
    registry.register("events.prune", _prune_events)
    registry.register("jobs.prune", _prune_jobs)
    registry.register(bot_jobs.REPLY, bot_jobs.reply)
    registry.register(bot_jobs.ACTION, bot_jobs.action, prepare=bot_jobs.prepare_action)
    registry.register(outbound.SEND, outbound.send_job, prepare=outbound.prepare_send)
    registry.register(SCAN_JOB, scan_jobs.scan, prepare=scan_jobs.prepare_scan)
    registry.register(polling.POLL, polling.poll_job, prepare=polling.prepare_poll)
    registry.every(polling.POLL, polling.EVERY_SECONDS, priority=0, queue="inbound")
    registry.register(
        verification.SEND_CODE, verification.send_code_job, prepare=verification.prepare_send_code
    )
    registry.register(
        verification.CHECK, verification.check_job, prepare=verification.prepare_check
    )
    registry.register(DISPATCH, routing_jobs.dispatch)
    registry.register(routing_jobs.WATCHDOG, routing_jobs.watchdog)
    registry.every(routing_jobs.WATCHDOG, 5, priority=0, queue="routing")
    registry.every("conversations.autoclose_sweep", 60)
    registry.every("events.prune", 3600)
    registry.every("jobs.prune", 3600)
    registry.register(siem.SHIP, siem.ship_job, prepare=siem.prepare_ship)
    registry.every(siem.SHIP, siem.EVERY_SECONDS)
    registry.register(retention.RUN, retention.run_job)
    registry.every(retention.RUN, retention.EVERY_SECONDS, priority=100)
    return registry
