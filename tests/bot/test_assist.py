"""Reply suggestions for operators over HTTP: from the knowledge base and from colleagues'
earlier answers, the channel and validity rules, what the operator did with each
(accepted, edited, rejected; once), and who may see them."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.bot import assist
from okno.bot.models import ReplySuggestion
from okno.settings import Settings
from tests.builders import (
    Staff,
    bearer,
    cmid,
    customer_says,
    in_db,
    signed_in,
    widget_session,
)

KB = """
articles:
  - id: sms-code
    title: Не приходит СМС с кодом
    questions: ["Не приходит СМС с кодом", "Не могу войти, нет кода из смс"]
    answer: Проверьте, что на телефоне есть связь, и запросите код ещё раз.
    topic: login
  - id: card-block
    title: Как заблокировать карту
    questions: ["Как заблокировать карту?", "Потерял карту, что делать"]
    answer: Заблокировать карту можно в приложении.
    topic: cards
"""

TRANSFERS = """
articles:
  - id: sbp-api
    title: Перевод по номеру телефона
    questions: ["Как перевести по номеру телефона"]
    answer: "Только в мобильном API: Платежи → По номеру телефона."
    channels: [api]
  - id: sbp-old
    title: Перевод по номеру телефона
    questions: ["Как перевести по номеру телефона"]
    answer: "Старые правила переводов по номеру телефона, больше не действуют."
    valid_to: 2020-01-01
  - id: sbp-future
    title: Перевод по номеру телефона
    questions: ["Как перевести по номеру телефона"]
    answer: "Новые правила переводов, действуют с 2099 года."
    valid_from: 2099-01-01
  - id: sbp-widget
    title: Перевод по номеру телефона
    questions: ["Как перевести по номеру телефона"]
    answer: "В приложении: Платежи → Перевод по номеру телефона (СБП)."
    channels: [widget]
"""
COLLEAGUE = "Перезагрузите телефон и запросите код через минуту — обычно это помогает."


@pytest.fixture
def bank(client: TestClient) -> TestClient:
    """The app with the small knowledge base above imported."""
    _import(client, KB)
    return client


def _import(client: TestClient, body: str) -> None:
    response = client.post(
        "/api/v1/kb/import",
        content=body.encode(),
        headers={**bearer(signed_in(client, "root")), "Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text


def new_dialog(client: TestClient, text: str) -> int:
    """A new visitor writes ``text`` in the widget; returns the dialog id."""
    token = widget_session(client)["session_token"]
    conversation_id: int = customer_says(client, token, text)["conversation_id"]
    return conversation_id


def suggestions(client: TestClient, login: str, conversation_id: int) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/conversations/{conversation_id}/reply-suggestions",
        headers=bearer(signed_in(client, login)),
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def send(client: TestClient, login: str, conversation_id: int, text: str, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": cmid(), "text": text, **extra},
        headers=bearer(signed_in(client, login)),
    )


def reject(client: TestClient, login: str, suggestion_id: int) -> Any:
    return client.post(
        f"/api/v1/reply-suggestions/{suggestion_id}/reject",
        headers=bearer(signed_in(client, login)),
    )


def staff_messages(client: TestClient, conversation_id: int) -> list[str]:
    response = client.get(
        f"/api/v1/conversations/{conversation_id}/messages",
        headers=bearer(signed_in(client, "root")),
    )
    return [m["text"] for m in response.json()["messages"] if m["author_kind"] == "operator"]


def test_suggestions_come_from_the_knowledge_base_and_a_colleagues_earlier_answer(
    bank: TestClient,
) -> None:
    earlier = new_dialog(bank, "Здравствуйте! Не приходит смс с кодом для входа")
    answered = send(bank, "anna", earlier, COLLEAGUE)
    assert answered.status_code == 201, answered.text

    # another customer, another day, asks the same in other words; Игорь opens it
    conversation = new_dialog(bank, "не приходит код из смс, войти не могу")
    shown = suggestions(bank, "igor", conversation)
    assert shown["answered"] is False
    offered = {(s["source"], s["ref"], s["text"]) for s in shown["suggestions"]}
    assert offered == {
        ("kb", "sms-code", "Проверьте, что на телефоне есть связь, и запросите код ещё раз."),
        ("history", str(answered.json()["message"]["id"]), COLLEAGUE),
    }
    assert [s["rank"] for s in shown["suggestions"]] == [1, 2]
    scores = [s["score"] for s in shown["suggestions"]]
    assert scores == sorted(scores, reverse=True)
    assert all(s["outcome"] is None for s in shown["suggestions"])
    # unrelated articles are not offered at all
    assert "card-block" not in {s["ref"] for s in shown["suggestions"]}


def test_a_question_nothing_answers_gets_no_suggestions(bank: TestClient) -> None:
    conversation = new_dialog(bank, "Какая завтра погода в Казани?")
    shown = suggestions(bank, "anna", conversation)
    assert shown["suggestions"] == [] and shown["message_id"] is not None


def test_articles_outside_the_dialogs_channel_or_dates_are_not_suggested(
    client: TestClient,
) -> None:
    _import(client, TRANSFERS)
    conversation = new_dialog(client, "как перевести деньги по номеру телефона")
    shown = suggestions(client, "anna", conversation)
    assert [s["ref"] for s in shown["suggestions"]] == ["sbp-widget"]


def test_the_same_reply_is_offered_once(bank: TestClient) -> None:
    # a colleague pasted the article's answer (with a different full stop): one chip
    earlier = new_dialog(bank, "потерял карту, что делать?")
    send(bank, "anna", earlier, "Заблокировать карту можно в приложении!")
    conversation = new_dialog(bank, "потерял карточку что делать")
    shown = suggestions(bank, "igor", conversation)
    assert [(s["source"], s["ref"]) for s in shown["suggestions"]] == [("kb", "card-block")]


def test_an_earlier_answer_quoting_personal_data_is_never_offered(client: TestClient) -> None:
    quoting = [
        ("Не проходит перевод на карту", "Ваша карта 4276 1234 5678 9012 заблокирована банком."),
        ("Не проходит перевод на счёт", "Проверьте счёт 40817810099910004312, перевод ушёл."),
        ("Не проходит перевод, что делать", "Напишите нам на ivan.petrov@mail.ru, разберёмся."),
        ("Не проходит перевод другу", "Перезвоним вам на +7 (912) 345-67-89 через час."),
    ]
    for question, answer in quoting:
        dialog = new_dialog(client, question)
        assert send(client, "anna", dialog, answer).status_code == 201
    clean = new_dialog(client, "Почему не проходит перевод?")
    send(client, "anna", clean, "Переводы выше лимита банк задерживает на проверку до часа.")

    conversation = new_dialog(client, "не проходит перевод")
    shown = suggestions(client, "igor", conversation)
    assert [s["text"] for s in shown["suggestions"]] == [
        "Переводы выше лимита банк задерживает на проверку до часа."
    ]


def test_quotes_personal_data_catches_numbers_and_addresses_but_not_plain_text() -> None:
    assert assist.quotes_personal_data("код 123456")
    assert assist.quotes_personal_data("звоните 8 912 345 67 89")
    assert assist.quotes_personal_data("пишите на a.b@bank.ru")
    assert not assist.quotes_personal_data("Лимит 100 000 ₽ в сутки, до 23:59 01.02.2026")


def test_suggestions_are_the_same_for_every_request_and_every_operator(bank: TestClient) -> None:
    conversation = new_dialog(bank, "Потерял карту, что делать?")
    first = suggestions(bank, "anna", conversation)
    assert first["suggestions"], first
    # the knowledge base changes meanwhile: what was offered for this message stays
    _import(bank, KB.replace("в приложении.", "в приложении или по телефону."))
    assert suggestions(bank, "anna", conversation) == first
    assert suggestions(bank, "igor", conversation) == first
    assert suggestions(bank, "sveta", conversation) == first


def test_racing_first_requests_store_one_set(settings: Settings, bank: TestClient) -> None:
    conversation = new_dialog(bank, "Потерял карту, что делать?")
    with ThreadPoolExecutor(max_workers=4) as pool:
        shown = list(
            pool.map(
                lambda login: suggestions(bank, login, conversation),
                ["anna", "igor", "sveta", "root"],
            )
        )
    ids = [[s["id"] for s in one["suggestions"]] for one in shown]
    assert ids[0] and all(one == ids[0] for one in ids), ids

    async def stored(session: AsyncSession) -> int:
        n = await session.scalar(
            select(func.count()).where(ReplySuggestion.conversation_id == conversation)
        )
        return int(n or 0)

    assert in_db(settings, stored) == len(ids[0])


def test_sent_as_suggested_is_accepted_and_changed_is_edited(
    bank: TestClient, staff: Staff
) -> None:
    token = widget_session(bank)["session_token"]
    conversation = customer_says(bank, token, "Потерял карту, что делать?")["conversation_id"]
    offered = suggestions(bank, "anna", conversation)["suggestions"][0]
    # the same text, only the spacing differs
    sent = send(
        bank,
        "anna",
        conversation,
        "  Заблокировать карту\nможно в приложении. ",
        suggestion_id=offered["id"],
    )
    assert sent.status_code == 201, sent.text
    after = suggestions(bank, "anna", conversation)
    assert after["answered"] is True
    record = after["suggestions"][0]
    assert (record["outcome"], record["sent_message_id"], record["decided_by"]) == (
        "accepted",
        sent.json()["message"]["id"],
        staff["anna"],
    )
    assert record["decided_at"] is not None

    # the customer asks the next thing: new suggestions for the new message
    customer_says(bank, token, "А ещё смс с кодом не приходит")
    fresh = suggestions(bank, "anna", conversation)
    assert fresh["answered"] is False and fresh["message_id"] != after["message_id"]
    offered = fresh["suggestions"][0]
    assert (offered["ref"], offered["outcome"]) == ("sms-code", None)
    edited = send(
        bank,
        "anna",
        conversation,
        "Проверьте, что на телефоне есть связь, и запросите код ещё раз. Если не поможет — "
        "напишите, проверю со своей стороны.",
        suggestion_id=offered["id"],
    )
    assert edited.status_code == 201, edited.text
    record = suggestions(bank, "anna", conversation)["suggestions"][0]
    assert (record["outcome"], record["sent_message_id"]) == (
        "edited",
        edited.json()["message"]["id"],
    )


def test_a_rejection_is_recorded_and_a_decision_is_final(bank: TestClient, staff: Staff) -> None:
    conversation = new_dialog(bank, "Потерял карту, что делать?")
    offered = suggestions(bank, "anna", conversation)["suggestions"][0]
    rejected = reject(bank, "anna", offered["id"])
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["outcome"], rejected.json()["decided_by"]) == (
        "rejected",
        staff["anna"],
    )
    assert suggestions(bank, "igor", conversation)["suggestions"][0]["outcome"] == "rejected"

    again = reject(bank, "anna", offered["id"])
    assert (again.status_code, again.json()["code"]) == (409, "suggestion_decided")
    # sending it after all is refused too, and nothing reaches the customer
    sent = send(bank, "anna", conversation, offered["text"], suggestion_id=offered["id"])
    assert (sent.status_code, sent.json()["code"]) == (409, "suggestion_decided")
    assert staff_messages(bank, conversation) == []

    # an accepted one cannot be rejected afterwards either
    other = new_dialog(bank, "Потерял карту, что делать?")
    offered = suggestions(bank, "anna", other)["suggestions"][0]
    assert (
        send(bank, "anna", other, offered["text"], suggestion_id=offered["id"]).status_code == 201
    )
    late = reject(bank, "anna", offered["id"])
    assert (late.status_code, late.json()["code"]) == (409, "suggestion_decided")


def test_a_suggestion_of_another_dialog_or_for_a_note_is_refused_and_nothing_is_sent(
    bank: TestClient,
) -> None:
    first = new_dialog(bank, "Потерял карту, что делать?")
    second = new_dialog(bank, "Не приходит смс с кодом")
    theirs = suggestions(bank, "anna", first)["suggestions"][0]

    wrong = send(bank, "anna", second, theirs["text"], suggestion_id=theirs["id"])
    assert (wrong.status_code, wrong.json()["code"]) == (400, "suggestion_of_another_dialog")
    note = send(bank, "anna", first, theirs["text"], suggestion_id=theirs["id"], internal=True)
    assert (note.status_code, note.json()["code"]) == (400, "suggestion_for_note")
    missing = send(bank, "anna", first, "текст", suggestion_id=999_999)
    assert (missing.status_code, missing.json()["code"]) == (404, "suggestion_not_found")
    for bad in (0, -1, "x", 2**40):
        assert send(bank, "anna", first, "текст", suggestion_id=bad).status_code == 422
    assert staff_messages(bank, first) == [] and staff_messages(bank, second) == []
    assert suggestions(bank, "anna", first)["suggestions"][0]["outcome"] is None
    assert reject(bank, "anna", 999_999).status_code == 404
    assert reject(bank, "anna", 0).status_code == 422


def test_a_retried_send_records_the_decision_once(bank: TestClient) -> None:
    conversation = new_dialog(bank, "Потерял карту, что делать?")
    offered = suggestions(bank, "anna", conversation)["suggestions"][0]
    body = {"client_msg_id": cmid(), "text": offered["text"], "suggestion_id": offered["id"]}
    headers = bearer(signed_in(bank, "anna"))
    url = f"/api/v1/conversations/{conversation}/messages"
    assert bank.post(url, json=body, headers=headers).status_code == 201
    retry = bank.post(url, json=body, headers=headers)
    assert (retry.status_code, retry.json()["duplicate"]) == (200, True)
    assert suggestions(bank, "anna", conversation)["suggestions"][0]["outcome"] == "accepted"


def test_an_operator_of_another_team_is_refused(bank: TestClient) -> None:
    conversation = new_dialog(bank, "Потерял карту, что делать?")
    offered = suggestions(bank, "anna", conversation)["suggestions"][0]
    taken = bank.post(
        f"/api/v1/conversations/{conversation}/assign",
        json={},
        headers=bearer(signed_in(bank, "anna")),
    )
    assert taken.status_code == 200, taken.text
    olga = bearer(signed_in(bank, "olga"))
    shown = bank.get(f"/api/v1/conversations/{conversation}/reply-suggestions", headers=olga)
    assert (shown.status_code, shown.json()["code"]) == (403, "forbidden_team")
    refused = reject(bank, "olga", offered["id"])
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden_team")
    assert bank.get(f"/api/v1/conversations/{conversation}/reply-suggestions").status_code == 401
    assert suggestions(bank, "anna", conversation)["suggestions"][0]["outcome"] is None
    missing = bank.get(
        "/api/v1/conversations/999999/reply-suggestions", headers=bearer(signed_in(bank, "anna"))
    )
    assert missing.status_code == 404


def test_nothing_new_is_worked_out_for_an_answered_message(bank: TestClient) -> None:
    conversation = new_dialog(bank, "Потерял карту, что делать?")
    send(bank, "anna", conversation, "Сейчас посмотрю.")
    shown = suggestions(bank, "anna", conversation)
    assert (shown["answered"], shown["suggestions"]) == (True, [])


@pytest.fixture
def refreshing(settings: Settings, staff: Staff) -> Iterator[TestClient]:
    """The app with the index of earlier answers rebuilt on every request."""
    fast = settings.model_copy(update={"reply_suggestions_refresh_seconds": 0})
    with TestClient(create_app(fast)) as client:
        yield client


def test_a_new_colleague_answer_is_offered_once_the_index_is_rebuilt(
    refreshing: TestClient,
) -> None:
    before = new_dialog(refreshing, "Как узнать реквизиты счёта?")
    assert suggestions(refreshing, "anna", before)["suggestions"] == []
    send(refreshing, "anna", before, "Реквизиты есть в приложении: Счета → Реквизиты.")
    later = new_dialog(refreshing, "где посмотреть реквизиты счета")
    shown = suggestions(refreshing, "igor", later)
    assert [(s["source"], s["text"]) for s in shown["suggestions"]] == [
        ("history", "Реквизиты есть в приложении: Счета → Реквизиты.")
    ]


def test_history_can_be_switched_off(settings: Settings, staff: Staff) -> None:
    off = settings.model_copy(update={"reply_suggestions_history_days": 0})
    with TestClient(create_app(off)) as client:
        before = new_dialog(client, "Как узнать реквизиты счёта?")
        send(client, "anna", before, "Реквизиты есть в приложении: Счета → Реквизиты.")
        later = new_dialog(client, "где посмотреть реквизиты счета")
        assert suggestions(client, "igor", later)["suggestions"] == []
