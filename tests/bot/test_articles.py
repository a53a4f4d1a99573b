"""The article editor over HTTP: create, change over the version you edited (a stale one is
refused), the history with who and what, restore as a new version, deactivate (no longer
suggested, history kept), search, and who may do what."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.bot.test_kb import KB
from tests.builders import bearer, staff_token

ARTICLE = {
    "id": "deposit-kids",
    "title": "Вклад для ребёнка",
    "questions": ["Можно ли открыть вклад на ребёнка?", "Депозит для сына"],
    "answer": "Открыть вклад на ребёнка может родитель в отделении.",
    "topic": "deposits",
    "tags": ["вклады"],
    "channels": ["widget"],
    "valid_from": "2020-01-01",
    "valid_to": None,
}


def _create(client: TestClient, token: str, **changes: Any) -> Any:
    return client.post("/api/v1/kb/articles", json={**ARTICLE, **changes}, headers=bearer(token))


def _save(client: TestClient, token: str, article: dict[str, Any], **changes: Any) -> Any:
    body = {k: article[k] for k in ("title", "questions", "answer", "topic", "tags", "channels")}
    body.update(valid_from=article["valid_from"], valid_to=article["valid_to"])
    body.update(version=article["version"], **changes)
    return client.put(f"/api/v1/kb/articles/{article['id']}", json=body, headers=bearer(token))


def test_edit_history_conflict_and_restore(client: TestClient) -> None:
    root = staff_token(client, "root")
    created = _create(client, root)
    assert created.status_code == 201, created.text
    v1 = created.json()
    assert (v1["version"], v1["updated_by"]["name"], v1["channels"]) == (1, "Админ", ["widget"])
    assert v1["valid_from"].startswith("2020-01-01")

    saved = _save(client, root, v1, answer="Вклад на ребёнка открывает родитель.")
    assert saved.status_code == 200, saved.text
    v2 = saved.json()
    assert v2["version"] == 2

    # a colleague still holding version 1 is told someone else changed it
    stale = _save(client, root, v1, title="Детский вклад")
    assert stale.status_code == 409
    assert stale.json()["code"] == "article_changed"
    assert stale.json()["fields"]["current_version"] == 2
    shown = client.get("/api/v1/kb/articles/deposit-kids", headers=bearer(root)).json()
    assert shown["title"] == "Вклад для ребёнка"  # nothing of the stale save was stored

    # saving without a change adds no history entry
    assert _save(client, root, v2).json()["version"] == 2

    history = client.get("/api/v1/kb/articles/deposit-kids/history", headers=bearer(root))
    versions = history.json()["versions"]
    assert [(v["version"], v["source"], v["changed_by"]["name"]) for v in versions] == [
        (2, "edit", "Админ"),
        (1, "edit", "Админ"),
    ]
    assert versions[0]["changed"] == ["answer"]

    old = client.get("/api/v1/kb/articles/deposit-kids/versions/1", headers=bearer(root)).json()
    assert old["content"]["answer"] == ARTICLE["answer"]

    restored = client.post(
        "/api/v1/kb/articles/deposit-kids/restore",
        json={"version": 2, "restore": 1},
        headers=bearer(root),
    )
    assert restored.status_code == 200, restored.text
    assert (restored.json()["version"], restored.json()["answer"]) == (3, ARTICLE["answer"])
    versions = client.get("/api/v1/kb/articles/deposit-kids/history", headers=bearer(root)).json()[
        "versions"
    ]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["changed"] == ["answer"]
    # restoring over a stale version is refused too
    again = client.post(
        "/api/v1/kb/articles/deposit-kids/restore",
        json={"version": 2, "restore": 1},
        headers=bearer(root),
    )
    assert again.status_code == 409


def test_an_imported_article_edited_shows_both_in_its_history(client: TestClient) -> None:
    root = staff_token(client, "root")
    client.post(
        "/api/v1/kb/import",
        content=KB.encode(),
        headers={**bearer(root), "Content-Type": "application/yaml"},
    )
    article = client.get("/api/v1/kb/articles/card-block", headers=bearer(root)).json()
    assert _save(client, root, article, topic="cards-lost").status_code == 200
    versions = client.get("/api/v1/kb/articles/card-block/history", headers=bearer(root)).json()[
        "versions"
    ]
    assert [(v["version"], v["source"], v["changed"]) for v in versions] == [
        (2, "edit", ["topic"]),
        (1, "import", ["title", "questions", "answer", "topic"]),
    ]


def test_problems_are_named_by_field(client: TestClient) -> None:
    root = staff_token(client, "root")
    empty_title = _create(client, root, title="  ")
    assert empty_title.status_code == 422
    assert empty_title.json()["code"] == "article_title_required"
    assert empty_title.json()["fields"]["field"] == "title"
    dates = _create(client, root, valid_from="2026-05-01", valid_to="2026-04-01")
    assert (dates.status_code, dates.json()["fields"]["field"]) == (422, "valid_to")
    bad_id = _create(client, root, id="с пробелом")
    assert bad_id.status_code == 422
    assert bad_id.json()["fields"]["errors"][0]["field"] == "id"
    assert _create(client, root).status_code == 201
    taken = _create(client, root)
    assert (taken.status_code, taken.json()["code"]) == (409, "article_exists")
    missing = client.get("/api/v1/kb/articles/nope", headers=bearer(root))
    assert missing.status_code == 404


def test_a_deactivated_article_is_no_longer_suggested_and_keeps_its_history(
    client: TestClient,
) -> None:
    root = staff_token(client, "root")
    client.post(
        "/api/v1/kb/import",
        content=KB.encode(),
        headers={**bearer(root), "Content-Type": "application/yaml"},
    )

    def suggested() -> list[str]:
        found = client.get("/api/v1/bot/suggest?q=заблокировать карту", headers=bearer(root))
        return [s["article_id"] for s in found.json()["suggestions"]]

    assert "card-block" in suggested()
    off = client.post(
        "/api/v1/kb/articles/card-block/deactivate", json={"version": 1}, headers=bearer(root)
    )
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert "card-block" not in suggested()
    asked = client.post(
        "/api/v1/bot/ask", json={"text": "как заблокировать карту"}, headers=bearer(root)
    ).json()
    assert asked["article_id"] is None
    listed = client.get("/api/v1/kb/articles", headers=bearer(root)).json()
    assert [a["id"] for a in listed["articles"]] == ["sbp"]
    inactive = client.get("/api/v1/kb/articles?status=inactive", headers=bearer(root)).json()
    assert [a["id"] for a in inactive["articles"]] == ["card-block"]
    versions = client.get("/api/v1/kb/articles/card-block/history", headers=bearer(root)).json()[
        "versions"
    ]
    assert (versions[0]["version"], versions[0]["changed"]) == (2, ["is_active"])

    on = client.post(
        "/api/v1/kb/articles/card-block/activate", json={"version": 2}, headers=bearer(root)
    )
    assert on.json()["version"] == 3
    assert "card-block" in suggested()


def test_search_is_case_and_yo_insensitive_and_filters_by_topic(client: TestClient) -> None:
    root = staff_token(client, "root")
    client.post(
        "/api/v1/kb/import",
        content=KB.encode(),
        headers={**bearer(root), "Content-Type": "application/yaml"},
    )
    _create(client, root, questions=["Вклад на ребёнка"])

    def ids(query: str) -> list[str]:
        listed = client.get(f"/api/v1/kb/articles?{query}", headers=bearer(root)).json()
        return sorted(a["id"] for a in listed["articles"])

    assert ids("q=ЗАБЛОКИРОВАТЬ") == ["card-block"]
    assert ids("q=ребенка") == ["deposit-kids"]
    assert ids("topic=transfers") == ["sbp"]
    assert ids("q=телефон&topic=cards") == []
    page = client.get("/api/v1/kb/articles?limit=1&offset=1", headers=bearer(root)).json()
    assert (len(page["articles"]), page["total"]) == (1, 3)
    assert page["topics"] == ["cards", "deposits", "transfers"]


def test_operators_are_refused_and_supervisors_only_read(client: TestClient) -> None:
    root = staff_token(client, "root")
    assert _create(client, root).status_code == 201
    anna = staff_token(client, "anna")
    sveta = staff_token(client, "sveta")
    for path in ("/api/v1/kb/articles", "/api/v1/kb/articles/deposit-kids"):
        assert client.get(path, headers=bearer(anna)).status_code == 403
        assert client.get(path, headers=bearer(sveta)).status_code == 200
    history = client.get("/api/v1/kb/articles/deposit-kids/history", headers=bearer(sveta))
    assert history.status_code == 200
    assert _create(client, sveta, id="other").status_code == 403
    article = client.get("/api/v1/kb/articles/deposit-kids", headers=bearer(root)).json()
    assert _save(client, sveta, article, title="x").status_code == 403
    assert _save(client, anna, article, title="x").status_code == 403
    off = client.post(
        "/api/v1/kb/articles/deposit-kids/deactivate", json={"version": 1}, headers=bearer(sveta)
    )
    assert off.status_code == 403
