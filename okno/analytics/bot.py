"""The bot's figures for a period: how many dialogs it took, how many it closed without
a person and why the others reached one, how often customers picked a suggestion while
typing, and how operators used reply suggestions.

Counted from what the bot recorded (``bot_turns``, ``reply_suggestions``) and the dialogs
themselves, not from the realtime event log, which is pruned after days. A dialog
"started with the bot" when it was created in the period and the bot took part in it (a
recorded turn) or it is still with the bot or the bot closed it. "Closed by the bot"
is the resolution ``bot``: the customer got an answer and left without asking for a
person. Per channel the figures use the channel's kind.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.analytics.schemas import (
    BotChannelRow,
    BotDialogs,
    BotMetricsOut,
    BotSuggestionClicks,
    ReplySuggestionUse,
)
from okno.bot.models import BotTurn, ReplySuggestion
from okno.channels.models import Channel
from okno.conversations.models import Conversation


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


async def bot_metrics(session: AsyncSession, *, since: datetime, until: datetime) -> BotMetricsOut:
    """The bot's figures for dialogs created and turns taken in ``[since, until)``."""
    had_turn = select(BotTurn.id).where(BotTurn.conversation_id == Conversation.id).exists()
    by_bot = Conversation.resolution == "bot"
    not_by_bot = or_(Conversation.resolution.is_(None), Conversation.resolution != "bot")
    with_bot = and_(Conversation.status == "bot", not_by_bot)
    in_period = and_(Conversation.created_at >= since, Conversation.created_at < until)
    started = or_(Conversation.status == "bot", by_bot, had_turn)
    per_channel: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    # grouped by plain columns only: PostgreSQL does not see two CASEs with their own bound
    # parameters in SELECT and GROUP BY as the same expression
    rows = await session.execute(
        select(
            Channel.kind,
            func.count(),
            func.coalesce(func.sum(case((by_bot, 1), else_=0)), 0),
            func.coalesce(func.sum(case((with_bot, 1), else_=0)), 0),
        )
        .select_from(Conversation)
        .join(Channel, Channel.id == Conversation.channel_id)
        .where(in_period, started)
        .group_by(Channel.kind)
    )
    for kind, n, closed, still in rows.all():
        per_channel[kind]["closed_by_bot"] += int(closed)
        per_channel[kind]["with_bot"] += int(still)
        per_channel[kind]["handed_off"] += int(n) - int(closed) - int(still)

    # why the handed-off ones reached a person: the bot's last decision in the dialog
    last = (
        select(BotTurn.conversation_id, func.max(BotTurn.id).label("last_id"))
        .group_by(BotTurn.conversation_id)
        .subquery()
    )
    reasons: dict[str, int] = defaultdict(int)
    rows = await session.execute(
        select(BotTurn.decision, BotTurn.reason, func.count())
        .select_from(Conversation)
        .join(last, last.c.conversation_id == Conversation.id)
        .join(BotTurn, BotTurn.id == last.c.last_id)
        .where(in_period, Conversation.status != "bot", not_by_bot)
        .group_by(BotTurn.decision, BotTurn.reason)
    )
    for decision, why, n in rows.all():
        reasons[(why or "unknown") if decision == "handoff" else "button"] += int(n)

    turns_in_period = and_(
        BotTurn.at >= since, BotTurn.at < until, BotTurn.conversation_id.is_not(None)
    )
    rows = await session.execute(
        select(
            BotTurn.channel_kind,
            func.coalesce(func.sum(case((BotTurn.decision == "answer", 1), else_=0)), 0),
            func.coalesce(func.sum(case((BotTurn.suggested.is_(True), 1), else_=0)), 0),
            func.coalesce(
                func.sum(
                    case((and_(BotTurn.suggested.is_(True), BotTurn.picked.is_(True)), 1), else_=0)
                ),
                0,
            ),
        )
        .where(turns_in_period)
        .group_by(BotTurn.channel_kind)
    )
    for k, answers, shown, picked in rows.all():
        channel = per_channel[k or "unknown"]
        channel["answers"] += int(answers)
        channel["suggestions_shown"] += int(shown)
        channel["suggestions_picked"] += int(picked)

    outcomes = await session.execute(
        select(ReplySuggestion.outcome, func.count())
        .where(ReplySuggestion.created_at >= since, ReplySuggestion.created_at < until)
        .group_by(ReplySuggestion.outcome)
    )
    by_outcome = {o: int(n) for o, n in outcomes.all()}
    messages = int(
        await session.scalar(
            select(func.count(func.distinct(ReplySuggestion.message_id))).where(
                ReplySuggestion.created_at >= since, ReplySuggestion.created_at < until
            )
        )
        or 0
    )
    offered = sum(by_outcome.values())
    used = by_outcome.get("accepted", 0) + by_outcome.get("edited", 0)

    def total(key: str) -> int:
        return sum(c.get(key, 0) for c in per_channel.values())

    started_n = total("closed_by_bot") + total("with_bot") + total("handed_off")
    shown = total("suggestions_shown")
    return BotMetricsOut(
        since=since,
        until=until,
        dialogs=BotDialogs(
            started_with_bot=started_n,
            closed_by_bot=total("closed_by_bot"),
            closed_by_bot_share=_share(total("closed_by_bot"), started_n),
            with_bot_now=total("with_bot"),
            handed_off=total("handed_off"),
            handoff_reasons=dict(sorted(reasons.items())),
        ),
        answers=total("answers"),
        suggestions=BotSuggestionClicks(
            shown=shown,
            picked=total("suggestions_picked"),
            click_through=_share(total("suggestions_picked"), shown),
        ),
        reply_suggestions=ReplySuggestionUse(
            shown=offered,
            messages=messages,
            accepted=by_outcome.get("accepted", 0),
            edited=by_outcome.get("edited", 0),
            rejected=by_outcome.get("rejected", 0),
            ignored=by_outcome.get(None, 0),
            acceptance_rate=_share(used, offered),
        ),
        channels=[
            BotChannelRow(
                kind=k,
                started_with_bot=c.get("closed_by_bot", 0)
                + c.get("with_bot", 0)
                + c.get("handed_off", 0),
                closed_by_bot=c.get("closed_by_bot", 0),
                handed_off=c.get("handed_off", 0),
                answers=c.get("answers", 0),
                suggestions_shown=c.get("suggestions_shown", 0),
                suggestions_picked=c.get("suggestions_picked", 0),
            )
            for k, c in sorted(per_channel.items())
        ],
    )
