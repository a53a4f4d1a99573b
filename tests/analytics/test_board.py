"""The supervisor's live board: queue counts and waits from real inbound dialogs, operator
load and presence, the team rule, and who may look at it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations.models import Conversation
from okno.db.base import utcnow
from okno.operators import service as operators
from okno.settings import Settings
from tests.builders import (
    PASSWORD,
    Staff,
    bearer,
    cmid,
    customer_says,
    in_db,
    password_hash,
    staff_token,
    widget_session,
)

BOARD = "/api/v1/supervisor/board"


def board(client: TestClient, token: str) -> dict[str, Any]:
    response = client.get(BOARD, headers=bearer(token))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def new_dialog(client: TestClient, text: str = "Здравствуйте") -> int:
    session = widget_session(client)
    conv: int = customer_says(client, session["session_token"], text)["conversation_id"]
    return conv


def age(settings: Settings, conv: int, seconds: int) -> None:
    """Pretend the customer wrote ``seconds`` ago."""
    then = utcnow() - timedelta(seconds=seconds)

    async def run(session: AsyncSession) -> None:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conv)
            .values(created_at=then, awaiting_since=then)
        )

    in_db(settings, run)


def take(client: TestClient, token: str, conv: int) -> None:
    response = client.post(f"/api/v1/conversations/{conv}/assign", json={}, headers=bearer(token))
    assert response.status_code == 200, response.text


def row(rows: list[dict[str, Any]], key: str, value: Any) -> dict[str, Any]:
    return next(r for r in rows if r[key] == value)


def add_team_supervisor(settings: Settings, team: str) -> None:
    async def run(session: AsyncSession) -> None:
        await operators.create_user(
            session,
            login="pavel",
            password=PASSWORD,
            role="supervisor",
            team=team,
            display_name="Павел",
            password_hash=password_hash(),
        )

    in_db(settings, run)


def test_operators_may_not_see_the_board(client: TestClient) -> None:
    for login in ("anna", "olga"):
        response = client.get(BOARD, headers=bearer(staff_token(client, login)))
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role"
    assert client.get(BOARD).status_code == 401
    assert board(client, staff_token(client, "root"))["totals"]["waiting"] == 0


def test_waiting_in_progress_and_longest_wait(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    sveta, anna = staff_token(client, "sveta"), staff_token(client, "anna")
    empty = board(client, sveta)
    assert empty["totals"] == {
        "waiting": 0,
        "in_progress": 0,
        "longest_wait_seconds": 0,
        "online": 0,
        "on_break": 0,
    }
    assert empty["queues"] == [] and empty["generated_at"]

    old, fresh, served = (new_dialog(client, t) for t in ("Карта", "Кредит", "Вклад"))
    age(settings, old, 300)
    age(settings, served, 900)  # waited longest, but it is being served now
    patched = client.patch(
        f"/api/v1/conversations/{old}", json={"topic": "cards"}, headers=bearer(anna)
    )
    assert patched.status_code == 200
    take(client, anna, served)

    body = board(client, sveta)
    totals = body["totals"]
    assert (totals["waiting"], totals["in_progress"]) == (2, 1)
    assert 300 <= totals["longest_wait_seconds"] < 360

    cards = row(body["queues"], "topic", "cards")
    assert (cards["waiting"], cards["in_progress"]) == (1, 0)
    assert 300 <= cards["longest_wait_seconds"] < 360
    no_topic = row(body["queues"], "topic", None)
    assert (no_topic["waiting"], no_topic["in_progress"]) == (1, 1)
    assert no_topic["longest_wait_seconds"] < 60  # only `fresh` waits there
    assert body["queues"][-1]["topic"] is None

    (chat,) = body["channels"]
    assert (chat["channel_id"], chat["kind"], chat["name"]) == (
        staff.widget_id,
        "widget",
        "Acme Bank",
    )
    assert (chat["waiting"], chat["in_progress"]) == (2, 1)

    support = row(body["teams"], "team_id", staff.teams["Поддержка"])
    assert support["name"] == "Поддержка"
    assert (support["waiting"], support["in_progress"]) == (0, 1)  # taking gave it the team
    unteamed = row(body["teams"], "team_id", None)
    assert (unteamed["waiting"], unteamed["in_progress"]) == (2, 0)
    assert row(body["teams"], "team_id", staff.teams["Кредиты"])["in_progress"] == 0

    anna_row = row(body["operators"], "user_id", staff["anna"])
    assert (anna_row["open_dialogs"], anna_row["capacity"]) == (1, 5)
    assert anna_row["team_id"] == staff.teams["Поддержка"] and anna_row["role"] == "operator"
    assert row(body["operators"], "user_id", staff["igor"])["open_dialogs"] == 0

    # answering and closing move the counts
    client.post(f"/api/v1/conversations/{served}/close", headers=bearer(anna))
    take(client, anna, fresh)
    after = board(client, sveta)
    assert (after["totals"]["waiting"], after["totals"]["in_progress"]) == (1, 1)
    assert row(after["operators"], "user_id", staff["anna"])["open_dialogs"] == 1


def test_a_second_channel_counts_on_its_own(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    from okno.channels import service as channels

    async def add(session: AsyncSession) -> int:
        return (await channels.add_widget(session, key="acme-app", name="Мобильный банк")).id

    app_id = in_db(settings, add)
    started = client.post("/api/v1/widget/sessions", json={"widget_key": "acme-app"})
    customer_says(client, started.json()["session_token"], "Из приложения")
    new_dialog(client)
    new_dialog(client)
    rows = board(client, staff_token(client, "sveta"))["channels"]
    assert [(r["channel_id"], r["waiting"]) for r in rows] == [(staff.widget_id, 2), (app_id, 1)]
    assert row(rows, "channel_id", app_id)["kind"] == "widget"


def test_a_team_supervisor_sees_only_their_team(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    add_team_supervisor(settings, "Поддержка")
    anna, olga = staff_token(client, "anna"), staff_token(client, "olga")
    ours, theirs, queued = new_dialog(client), new_dialog(client), new_dialog(client)
    take(client, anna, ours)
    take(client, olga, theirs)
    age(settings, theirs, 600)

    everyone = board(client, staff_token(client, "sveta"))
    assert (everyone["totals"]["waiting"], everyone["totals"]["in_progress"]) == (1, 2)
    assert {t["team_id"] for t in everyone["teams"]} == {
        staff.teams["Поддержка"],
        staff.teams["Кредиты"],
        None,
    }
    assert row(everyone["operators"], "user_id", staff["olga"])["open_dialogs"] == 1

    pavel = board(client, staff_token(client, "pavel"))
    # Кредиты' dialog and its operator are invisible; dialogs without a team are shared
    assert (pavel["totals"]["waiting"], pavel["totals"]["in_progress"]) == (1, 1)
    assert pavel["totals"]["longest_wait_seconds"] < 60
    assert [t["team_id"] for t in pavel["teams"]] == [staff.teams["Поддержка"], None]
    assert {o["name"] for o in pavel["operators"]} == {"Анна", "Игорь", "Павел"}
    assert row(pavel["operators"], "user_id", staff["anna"])["open_dialogs"] == 1
    assert [(q["topic"], q["waiting"], q["in_progress"]) for q in pavel["queues"]] == [(None, 1, 1)]
    assert queued  # the shared one is the waiting one both boards count

    root = board(client, staff_token(client, "root"))
    assert root["totals"] == {**root["totals"], "waiting": 1, "in_progress": 2}


def test_presence_changes_show_on_the_board(client: TestClient, staff: Staff) -> None:
    anna, igor, sveta = (staff_token(client, n) for n in ("anna", "igor", "sveta"))

    def anna_row() -> dict[str, Any]:
        return row(board(client, sveta)["operators"], "user_id", staff["anna"])

    assert anna_row()["status"] == "offline"
    client.put("/api/v1/me/presence", json={"status": "break"}, headers=bearer(anna))
    client.put("/api/v1/me/presence", json={"status": "break"}, headers=bearer(igor))
    now = board(client, sveta)
    assert row(now["operators"], "user_id", staff["anna"])["status"] == "break"
    assert now["totals"]["on_break"] == 2 and now["totals"]["online"] == 0

    client.put("/api/v1/me/presence", json={"status": "online"}, headers=bearer(anna))
    chosen = anna_row()
    # online by choice, but no workspace open: not available for routing
    assert (chosen["status"], chosen["connected"], chosen["available"]) == (
        "online",
        False,
        False,
    )
    with client.websocket_connect(f"/api/v1/ws?token={anna}") as workspace:
        assert workspace.receive_json()["type"] == "stream.ready"
        live = board(client, sveta)
        anna_live = row(live["operators"], "user_id", staff["anna"])
        assert anna_live["connected"] is True and anna_live["available"] is True
        assert live["totals"]["online"] == 1 and live["totals"]["on_break"] == 1


def test_an_operators_open_dialogs_follow_transfers(client: TestClient, staff: Staff) -> None:
    anna = staff_token(client, "anna")
    first, second = new_dialog(client), new_dialog(client)
    for conv in (first, second):
        reply = client.post(
            f"/api/v1/conversations/{conv}/messages",
            json={"client_msg_id": cmid(), "text": "Здравствуйте"},
            headers=bearer(anna),
        )
        assert reply.status_code == 201
    sveta = staff_token(client, "sveta")
    assert row(board(client, sveta)["operators"], "user_id", staff["anna"])["open_dialogs"] == 2
    moved = client.post(
        f"/api/v1/conversations/{second}/transfer",
        json={"to_user_id": staff["igor"]},
        headers=bearer(anna),
    )
    assert moved.status_code == 200
    operators_now = board(client, sveta)["operators"]
    assert row(operators_now, "user_id", staff["anna"])["open_dialogs"] == 1
    assert row(operators_now, "user_id", staff["igor"])["open_dialogs"] == 1
