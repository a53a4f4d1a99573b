"""The customer's whole history on one timeline: every channel, in seq order, paged back
from the newest, under the same team rule as the card."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.customers.models import CustomerIdentity
from okno.settings import Settings
from tests.builders import bearer, cmid, customer_says, in_db, staff_token, widget_session

APP_KEY = "acme-app"
APP_VISITOR = "app-user-000001"


def say(client: TestClient, token: str, conv: int, text: str, **extra: Any) -> None:
    response = client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": text, **extra},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text


def timeline(client: TestClient, token: str, customer_id: int, **params: Any) -> dict[str, Any]:
    response = client.get(
        f"/api/v1/customers/{customer_id}/timeline", params=params, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
def two_channels(client: TestClient, settings: Settings) -> dict[str, Any]:
    """One customer who wrote in the web chat and in the bank's app (a second widget
    channel where the same person is known by another id)."""
    chat = widget_session(client, visitor={"name": "Пётр"})
    chat_conv = customer_says(client, chat["session_token"], "Чат: карта не работает")[
        "conversation_id"
    ]
    anna = staff_token(client, "anna")
    customer_id = client.get(f"/api/v1/conversations/{chat_conv}", headers=bearer(anna)).json()[
        "customer"
    ]["id"]

    async def add_app_channel(session: AsyncSession) -> int:
        channel = await channels.add_widget(session, key=APP_KEY, name="Мобильный банк")
        session.add(
            CustomerIdentity(
                customer_id=customer_id, channel_id=channel.id, external_id=APP_VISITOR
            )
        )
        return channel.id

    app_channel = in_db(settings, add_app_channel)
    started = client.post(
        "/api/v1/widget/sessions", json={"widget_key": APP_KEY, "visitor": {"id": APP_VISITOR}}
    )
    assert started.status_code == 200, started.text
    app_token = started.json()["session_token"]
    app_conv = customer_says(client, app_token, "Приложение: не приходит СМС")["conversation_id"]
    say(client, anna, chat_conv, "Чат: проверяю карту")
    customer_says(client, app_token, "Приложение: всё ещё нет")
    say(client, anna, chat_conv, "Чат: заметка", internal=True)
    return {
        "customer_id": customer_id,
        "chat_conv": chat_conv,
        "app_conv": app_conv,
        "app_channel": app_channel,
        "app_token": app_token,
        "anna": anna,
    }


def test_both_channels_on_one_timeline_in_seq_order(
    client: TestClient, two_channels: dict[str, Any]
) -> None:
    assert two_channels["app_conv"] != two_channels["chat_conv"]
    body = timeline(client, two_channels["anna"], two_channels["customer_id"])
    items = body["items"]
    assert [i["text"] for i in items] == [
        "Чат: карта не работает",
        "Приложение: не приходит СМС",
        "Чат: проверяю карту",
        "Приложение: всё ещё нет",
        "Чат: заметка",
    ]
    assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)
    assert [i["channel_name"] for i in items] == [
        "Acme Bank",
        "Мобильный банк",
        "Acme Bank",
        "Мобильный банк",
        "Acme Bank",
    ]
    assert {i["channel_kind"] for i in items} == {"widget"}
    assert [i["conversation_id"] for i in items[:2]] == [
        two_channels["chat_conv"],
        two_channels["app_conv"],
    ]
    assert items[0]["author_name"] == "Пётр" and items[2]["author_name"] == "Анна"
    assert items[-1]["internal"] is True
    assert body["has_more"] is False


def test_paging_back_from_the_newest(client: TestClient, two_channels: dict[str, Any]) -> None:
    anna, customer_id = two_channels["anna"], two_channels["customer_id"]
    full = [i["id"] for i in timeline(client, anna, customer_id)["items"]]
    newest = timeline(client, anna, customer_id, limit=2)
    assert [i["id"] for i in newest["items"]] == full[-2:] and newest["has_more"] is True
    middle = timeline(client, anna, customer_id, limit=2, before_seq=newest["items"][0]["seq"])
    assert [i["id"] for i in middle["items"]] == full[1:3] and middle["has_more"] is True
    oldest = timeline(client, anna, customer_id, limit=2, before_seq=middle["items"][0]["seq"])
    assert [i["id"] for i in oldest["items"]] == full[:1] and oldest["has_more"] is False
    exact = timeline(client, anna, customer_id, limit=5)
    assert len(exact["items"]) == 5 and exact["has_more"] is False


def test_another_teams_dialog_stays_off_the_timeline(
    client: TestClient, two_channels: dict[str, Any]
) -> None:
    """Olga (Кредиты) takes the app dialog: Anna (Поддержка) no longer sees it, Olga sees
    only it, a team-less supervisor sees both."""
    olga = staff_token(client, "olga")
    say(client, olga, two_channels["app_conv"], "Приложение: это к нам")
    customer_id = two_channels["customer_id"]
    anna_view = timeline(client, two_channels["anna"], customer_id)["items"]
    assert {i["conversation_id"] for i in anna_view} == {two_channels["chat_conv"]}
    olga_view = timeline(client, olga, customer_id)["items"]
    assert {i["conversation_id"] for i in olga_view} == {two_channels["app_conv"]}
    assert [i["text"] for i in olga_view][-1] == "Приложение: это к нам"
    sveta_view = timeline(client, staff_token(client, "sveta"), customer_id)["items"]
    assert len(sveta_view) == len(anna_view) + len(olga_view)


def test_customer_of_another_team_is_403_and_logged(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], "Вопрос")["conversation_id"]
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    say(client, anna, conv, "Беру")
    customer_id = client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()[
        "customer"
    ]["id"]
    capsys.readouterr()
    denied = client.get(f"/api/v1/customers/{customer_id}/timeline", headers=bearer(olga))
    assert denied.status_code == 403 and denied.json()["code"] == "forbidden_team"
    logged = capsys.readouterr().out
    assert '"access.denied"' in logged and f'"customer_id": {customer_id}' in logged
    missing = client.get("/api/v1/customers/999999/timeline", headers=bearer(anna))
    assert missing.status_code == 404
    assert client.get(f"/api/v1/customers/{customer_id}/timeline").status_code == 401


def test_bad_paging_input_is_4xx(client: TestClient, two_channels: dict[str, Any]) -> None:
    anna, customer_id = two_channels["anna"], two_channels["customer_id"]
    url = f"/api/v1/customers/{customer_id}/timeline"
    for query in ("before_seq=-1", "before_seq=abc", f"before_seq={2**63}", "limit=0", "limit=501"):
        response = client.get(f"{url}?{query}", headers=bearer(anna))
        assert response.status_code == 422, (query, response.text)
        assert response.json()["code"] == "invalid_request"
    assert client.get(f"{url}?limit=500", headers=bearer(anna)).status_code == 200
