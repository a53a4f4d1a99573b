"""The bot in a real dialog: it answers from the knowledge base, hands off with the topic
when unsure or asked for a person, answers a picked suggestion at once, and gives way to a
person after answers that did not settle it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.channels.models import Channel
from okno.settings import Settings
from tests.bot.test_kb import KB
from tests.builders import Staff, bearer, cmid, in_db, staff_token, widget_session


@pytest.fixture
def live(settings: Settings, staff: Staff) -> Iterator[TestClient]:
    """The app with its worker running (the bot answers through a job), the demo-sized KB
    imported and the bot switched on for the widget."""

    async def bot_on(session: AsyncSession) -> None:
        channel = await session.get(Channel, staff.widget_id)
        assert channel is not None
        channel.config = {**(channel.config or {}), "bot": True}

    in_db(settings, bot_on)
    with TestClient(create_app(settings.model_copy(update={"worker_in_process": True}))) as client:
        root = staff_token(client, "root")
        imported = client.post(
            "/api/v1/kb/import",
            content=KB.encode(),
            headers={**bearer(root), "Content-Type": "application/yaml"},
        )
        assert imported.status_code == 200, imported.text
        yield client


def say(client: TestClient, token: str, text: str, **extra: Any) -> int:
    response = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": text, **extra},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    conversation_id: int = response.json()["message"]["conversation_id"]
    return conversation_id


def wait_for(
    client: TestClient, token: str, predicate: Any, within: float = 10.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    messages: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        messages = client.get("/api/v1/widget/messages", headers=bearer(token)).json()["messages"]
        if predicate(messages):
            return messages
        time.sleep(0.1)
    raise AssertionError(
        f"not within {within} s: {[(m['author_kind'], m['text']) for m in messages]}"
    )


def status(client: TestClient, conversation_id: int) -> dict[str, Any]:
    shown: dict[str, Any] = client.get(
        f"/api/v1/conversations/{conversation_id}", headers=bearer(staff_token(client, "root"))
    ).json()
    return shown


def bot_lines(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages if m["author_kind"] == "bot"]


def test_the_bot_answers_a_question_it_knows_and_keeps_the_dialog(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "потерял карточку что делать")
    messages = wait_for(live, token, lambda ms: bot_lines(ms))
    assert bot_lines(messages) == ["Заблокировать карту можно в приложении."]
    assert [m["author_name"] for m in messages if m["author_kind"] == "bot"] == ["Бот"]
    shown = status(live, conversation)
    assert (shown["status"], shown["assignee"]) == ("bot", None)
    # staff queues do not show it: nobody needs to take it
    anna = staff_token(live, "anna")
    listed = live.get("/api/v1/conversations?status=open", headers=bearer(anna)).json()
    assert conversation not in [c["id"] for c in listed["conversations"]]


def test_asking_for_a_person_hands_off_with_the_topic(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "позовите оператора, карту заблокировать не могу")
    messages = wait_for(live, token, lambda ms: any(m["author_kind"] == "system" for m in ms))
    assert bot_lines(messages) == []
    assert any("специалисту" in m["text"] for m in messages if m["author_kind"] == "system")
    shown = status(live, conversation)
    assert (shown["status"], shown["topic"]) == ("waiting", "cards")


def test_an_unknown_question_goes_to_a_person(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "какая завтра погода в Казани")
    wait_for(live, token, lambda ms: any(m["author_kind"] == "system" for m in ms))
    assert status(live, conversation)["status"] == "waiting"


def test_a_picked_suggestion_is_answered_at_once(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    say(live, token, "Как заблокировать карту", article_id="card-block")
    messages = wait_for(live, token, lambda ms: bot_lines(ms))
    assert bot_lines(messages) == ["Заблокировать карту можно в приложении."]


def test_the_talk_to_a_person_button_hands_off_at_once(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "потерял карточку")
    wait_for(live, token, lambda ms: bot_lines(ms))
    response = live.post("/api/v1/widget/handoff", headers=bearer(token))
    assert response.status_code == 204
    shown = status(live, conversation)
    assert (shown["status"], shown["topic"]) == ("waiting", "cards")
    # pressing it again, with a person on it, changes nothing
    assert live.post("/api/v1/widget/handoff", headers=bearer(token)).status_code == 204
    assert live.post("/api/v1/widget/handoff").status_code == 401


def test_after_two_answers_that_did_not_settle_it_a_person_takes_over(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "потерял карточку")
    wait_for(live, token, lambda ms: len(bot_lines(ms)) == 1)
    say(live, token, "как заблокировать карту")
    wait_for(live, token, lambda ms: len(bot_lines(ms)) == 2)
    say(live, token, "всё равно не понимаю как заблокировать карту")
    wait_for(live, token, lambda ms: any(m["author_kind"] == "system" for m in ms))
    assert status(live, conversation)["status"] == "waiting"
