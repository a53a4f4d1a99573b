"""Supervisor dashboards over HTTP."""

from __future__ import annotations

import structlog
from fastapi import APIRouter

from okno.analytics import live
from okno.analytics.schemas import BoardOut
from okno.errors import Forbidden
from okno.http import CurrentUser, State

log = structlog.get_logger("okno.analytics")
router = APIRouter(prefix="/api/v1/supervisor", tags=["analytics"])


@router.get("/board", response_model=BoardOut)
async def board(user: CurrentUser, state: State) -> BoardOut:
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
