"""Knowledge-base import and export, and the bot endpoints, over HTTP."""

from __future__ import annotations

import json

import yaml
from fastapi.testclient import TestClient

from tests.builders import bearer, staff_token, widget_session

KB = """
articles:
  - id: card-block
    title: Как заблокировать карту
    questions:
      - "Как заблокировать карту?"
      - "Потерял карту, что делать"
    answer: Заблокировать карту можно в приложении.
    topic: cards
  - id: sbp
    title: Перевод по номеру телефона
    questions: ["Как перевести по номеру телефона"]
    answer: "Платежи → По номеру телефона."
    topic: transfers
    channels: [api]
"""


def _import(client: TestClient, token: str, body: str) -> dict:
    response = client.post(
        "/api/v1/kb/import",
        content=body.encode(),
        headers={**bearer(token), "Content-Type": "application/yaml"},
    )
    return {"status": response.status_code, **response.json()}


def test_import_creates_then_updates_by_stable_id_and_export_reads_back(client: TestClient) -> None:
    root = staff_token(client, "root")
    assert _import(client, root, KB) == {"status": 200, "created": 2, "updated": 0, "unchanged": 0}
    again = _import(client, root, KB)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)
    changed = KB.replace(
        "Заблокировать карту можно в приложении.", "В приложении, Карты → Блокировка."
    )
    result = _import(client, root, changed)
    assert result["updated"] == 1, result
    exported = client.get("/api/v1/kb/export", headers=bearer(root)).json()
    by_id = {a["id"]: a for a in exported["articles"]}
    assert by_id["card-block"]["answer"] == "В приложении, Карты → Блокировка."
    assert by_id["sbp"]["channels"] == ["api"]
    # what export prints, import takes back unchanged
    round_trip = _import(client, root, json.dumps(exported, ensure_ascii=False))
    assert round_trip["unchanged"] == 2


def test_a_bad_article_is_named_and_nothing_of_the_file_is_stored(client: TestClient) -> None:
    root = staff_token(client, "root")
    bad = KB + "  - id: 'no spaces allowed'\n    title: x\n    answer: y\n"
    result = _import(client, root, bad)
    assert result["status"] == 400 and result["code"] == "bad_kb_articles"
    assert result["fields"]["errors"][0]["position"] == 3
    assert client.get("/api/v1/kb/export", headers=bearer(root)).json() == {"articles": []}
    assert _import(client, root, "articles: [")["code"] == "bad_kb_file"
    assert _import(client, root, "just: text")["code"] == "bad_kb_file"
    dup = yaml.safe_load(KB)
    dup["articles"].append(dup["articles"][0])
    assert _import(client, root, json.dumps(dup))["code"] == "bad_kb_articles"


def test_only_admins_import(client: TestClient) -> None:
    assert _import(client, staff_token(client, "anna"), KB)["status"] == 403


def test_ask_and_suggest_for_a_widget_visitor_respect_the_channel(client: TestClient) -> None:
    _import(client, staff_token(client, "root"), KB)
    visitor = widget_session(client)["session_token"]
    asked = client.post(
        "/api/v1/bot/ask", json={"text": "потерял карточку"}, headers=bearer(visitor)
    )
    assert asked.status_code == 200
    body = asked.json()
    assert body["suggestions"][0]["article_id"] == "card-block"
    assert body["topic"] == "cards"
    assert set(body) >= {"decision", "confidence", "article_id", "suggestions", "topic"}
    # the app-only article is not offered in the web widget, but staff see it
    suggested = client.get("/api/v1/bot/suggest?q=перевести по ном", headers=bearer(visitor)).json()
    assert "sbp" not in [s["article_id"] for s in suggested["suggestions"]]
    staff = client.get(
        "/api/v1/bot/suggest?q=перевести по ном", headers=bearer(staff_token(client, "anna"))
    )
    assert staff.json()["suggestions"][0]["article_id"] == "sbp"
    assert client.get("/api/v1/bot/suggest?q=ка", headers=bearer(visitor)).json() == {
        "suggestions": []
    }


def test_the_bot_endpoints_need_a_visitor_or_staff_credential(client: TestClient) -> None:
    assert client.post("/api/v1/bot/ask", json={"text": "карта"}).status_code == 401
    assert client.get("/api/v1/bot/suggest?q=карта", headers=bearer("forged")).status_code == 401
    visitor = widget_session(client)["session_token"]
    assert (
        client.post("/api/v1/bot/ask", json={"text": ""}, headers=bearer(visitor)).status_code
        == 422
    )
