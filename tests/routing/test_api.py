"""Routing over HTTP: why each dialog went to whom, the queue admin API, the customer's
place in line in the widget, and assignment without anyone clicking."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from okno.app import create_app
from okno.settings import Settings
from tests.builders import Staff, bearer, customer_says, staff_token, widget_session
from tests.routing import kit

MOSCOW = ZoneInfo("Europe/Moscow")
EVERY_DAY = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def new_dialog(client: TestClient) -> tuple[str, int]:
    """A visitor writes in the widget: (their session token, the dialog id)."""
    session = widget_session(client)
    message = customer_says(client, session["session_token"], "Здравствуйте")
    return session["session_token"], int(message["conversation_id"])


def online(settings: Settings, user_id: int, **kw: Any) -> None:
    kit.run(settings, lambda db: kit.operator(db, user_id, now=kit.clock(), **kw))


def dispatch(settings: Settings) -> list[int]:
    decisions = kit.run(settings, lambda db: kit.dispatch(db, kit.clock()))
    return [d.conversation_id for d in decisions]


def closed_today_and_tomorrow() -> tuple[dict[str, Any], datetime]:
    """Hours with today and tomorrow (Moscow) as holidays; and when it opens next."""
    today = datetime.now(MOSCOW).date()
    hours = {
        "timezone": "Europe/Moscow",
        "weekly": {day: ["09:00-18:00"] for day in EVERY_DAY},
        "holidays": [today.isoformat(), (today + timedelta(days=1)).isoformat()],
    }
    opens = datetime.combine(today + timedelta(days=2), datetime.min.time(), MOSCOW)
    return hours, opens.replace(hour=9)


# ------------------------------------------------------------------ why


def test_an_automatic_assignment_shows_its_rule_strategy_and_candidates(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    kit.run(settings, lambda db: kit.make_queue(db, name="Общая", is_default=True))
    online(settings, staff["igor"])
    _, busy = new_dialog(client)
    assert dispatch(settings) == [busy]  # igor now serves one
    online(settings, staff["anna"])
    _, wanted = new_dialog(client)
    assert dispatch(settings) == [wanted]

    sveta = staff_token(client, "sveta")
    response = client.get(f"/api/v1/conversations/{wanted}/assignments", headers=bearer(sveta))
    assert response.status_code == 200, response.text
    (why,) = response.json()["assignments"]
    assert why["kind"] == "auto" and why["user_id"] == staff["anna"]
    assert why["rule"] == "queue:Общая" and why["strategy"] == "least_loaded"
    assert [(c["user_id"], c["load"]) for c in why["candidates"]] == [
        (staff["anna"], 0),
        (staff["igor"], 1),
    ]


def test_a_dialog_taken_by_hand_is_logged_as_a_take(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    _, waiting = new_dialog(client)
    anna = staff_token(client, "anna")
    taken = client.post(f"/api/v1/conversations/{waiting}/assign", json={}, headers=bearer(anna))
    assert taken.status_code == 200, taken.text

    response = client.get(f"/api/v1/conversations/{waiting}/assignments", headers=bearer(anna))
    assert response.status_code == 200, response.text
    (why,) = response.json()["assignments"]
    assert (why["kind"], why["user_id"], why["actor_id"]) == ("take", staff["anna"], staff["anna"])


# ------------------------------------------------------------------ queue admin


def test_admins_create_and_change_queues_and_supervisors_read_them(
    client: TestClient, staff: Staff
) -> None:
    root, sveta, anna = (staff_token(client, u) for u in ("root", "sveta", "anna"))
    hours, _ = closed_today_and_tomorrow()
    created = client.post(
        "/api/v1/routing/queues",
        json={
            "name": "Карты",
            "topic": "cards",
            "team_id": staff.teams["Поддержка"],
            "skill": "cards",
            "min_skill_level": 2,
            "priority": 10,
            "hours": hours,
        },
        headers=bearer(root),
    )
    assert created.status_code == 201, created.text
    cards = created.json()
    assert cards["topic"] == "cards" and cards["open_now"] is False
    always = client.post(
        "/api/v1/routing/queues",
        json={"name": "Мошенничество", "topic": "fraud", "priority": 100},
        headers=bearer(root),
    )
    assert always.status_code == 201 and always.json()["open_now"] is True

    changed = client.patch(
        f"/api/v1/routing/queues/{cards['id']}",
        json={"priority": 20, "hours": None},
        headers=bearer(root),
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["priority"] == 20 and changed.json()["open_now"] is True
    assert changed.json()["skill"] == "cards"  # untouched fields stay

    listed = client.get("/api/v1/routing/queues", headers=bearer(sveta))
    assert listed.status_code == 200
    assert {q["name"] for q in listed.json()["queues"]} == {"Карты", "Мошенничество"}
    assert client.get("/api/v1/routing/queues", headers=bearer(anna)).status_code == 403
    for token in (anna, sveta):
        refused = client.post(
            "/api/v1/routing/queues", json={"name": "Вклады"}, headers=bearer(token)
        )
        assert refused.status_code == 403
        patched = client.patch(
            f"/api/v1/routing/queues/{cards['id']}", json={"priority": 0}, headers=bearer(token)
        )
        assert patched.status_code == 403


def test_bad_hours_and_duplicate_names_or_topics_are_refused_with_the_field(
    client: TestClient, staff: Staff
) -> None:
    root = staff_token(client, "root")
    first = client.post(
        "/api/v1/routing/queues", json={"name": "Карты", "topic": "cards"}, headers=bearer(root)
    )
    assert first.status_code == 201
    for hours in (
        {"weekly": {"mon": ["9 to 6"]}},
        {"weekly": {"monday": ["09:00-18:00"]}},
        {"weekly": {"mon": ["18:00-09:00"]}},
        {"timezone": "Mars/Olympus", "weekly": {"mon": ["09:00-18:00"]}},
        {"holidays": ["31.12.2026"]},
    ):
        bad = client.post(
            "/api/v1/routing/queues", json={"name": "Вклады", "hours": hours}, headers=bearer(root)
        )
        assert bad.status_code == 400, (hours, bad.text)
        assert bad.json()["fields"]["field"] == "hours", bad.text
    same_name = client.post("/api/v1/routing/queues", json={"name": "Карты"}, headers=bearer(root))
    assert same_name.status_code == 409 and same_name.json()["fields"]["field"] == "name"
    same_topic = client.post(
        "/api/v1/routing/queues", json={"name": "Карты-2", "topic": "cards"}, headers=bearer(root)
    )
    assert same_topic.status_code == 409 and same_topic.json()["fields"]["field"] == "topic"
    other = client.post("/api/v1/routing/queues", json={"name": "Вклады"}, headers=bearer(root))
    renamed = client.patch(
        f"/api/v1/routing/queues/{other.json()['id']}", json={"name": "Карты"}, headers=bearer(root)
    )
    assert renamed.status_code == 409
    names = [
        q["name"]
        for q in client.get("/api/v1/routing/queues", headers=bearer(root)).json()["queues"]
    ]
    assert sorted(names) == ["Вклады", "Карты"]  # nothing half-written


def test_a_null_for_a_field_that_cannot_be_empty_is_refused_and_nothing_changes(
    client: TestClient, staff: Staff
) -> None:
    root = staff_token(client, "root")
    queue = client.post(
        "/api/v1/routing/queues", json={"name": "Карты", "priority": 5}, headers=bearer(root)
    ).json()
    for field in ("name", "priority", "strategy", "min_skill_level", "is_active"):
        refused = client.patch(
            f"/api/v1/routing/queues/{queue['id']}", json={field: None}, headers=bearer(root)
        )
        assert refused.status_code == 422, (field, refused.text)
        assert [e["field"] for e in refused.json()["fields"]["errors"]] == [field]
    cleared = client.patch(
        f"/api/v1/routing/queues/{queue['id']}", json={"topic": None}, headers=bearer(root)
    )
    assert cleared.status_code == 200  # null clears what may be empty
    unknown_team = client.patch(
        f"/api/v1/routing/queues/{queue['id']}", json={"team_id": 999}, headers=bearer(root)
    )
    assert unknown_team.status_code == 400
    assert unknown_team.json()["fields"]["field"] == "team_id"
    (kept,) = client.get("/api/v1/routing/queues", headers=bearer(root)).json()["queues"]
    assert (kept["name"], kept["priority"], kept["team_id"]) == ("Карты", 5, None)


# ------------------------------------------------------------------ the customer's view


def place_in_line(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get("/api/v1/widget/queue", headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_widget_shows_the_place_in_line_and_an_expected_wait(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    kit.run(settings, lambda db: kit.make_queue(db, name="Общая", is_default=True))
    first, first_id = new_dialog(client)
    second, _ = new_dialog(client)
    dispatch(settings)  # placed; nobody is online

    assert place_in_line(client, first) == {
        "position": 1,
        "expected_wait_seconds": None,  # nobody was served lately: no estimate
        "opens_at": None,
    }
    assert place_in_line(client, second)["position"] == 2

    online(settings, staff["anna"], capacity=1)
    assert dispatch(settings) == [first_id]
    assert place_in_line(client, first)["position"] is None  # an operator has it
    now_second = place_in_line(client, second)
    assert now_second["position"] == 1
    assert now_second["expected_wait_seconds"] is not None
    assert 0 < now_second["expected_wait_seconds"] <= 1800


def test_the_widget_says_when_a_closed_queue_opens(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    hours, opens = closed_today_and_tomorrow()
    kit.run(settings, lambda db: kit.make_queue(db, name="Общая", is_default=True, hours=hours))
    token, _ = new_dialog(client)
    online(settings, staff["anna"])
    assert dispatch(settings) == []

    shown = place_in_line(client, token)
    assert shown["position"] == 1
    assert datetime.fromisoformat(shown["opens_at"]) == opens


# ------------------------------------------------------------------ end to end


def test_a_widget_message_reaches_an_online_operator_without_anyone_clicking(
    settings: Settings, staff: Staff
) -> None:
    live = settings.model_copy(update={"worker_in_process": True})
    with TestClient(create_app(live)) as client:
        anna = staff_token(client, "anna")
        with client.websocket_connect(f"/api/v1/ws?token={anna}") as workspace:
            assert workspace.receive_json()["type"] == "stream.ready"
            _, conversation_id = new_dialog(client)
            deadline = time.monotonic() + 10
            shown: dict[str, Any] = {}
            while time.monotonic() < deadline:
                shown = client.get(
                    f"/api/v1/conversations/{conversation_id}", headers=bearer(anna)
                ).json()
                if shown["status"] == "assigned":
                    break
                time.sleep(0.1)
            assert shown["status"] == "assigned", shown
            assert shown["assignee"]["id"] == staff["anna"]
