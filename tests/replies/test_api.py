"""Saved replies: scopes, the ``/`` search, placeholders filled with the dialog's names."""

from __future__ import annotations

from fastapi.testclient import TestClient

from okno.replies.service import render
from tests.builders import Staff, bearer, customer_says, staff_token, widget_session


def save(client: TestClient, token: str, **body: object):
    return client.post("/api/v1/saved-replies", json=body, headers=bearer(token))


def shortcuts(client: TestClient, token: str, q: str = "") -> list[str]:
    response = client.get(f"/api/v1/saved-replies?q={q}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return [r["shortcut"] for r in response.json()["saved_replies"]]


def test_scopes_decide_who_sees_a_reply(client: TestClient, staff: Staff) -> None:
    anna, igor, olga, sveta, root = (
        staff_token(client, n) for n in ("anna", "igor", "olga", "sveta", "root")
    )
    assert save(client, anna, shortcut="moi", title="Моя", body="Личный текст").status_code == 201
    team = save(
        client,
        sveta,
        scope="team",
        team_id=staff.teams["Поддержка"],
        shortcut="hello",
        title="Приветствие",
        body="Здравствуйте!",
    )
    assert team.status_code == 201, team.text
    assert (
        save(
            client, root, scope="shared", shortcut="bye", title="Прощание", body="Всего доброго"
        ).status_code
        == 201
    )
    assert shortcuts(client, anna) == ["bye", "hello", "moi"]
    assert shortcuts(client, igor) == ["bye", "hello"]
    assert shortcuts(client, olga) == ["bye"]


def test_operators_cannot_save_team_or_shared_replies(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    for scope in ("team", "shared"):
        response = save(client, anna, scope=scope, shortcut="x", title="X", body="Y")
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role"


def test_search_ranks_shortcut_then_title_then_text(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    save(client, anna, shortcut="card", title="Блокировка", body="Заблокируйте карту в приложении")
    save(client, anna, shortcut="limit", title="Лимиты по карте", body="Лимит меняется в профиле")
    save(client, anna, shortcut="kartochka", title="Перевыпуск", body="Новая карта через 5 дней")
    assert shortcuts(client, anna, "/car") == ["card"]
    assert shortcuts(client, anna, "карт") == ["limit", "card", "kartochka"]
    assert shortcuts(client, anna, "ЛИМИТ") == ["limit"]


def test_unknown_placeholder_is_refused(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    response = save(
        client, anna, shortcut="x", title="X", body="Здравствуйте, {{customer.passport}}"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_placeholder"


def test_render_fills_in_the_customer_and_operator(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    reply = save(
        client,
        anna,
        shortcut="hi",
        title="Привет",
        body="Здравствуйте, {{customer.first_name}}! Меня зовут {{ operator.name }}.",
    ).json()
    named = widget_session(client, visitor={"name": "Мария Иванова"})
    conv = customer_says(client, named["session_token"], "Вопрос")["conversation_id"]
    text = client.post(
        f"/api/v1/saved-replies/{reply['id']}/render",
        json={"conversation_id": conv},
        headers=bearer(anna),
    ).json()["text"]
    assert text == "Здравствуйте, Мария! Меня зовут Анна."
    anonymous = widget_session(client)
    conv2 = customer_says(client, anonymous["session_token"], "Вопрос")["conversation_id"]
    text2 = client.post(
        f"/api/v1/saved-replies/{reply['id']}/render",
        json={"conversation_id": conv2},
        headers=bearer(anna),
    ).json()["text"]
    assert text2 == "Здравствуйте! Меня зовут Анна."


def test_only_the_owner_changes_a_personal_reply(client: TestClient) -> None:
    anna, igor = staff_token(client, "anna"), staff_token(client, "igor")
    reply = save(client, anna, shortcut="p", title="P", body="Текст").json()
    assert (
        client.patch(
            f"/api/v1/saved-replies/{reply['id']}", json={"body": "Чужое"}, headers=bearer(igor)
        ).status_code
        == 404
    )
    changed = client.patch(
        f"/api/v1/saved-replies/{reply['id']}", json={"body": "Новый текст"}, headers=bearer(anna)
    )
    assert changed.status_code == 200 and changed.json()["body"] == "Новый текст"
    assert (
        client.delete(f"/api/v1/saved-replies/{reply['id']}", headers=bearer(anna)).status_code
        == 204
    )
    assert shortcuts(client, anna) == []


def test_render_without_a_name_drops_the_dangling_comma() -> None:
    assert (
        render("Добрый день, {{customer.first_name}}.", customer_name="", operator_name="Анна")
        == "Добрый день."
    )
