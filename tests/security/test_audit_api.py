"""What lands in the audit log when staff act, and how the security officer searches it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from okno.operators import service as operators
from okno.settings import Settings
from tests.builders import (
    PASSWORD,
    bearer,
    cmid,
    customer_says,
    in_db,
    password_hash,
    staff_token,
    widget_session,
)


def _officer(settings: Settings) -> None:
    async def create(session: Any) -> None:
        await operators.create_user(
            session,
            login="vera",
            password=PASSWORD,
            role="security_officer",
            display_name="Вера",
            password_hash=password_hash(),
        )

    in_db(settings, create)


def _search(client: TestClient, token: str, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/audit", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _customer_of(client: TestClient, token: str) -> int:
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], "Здравствуйте")["conversation_id"]
    data = client.get(f"/api/v1/conversations/{conv}", headers=bearer(token)).json()
    return int(data["customer"]["id"])


def test_every_view_of_a_customer_card_is_recorded_with_who_and_from_where(
    client: TestClient, settings: Settings
) -> None:
    _officer(settings)
    anna = staff_token(client, "anna")
    customer_id = _customer_of(client, anna)
    for _ in range(2):
        assert (
            client.get(f"/api/v1/customers/{customer_id}", headers=bearer(anna)).status_code == 200
        )
    client.get(f"/api/v1/customers/{customer_id}/timeline", headers=bearer(anna))
    vera = staff_token(client, "vera")
    found = _search(client, vera, object=f"customer:{customer_id}")["entries"]
    assert [e["action"] for e in found] == [
        "customer.history_viewed",
        "customer.viewed",
        "customer.viewed",
    ]
    newest = found[0]
    assert newest["actor_login"] == "anna" and newest["actor_role"] == "operator"
    assert newest["ip"] == "testclient" and newest["outcome"] == "success"
    assert found[1]["seq"] < newest["seq"] and len(newest["hash"]) == 64


def test_a_card_of_another_team_is_refused_and_the_refusal_recorded(
    client: TestClient, settings: Settings
) -> None:
    root = staff_token(client, "root")
    anna = staff_token(client, "anna")
    session = widget_session(client)
    conv = customer_says(client, session["session_token"], "Вопрос")["conversation_id"]
    client.post(  # anna answers: the dialog is now her team's
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Беру"},
        headers=bearer(anna),
    )
    customer_id = client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()[
        "customer"
    ]["id"]
    olga = staff_token(client, "olga")  # another team
    denied = client.get(f"/api/v1/customers/{customer_id}", headers=bearer(olga))
    assert denied.status_code == 403
    (entry,) = _search(client, root, actor="olga", action="customer.viewed")["entries"]
    assert entry["outcome"] == "denied" and entry["object_id"] == str(customer_id)


def test_user_and_role_changes_are_recorded(client: TestClient) -> None:
    root = staff_token(client, "root")
    created = client.post(
        "/api/v1/users",
        json={"login": "boris", "name": "Борис", "password": PASSWORD, "role": "operator"},
        headers=bearer(root),
    )
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    changed = client.patch(
        f"/api/v1/users/{user_id}", json={"role": "supervisor"}, headers=bearer(root)
    )
    assert changed.status_code == 200, changed.text
    entries = _search(client, root, object=f"user:{user_id}")["entries"]
    assert [e["action"] for e in entries] == ["user.role_changed", "user.updated", "user.created"]
    assert entries[0]["details"]["role"] == "supervisor"
    assert entries[1]["details"]["changed"] == ["role"]
    assert PASSWORD not in str(entries)


def test_search_filters_by_action_prefix_and_pages_with_the_cursor(client: TestClient) -> None:
    root = staff_token(client, "root")
    anna = staff_token(client, "anna")
    customer_id = _customer_of(client, anna)
    for _ in range(5):
        client.get(f"/api/v1/customers/{customer_id}", headers=bearer(anna))
    first = _search(client, root, action="customer.", limit=3)
    assert len(first["entries"]) == 3 and first["next_cursor"] is not None
    rest = _search(client, root, action="customer.", limit=3, cursor=first["next_cursor"])
    assert len(rest["entries"]) == 2 and rest["next_cursor"] is None
    seqs = [e["seq"] for e in first["entries"] + rest["entries"]]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 5
    assert (
        _search(client, root, actor="anna", **{"from": "2000-01-01", "to": "2000-01-02"})["entries"]
        == []
    )
    # the searches themselves are in the log
    searches = _search(client, root, action="audit.searched")["entries"]
    # (each search is recorded with itself, so it finds the earlier three)
    assert len(searches) == 3 and searches[-1]["details"]["action"] == "customer."


def test_operators_may_not_read_the_audit_log(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    response = client.get("/api/v1/audit", headers=bearer(anna))
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden_role"
    assert client.get("/api/v1/audit").status_code == 401


def test_bad_search_input_is_a_clear_4xx(client: TestClient) -> None:
    root = staff_token(client, "root")
    bad_date = client.get("/api/v1/audit", params={"from": "вчера"}, headers=bearer(root))
    assert bad_date.status_code == 400 and bad_date.json()["code"] == "bad_period"
    backwards = client.get(
        "/api/v1/audit", params={"from": "2026-02-01", "to": "2026-01-01"}, headers=bearer(root)
    )
    assert backwards.status_code == 400
    for params in ({"cursor": "-1"}, {"limit": "0"}, {"outcome": "maybe"}, {"actor": "a\x00b"}):
        response = client.get("/api/v1/audit", params=params, headers=bearer(root))
        assert response.status_code == 422, (params, response.text)


def test_verify_over_http_reports_an_intact_chain(client: TestClient) -> None:
    root = staff_token(client, "root")
    anna = staff_token(client, "anna")
    customer_id = _customer_of(client, anna)
    client.get(f"/api/v1/customers/{customer_id}", headers=bearer(anna))
    result = client.get("/api/v1/audit/verify", headers=bearer(root))
    assert result.status_code == 200
    body = result.json()
    assert body["ok"] is True and body["count"] >= 1 and body["broken"] is None


def test_channel_credential_changes_are_recorded_without_the_secret(client: TestClient) -> None:
    root = staff_token(client, "root")
    added = client.post(
        "/api/v1/channels",
        json={
            "kind": "telegram",
            "name": "Бот банка",
            "settings": {"bot_token": "123456:SECRET-TOKEN-VALUE", "mode": "polling"},
        },
        headers=bearer(root),
    )
    assert added.status_code == 201, added.text
    channel_id = added.json()["id"]
    changed = client.patch(
        f"/api/v1/channels/{channel_id}",
        json={"settings": {"bot_token": "654321:ANOTHER-SECRET"}},
        headers=bearer(root),
    )
    assert changed.status_code == 200, changed.text
    entries = _search(client, root, object=f"channel:{channel_id}")["entries"]
    assert [e["action"] for e in entries] == ["channel.credentials_changed", "channel.created"]
    assert entries[0]["details"]["settings"] == ["bot_token"]
    assert "SECRET" not in str(entries)
