"""How the answer threshold trades answers for hand-offs, replayed over recorded turns.

Every bot decision keeps its confidence (``bot_turns``), so for any threshold we can say
what share of recent questions the bot would have answered and what share it would have
handed to a person. Turns the threshold does not decide are left out: a picked suggestion
(answered at once), a request for a person, an attachment without text, a button flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.models import BotTurn
from okno.db.base import utcnow

NOT_DECIDED_BY_THRESHOLD = ("picked", "human_requested", "own_case", "attachment")
GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))  # 0.05 … 0.95


@dataclass(frozen=True)
class TradeOff:
    threshold: float
    answered: int
    handed_off: int

    @property
    def answer_share(self) -> float:
        total = self.answered + self.handed_off
        return round(self.answered / total, 4) if total else 0.0

    @property
    def handoff_share(self) -> float:
        total = self.answered + self.handed_off
        return round(self.handed_off / total, 4) if total else 0.0


async def trade_offs(
    session: AsyncSession,
    *,
    current: float,
    days: int = 30,
    now: datetime | None = None,
) -> tuple[int, list[TradeOff]]:
    """(questions counted, one row per threshold of the grid plus the current setting),
    counted in one pass over the turns of the last ``days``."""
    since = (now or utcnow()) - timedelta(days=days)
    thresholds = sorted({*GRID, round(current, 4)})
    columns = [
        func.coalesce(func.sum(case((BotTurn.confidence >= t, 1), else_=0)), 0) for t in thresholds
    ]
    row = (
        await session.execute(
            select(func.count(), *columns).where(
                BotTurn.at >= since,
                BotTurn.decision != "flow",
                BotTurn.reason.not_in(NOT_DECIDED_BY_THRESHOLD),
            )
        )
    ).one()
    total = int(row[0])
    rows = [
        TradeOff(threshold=t, answered=int(a), handed_off=total - int(a))
        for t, a in zip(thresholds, row[1:], strict=True)
    ]
    return total, rows
