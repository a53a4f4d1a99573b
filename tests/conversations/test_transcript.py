"""A dialog's transcript download: the messages in order with their authors, personal data
masked as on the staff screens, ``exports.create`` plus the team rule of reading the
messages, and every export (transcripts, the knowledge base) recorded in the audit log."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

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

CARD = "4276 3800 1234 5679"
PHONE = "+7 (916) 123-45-67"
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\dZ  ")


def _reply(client: TestClient, token: str, conv: int, text: str, **extra: Any) -> None:
    response = client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": text, **extra},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text


def _dialog(client: TestClient) -> tuple[int, str]:
    """A dialog anna (team Поддержка) has answered, with a card and a phone from the
    customer and an internal note; (its id, the token of sveta, a supervisor of every
    team, who may export it)."""
    session = widget_session(client)["session_token"]
    conv = customer_says(client, session, f"Карта {CARD}, тел. {PHONE}")["conversation_id"]
    anna = staff_token(client, "anna")
    _reply(client, anna, conv, "Здравствуйте! Проверю.")
    _reply(client, anna, conv, "Клиент VIP", internal=True)
    customer_says(client, session, "Спасибо")
    return conv, staff_token(client, "sveta")


def _audit(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    root = staff_token(client, "root")
    response = client.get("/api/v1/audit", params=params, headers=bearer(root))
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


def test_transcript_lists_the_messages_in_order_with_authors_and_masks_personal_data(
    client: TestClient,
) -> None:
    conv, sveta = _dialog(client)
    response = client.get(f"/api/v1/conversations/{conv}/transcript", headers=bearer(sveta))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment") and f"dialog-{conv}.txt" in disposition

    text = response.text
    lines = [line for line in text.splitlines() if LINE.match(line)]
    assert [LINE.sub("", line) for line in lines] == [
        "Клиент: Карта •••• 5679, тел. [телефон]",
        "Анна: Здравствуйте! Проверю.",
        "Анна [внутренняя заметка]: Клиент VIP",
        "Клиент: Спасибо",
    ]
    for raw in (CARD, "123-45-67", "916", "1234"):
        assert raw not in text, raw


def _team_supervisor(settings: Settings) -> None:
    async def create(session: AsyncSession) -> None:
        await operators.create_user(
            session,
            login="kira",
            password=PASSWORD,
            role="supervisor",
            team="Кредиты",
            display_name="Кира",
            password_hash=password_hash(),
        )

    in_db(settings, create)


def test_another_team_is_refused_as_for_the_messages_and_operators_may_not_export(
    client: TestClient, settings: Settings
) -> None:
    conv, sveta = _dialog(client)
    _team_supervisor(settings)
    kira = staff_token(client, "kira")  # supervisor of team Кредиты: may export, not this
    for path in ("messages", "transcript"):
        response = client.get(f"/api/v1/conversations/{conv}/{path}", headers=bearer(kira))
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden_team"
    for path in ("messages", "transcript"):
        missing = client.get(f"/api/v1/conversations/999999/{path}", headers=bearer(sveta))
        assert missing.status_code == 404
    # operators read their dialogs but export nothing (exports.create, docs/security.md)
    anna = staff_token(client, "anna")
    assert client.get(f"/api/v1/conversations/{conv}/messages", headers=bearer(anna)).is_success
    refused = client.get(f"/api/v1/conversations/{conv}/transcript", headers=bearer(anna))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    assert client.get(f"/api/v1/conversations/{conv}/transcript").status_code == 401
    assert _audit(client, action="export") == []  # nothing left okno


def test_a_transcript_download_is_recorded_in_the_audit_log(client: TestClient) -> None:
    conv, sveta = _dialog(client)
    assert client.get(f"/api/v1/conversations/{conv}/transcript", headers=bearer(sveta)).is_success
    (entry,) = _audit(client, action="export", object=f"conversation:{conv}")
    assert entry["actor_login"] == "sveta" and entry["outcome"] == "success"
    assert entry["object_type"] == "conversation" and entry["object_id"] == str(conv)
    assert entry["details"] == {"kind": "transcript", "messages": 4}


def test_a_knowledge_base_export_is_recorded_in_the_audit_log(client: TestClient) -> None:
    root = staff_token(client, "root")
    assert client.get("/api/v1/kb/export", headers=bearer(root)).status_code == 200
    assert client.get("/api/v1/bot/flows/export", headers=bearer(root)).status_code == 200
    entries = _audit(client, action="export")
    kinds = {e["details"]["kind"]: e for e in entries}
    assert set(kinds) == {"kb", "flows"}
    assert kinds["kb"]["actor_login"] == "root" and kinds["kb"]["object_type"] == "kb"
    assert kinds["kb"]["details"]["articles"] == 0
    assert kinds["flows"]["details"]["flows"] == 0
