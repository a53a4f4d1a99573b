"""The bot's figures for analytics, on a seeded day: dialogs the bot took, closed without a
person and handed off by reason, answers, suggestion click-through and reply-suggestion
acceptance, per channel; only what happened in the period counts."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.models import BotTurn, ReplySuggestion
from okno.channels.models import Channel
from okno.conversations.models import Conversation
from okno.db.base import utcnow
from okno.settings import Settings
from tests.builders import Staff, bearer, in_db, make_message, staff_token

DAY = (utcnow() - timedelta(days=1)).date()
NOON = datetime.combine(DAY, time(12, 0), tzinfo=UTC)
EARLIER = NOON - timedelta(days=3)

# name: (channel, status, resolution, created, turns as (decision, reason, suggested, picked))
DIALOGS: dict[str, tuple[str, str, str | None, datetime, list[tuple[str, str, bool, bool]]]] = {
    "answered-picked": ("widget", "closed", "bot", NOON, [("answer", "picked", True, True)]),
    "answered-twice": (
        "widget",
        "closed",
        "bot",
        NOON,
        [("answer", "confident", True, False), ("answer", "confident", False, False)],
    ),
    "unsure": ("widget", "waiting", None, NOON, [("handoff", "unsure", False, False)]),
    "pressed-button": ("widget", "assigned", None, NOON, [("answer", "confident", False, False)]),
    "still-with-bot": ("widget", "bot", None, NOON, [("answer", "confident", True, False)]),
    "asked-for-person": (
        "api",
        "closed",
        "resolved",
        NOON,
        [("handoff", "human_requested", True, False)],
    ),
    "app-picked": ("api", "closed", "bot", NOON, [("answer", "picked", True, True)]),
    "no-bot": ("widget", "assigned", None, NOON, []),
    "days-before": ("widget", "closed", "bot", EARLIER, [("answer", "confident", True, True)]),
}
# reply suggestions per dialog's first customer message: outcomes by rank
OFFERED: dict[str, list[str | None]] = {
    "unsure": ["accepted", None, None],
    "pressed-button": ["rejected", "edited"],
    "asked-for-person": [None],
}


def seed(settings: Settings, staff: Staff) -> None:
    async def run(session: AsyncSession) -> None:
        app = Channel(kind="api", name="Мобильный банк", key="app", config={})
        session.add(app)
        await session.flush()
        channel_ids = {"widget": staff.widget_id, "api": app.id}
        for name, (kind, status, resolution, created, turns) in DIALOGS.items():
            first = await make_message(session, channel_id=channel_ids[kind], visitor=name)
            conversation = await session.get(Conversation, first.conversation_id)
            assert conversation is not None
            conversation.status, conversation.resolution = status, resolution
            conversation.created_at = created
            for n, (decision, reason, suggested, picked) in enumerate(turns):
                session.add(
                    BotTurn(
                        conversation_id=conversation.id,
                        message_id=first.id,
                        channel_kind=kind,
                        text="вопрос",
                        decision=decision,
                        reason=reason,
                        confidence=0.5,
                        suggested=suggested,
                        picked=picked,
                        at=created + timedelta(minutes=n),
                    )
                )
            for rank, outcome in enumerate(OFFERED.get(name, []), start=1):
                session.add(
                    ReplySuggestion(
                        conversation_id=conversation.id,
                        message_id=first.id,
                        rank=rank,
                        source="kb",
                        ref="card-block",
                        text="Ответ",
                        outcome=outcome,
                        created_at=created,
                    )
                )
        # /bot/ask outside any dialog: not an answer in a dialog
        session.add(BotTurn(channel_kind="api", text="x", decision="answer", at=NOON))
        await session.flush()

    in_db(settings, run)


def metrics(client: TestClient, login: str, query: str) -> Any:
    return client.get(f"/api/v1/analytics/bot?{query}", headers=bearer(staff_token(client, login)))


def test_a_seeded_day_gives_the_exact_figures(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    seed(settings, staff)
    response = metrics(client, "sveta", f"since={DAY}&until={DAY}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dialogs"] == {
        "started_with_bot": 7,
        "closed_by_bot": 3,
        "closed_by_bot_share": round(3 / 7, 4),
        "with_bot_now": 1,
        "handed_off": 3,
        "handoff_reasons": {"button": 1, "human_requested": 1, "unsure": 1},
    }
    assert body["answers"] == 6
    assert body["suggestions"] == {"shown": 5, "picked": 2, "click_through": 0.4}
    assert body["reply_suggestions"] == {
        "shown": 6,
        "messages": 3,
        "accepted": 1,
        "edited": 1,
        "rejected": 1,
        "ignored": 3,
        "acceptance_rate": round(2 / 6, 4),
    }
    assert body["channels"] == [
        {
            "kind": "api",
            "started_with_bot": 2,
            "closed_by_bot": 1,
            "handed_off": 1,
            "answers": 1,
            "suggestions_shown": 2,
            "suggestions_picked": 1,
        },
        {
            "kind": "widget",
            "started_with_bot": 5,
            "closed_by_bot": 2,
            "handed_off": 2,
            "answers": 5,
            "suggestions_shown": 3,
            "suggestions_picked": 1,
        },
    ]
    # the default period (the last 7 days) takes the dialog from days before too
    wider = metrics(client, "root", "").json()
    assert (wider["dialogs"]["started_with_bot"], wider["answers"]) == (8, 7)


def test_an_empty_period_is_all_zeros_and_a_bad_one_is_refused(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    seed(settings, staff)
    before = DAY - timedelta(days=1)
    empty = metrics(client, "root", f"since={before}&until={before}").json()
    assert empty["dialogs"]["started_with_bot"] == 0
    assert empty["suggestions"]["click_through"] == 0.0
    backwards = metrics(client, "root", f"since={DAY}&until={before}")
    assert (backwards.status_code, backwards.json()["code"]) == (400, "bad_period")
    assert metrics(client, "root", "since=yesterday").json()["fields"] == {"field": "since"}


def test_operators_may_not_read_the_bot_figures(client: TestClient) -> None:
    assert metrics(client, "anna", "").status_code == 403
