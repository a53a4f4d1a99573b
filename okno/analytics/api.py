"""Supervisor dashboards over HTTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from okno.analytics import bot as bot_figures
from okno.analytics import live
from okno.analytics.schemas import BoardOut, BotMetricsOut
from okno.db.base import utcnow
from okno.errors import BadRequest, Forbidden
from okno.http import State, require, write
from okno.inputs import parse_moment
from okno.operators.models import User
from okno.security import audit

log = structlog.get_logger("okno.analytics")
router = APIRouter(prefix="/api/v1/supervisor", tags=["analytics"])
reports = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
DEFAULT_DAYS = 7
ReportReader = Annotated[User, require("reports.read")]


@router.get("/board", response_model=BoardOut)
async def board(user: ReportReader, state: State) -> BoardOut:
    """Queues by topic, channel and team (waiting, longest wait, in progress), every
    operator's status and load, and totals, for supervisors and admins. A supervisor with a
    team sees their team's side only. Re-read it when conversation or presence events
    arrive."""
    async with state.db.read() as session:
        try:
            return await live.board(session, viewer=user)
        except Forbidden:
            log.warning("access.denied", user_id=user.id, resource="supervisor_board")
            raise


@reports.get("/bot", response_model=BotMetricsOut)
async def bot_metrics(
    user: ReportReader,
    state: State,
    request: Request,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
) -> BotMetricsOut:
    """The bot's figures for ``[since, until)`` (dates are whole days, UTC; default: the
    last 7 days): dialogs it took, closed without a person and handed off by reason,
    answers, suggestion click-through, reply-suggestion acceptance, per channel."""
    end = parse_moment(until, name="until", end=True) if until else utcnow()
    start = parse_moment(since, name="since", end=False) if since else end - timedelta(DEFAULT_DAYS)
    if start >= end:
        raise BadRequest("since must be before until", code="bad_period", field="since")
    if end - start > timedelta(days=366):
        raise BadRequest("at most a year at a time", code="bad_period", field="since")

    async def run(session: AsyncSession) -> BotMetricsOut:
        out = await bot_figures.bot_metrics(session, since=start, until=end)
        await audit.record(
            session,
            action=audit.REPORT_VIEWED,
            actor=audit.actor_of(user, request),
            object_type="report",
            object_id="bot",
            details={"since": start.isoformat(), "until": end.isoformat()},
        )
        return out

    return await write(state, run)
