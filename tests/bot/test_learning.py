"""The learning loop: unanswered questions grouped by meaning (paraphrases together,
unrelated ones apart, reviewed ones gone), and operator answers offered as saved replies
(only when repeated in K dialogs, never with personal data, not twice)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.index import Retriever
from okno.bot.learning import group_questions, normalise, personal
from okno.bot.models import BotTurn
from okno.conversations.models import Message
from okno.db.base import utcnow
from okno.settings import Settings
from tests.builders import Staff, bearer, in_db, make_message, staff_token

PIN = [
    "Как поменять пин-код карты?",
    "хочу сменить пин код на карте",
    "поменять пинкод карточки через приложение",
]
MORTGAGE = [
    "Можно ли погасить ипотеку материнским капиталом?",
    "материнский капитал на ипотеку как использовать",
    "погасить ипотеку маткапиталом",
]
UNRELATED = ["Какая погода завтра в Казани", "Сколько стоит обслуживание премиальной карты"]


def test_paraphrases_group_together_and_unrelated_questions_stay_apart() -> None:
    texts = [PIN[0], MORTGAGE[0], UNRELATED[0], PIN[1], MORTGAGE[1], UNRELATED[1], PIN[2]]
    texts.append(MORTGAGE[2])
    groups = [sorted(texts[i] for i in g) for g in group_questions(texts, Retriever([]).normalizer)]
    assert sorted(groups) == sorted([sorted(PIN), sorted(MORTGAGE), [UNRELATED[0]], [UNRELATED[1]]])


def _turns(settings: Settings, rows: list[dict[str, Any]]) -> list[int]:
    async def run(session: AsyncSession) -> list[int]:
        made = []
        for row in rows:
            defaults = {"channel_kind": "widget", "decision": "handoff", "reason": "unsure"}
            turn = BotTurn(**{**defaults, "confidence": 0.1, "at": utcnow(), **row})
            session.add(turn)
            made.append(turn)
        await session.flush()
        return [t.id for t in made]

    return in_db(settings, run)


def test_unanswered_groups_over_http_and_reviewed_ones_disappear(
    client: TestClient, settings: Settings
) -> None:
    _turns(settings, [{"text": t, "topic": "cards"} for t in PIN])
    _turns(settings, [{"text": MORTGAGE[0], "topic": "credits"}, {"text": MORTGAGE[1]}])
    _turns(settings, [{"text": UNRELATED[0], "reason": "empty", "topic": None}])
    # not gaps of the knowledge base, or too old, or already looked at: not listed
    _turns(
        settings,
        [
            {"text": "позовите оператора", "reason": "human_requested"},
            {"text": "как заблокировать карту", "decision": "answer", "reason": "confident"},
            {"text": PIN[0], "at": utcnow() - timedelta(days=40)},
            {"text": PIN[1], "reviewed": True},
        ],
    )
    root = staff_token(client, "root")
    listed = client.get("/api/v1/bot/unanswered?days=30", headers=bearer(root))
    assert listed.status_code == 200, listed.text
    groups = listed.json()["groups"]
    assert [(g["count"], g["topic"]) for g in groups] == [
        (3, "cards"),
        (2, "credits"),
        (1, None),
    ]
    assert groups[0]["examples"] == list(reversed(PIN))  # newest first
    assert sorted(groups[0]["questions"]) == sorted(PIN)

    reviewed = client.post(
        "/api/v1/bot/unanswered/review",
        json={"turn_ids": groups[0]["turn_ids"], "action": "article", "article_id": "pin"},
        headers=bearer(root),
    )
    assert reviewed.json() == {"reviewed": 3}
    dismissed = client.post(
        "/api/v1/bot/unanswered/review",
        json={"turn_ids": groups[2]["turn_ids"], "action": "dismissed"},
        headers=bearer(root),
    )
    assert dismissed.json() == {"reviewed": 1}
    after = client.get("/api/v1/bot/unanswered", headers=bearer(root)).json()["groups"]
    assert [g["count"] for g in after] == [2]

    sveta, anna = staff_token(client, "sveta"), staff_token(client, "anna")
    assert client.get("/api/v1/bot/unanswered", headers=bearer(sveta)).status_code == 200
    assert client.get("/api/v1/bot/unanswered", headers=bearer(anna)).status_code == 403
    refused = client.post(
        "/api/v1/bot/unanswered/review",
        json={"turn_ids": after[0]["turn_ids"], "action": "dismissed"},
        headers=bearer(sveta),
    )
    assert refused.status_code == 403


# ------------------------------------------------------------------ template candidates

HOURS = "Отделения работают с понедельника по пятницу, в субботу до 16 часов."
LIMIT = "Лимит на снятие наличных можно поменять в приложении: Карты → Лимиты."


def test_normalising_and_personal_data() -> None:
    assert normalise("  Лимит — можно  ПОМЕНЯТЬ в приложении!!! ") == normalise(
        "лимит можно поменять в приложении"
    )
    assert normalise("Ёлка") == "елка"
    assert personal("Напишите на ivan.petrov@mail.ru")
    assert personal("Ваш номер +7 (912) 345-67-89")
    assert personal("Карта 4276 1234 5678 9012")
    assert not personal("Перезвоним с 9:00 до 18:00, это займёт 2-3 дня")


def _answers(settings: Settings, staff: Staff, plan: list[tuple[str, str]]) -> None:
    """One dialog per visitor; the operator (anna) sends each text in the visitor's dialog."""

    async def run(session: AsyncSession) -> None:
        dialogs: dict[str, int] = {}
        for visitor, text in plan:
            if visitor not in dialogs:
                first = await make_message(session, channel_id=staff.widget_id, visitor=visitor)
                dialogs[visitor] = first.conversation_id
            session.add(
                Message(
                    conversation_id=dialogs[visitor],
                    author_kind="operator",
                    author_user_id=staff["anna"],
                    text=text,
                    created_at=utcnow(),
                )
            )
        await session.flush()

    in_db(settings, run)


def test_answers_repeated_in_k_dialogs_are_offered_without_personal_data(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    _answers(
        settings,
        staff,
        [
            # three dialogs, wording varies only in case and punctuation: offered
            ("v1", HOURS),
            ("v2", HOURS.upper()),
            ("v3", HOURS.replace(",", "").rstrip(".")),
            # three times, but in two dialogs only: not offered at K=3
            ("v1", LIMIT),
            ("v1", LIMIT),
            ("v2", LIMIT),
            # personal data in three dialogs: never offered
            ("v1", "Мы отправили выписку на ivan@example.ru, проверьте почту"),
            ("v2", "Мы отправили выписку на ivan@example.ru, проверьте почту"),
            ("v3", "Мы отправили выписку на ivan@example.ru, проверьте почту"),
            # too short to be worth a template
            ("v1", "Минутку"),
            ("v2", "Минутку"),
            ("v3", "Минутку"),
        ],
    )
    root = staff_token(client, "root")
    found = client.get("/api/v1/bot/template-candidates?min_dialogs=3", headers=bearer(root))
    assert found.status_code == 200, found.text
    candidates = found.json()["candidates"]
    assert [(c["text"], c["dialogs"], c["uses"], c["operators"]) for c in candidates] == [
        (candidates[0]["text"], 3, 3, 1)
    ]
    assert normalise(candidates[0]["text"]) == normalise(HOURS)
    at_two = client.get("/api/v1/bot/template-candidates?min_dialogs=2", headers=bearer(root))
    assert {normalise(c["text"]) for c in at_two.json()["candidates"]} == {
        normalise(HOURS),
        normalise(LIMIT),
    }

    # accepting makes it a shared saved reply, and it is not offered again
    key = candidates[0]["key"]
    accepted = client.post(
        f"/api/v1/bot/template-candidates/{key}/accept",
        json={"shortcut": "hours", "title": "Часы работы", "body": HOURS},
        headers=bearer(root),
    )
    assert accepted.status_code == 201, accepted.text
    anna = staff_token(client, "anna")
    saved = client.get("/api/v1/saved-replies?q=hours", headers=bearer(anna)).json()
    assert [(r["shortcut"], r["scope"]) for r in saved["saved_replies"]] == [("hours", "shared")]
    left = client.get("/api/v1/bot/template-candidates?min_dialogs=2", headers=bearer(root))
    assert [normalise(c["text"]) for c in left.json()["candidates"]] == [normalise(LIMIT)]

    # a dismissed one is not offered again either
    limit_key = left.json()["candidates"][0]["key"]
    sveta = staff_token(client, "sveta")
    refused = client.post(
        f"/api/v1/bot/template-candidates/{limit_key}/dismiss", headers=bearer(sveta)
    )
    assert refused.status_code == 403
    for _ in range(2):  # twice: the second changes nothing
        dismissed = client.post(
            f"/api/v1/bot/template-candidates/{limit_key}/dismiss", headers=bearer(root)
        )
        assert dismissed.status_code == 204
    gone = client.get("/api/v1/bot/template-candidates?min_dialogs=2", headers=bearer(root))
    assert gone.json()["candidates"] == []
    assert client.get("/api/v1/bot/template-candidates", headers=bearer(anna)).status_code == 403


def test_an_answer_matching_a_saved_reply_with_placeholders_is_not_offered(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    root = staff_token(client, "root")
    made = client.post(
        "/api/v1/saved-replies",
        json={
            "scope": "shared",
            "shortcut": "hello",
            "title": "Приветствие",
            "body": "Здравствуйте, {{customer.first_name}}! Чем могу помочь?",
        },
        headers=bearer(root),
    )
    assert made.status_code == 201, made.text
    _answers(
        settings,
        staff,
        [
            ("v1", "Здравствуйте, Иван! Чем могу помочь?"),
            ("v2", "Здравствуйте, Анна Сергеевна! Чем могу помочь?"),
            ("v3", "Здравствуйте! Чем могу помочь?"),
        ],
    )
    found = client.get("/api/v1/bot/template-candidates?min_dialogs=2", headers=bearer(root))
    assert found.json()["candidates"] == []
