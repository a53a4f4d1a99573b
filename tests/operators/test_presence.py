"""Presence: connecting brings an operator online, a break is announced to supervisors,
and a workspace not seen for a minute no longer counts as connected."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from okno.db.base import utcnow
from okno.db.session import Database
from okno.operators.models import Presence
from tests import services
from tests.builders import Staff, bearer, staff_token


def presence_of(client: TestClient, token: str, user_id: int) -> dict:
    rows = client.get("/api/v1/presence", headers=bearer(token)).json()["operators"]
    return next(r for r in rows if r["user_id"] == user_id)


def test_connecting_brings_online_and_a_break_is_announced(
    client: TestClient, staff: Staff
) -> None:
    anna, sveta = staff_token(client, "anna"), staff_token(client, "sveta")
    assert presence_of(client, sveta, staff["anna"])["status"] == "offline"
    with client.websocket_connect(f"/api/v1/ws?token={sveta}") as board:
        assert board.receive_json()["type"] == "stream.ready"
        with client.websocket_connect(f"/api/v1/ws?token={anna}") as workspace:
            assert workspace.receive_json()["type"] == "stream.ready"
            online = board.receive_json()
            assert online["type"] == "operator.presence_changed"
            assert online["payload"]["operator"]["status"] == "online"
            now = presence_of(client, sveta, staff["anna"])
            assert now["connected"] and now["available"]
            response = client.put(
                "/api/v1/me/presence", json={"status": "break"}, headers=bearer(anna)
            )
            assert response.status_code == 200 and response.json()["available"] is False
            on_break = board.receive_json()
            assert on_break["payload"]["operator"] == {
                **on_break["payload"]["operator"],
                "id": staff["anna"],
                "status": "break",
            }


def test_same_status_twice_is_not_announced_again(client: TestClient, staff: Staff) -> None:
    anna = staff_token(client, "anna")
    client.put("/api/v1/me/presence", json={"status": "break"}, headers=bearer(anna))
    client.put("/api/v1/me/presence", json={"status": "break"}, headers=bearer(anna))
    sveta = staff_token(client, "sveta")
    events = client.get("/api/v1/events?after_seq=0", headers=bearer(sveta)).json()["events"]
    assert [e["type"] for e in events] == ["operator.presence_changed"]


def test_bad_status_is_422(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    assert (
        client.put(
            "/api/v1/me/presence", json={"status": "sleeping"}, headers=bearer(anna)
        ).status_code
        == 422
    )


def test_operators_see_their_team_only(client: TestClient, staff: Staff) -> None:
    olga = staff_token(client, "olga")
    names = {
        r["name"] for r in client.get("/api/v1/presence", headers=bearer(olga)).json()["operators"]
    }
    assert names == {"Ольга"}


def test_workspace_not_seen_for_a_minute_is_not_connected(
    client: TestClient, staff: Staff, settings
) -> None:
    anna, sveta = staff_token(client, "anna"), staff_token(client, "sveta")
    with client.websocket_connect(f"/api/v1/ws?token={anna}") as workspace:
        workspace.receive_json()
    assert presence_of(client, sveta, staff["anna"])["connected"] is True

    async def age() -> None:
        db = Database(settings)
        async with db.transaction() as session:
            await session.execute(
                update(Presence).values(last_seen_at=utcnow() - timedelta(seconds=90))
            )
        await db.dispose()

    services.run_in_thread(age)
    stale = presence_of(client, sveta, staff["anna"])
    assert (
        stale["status"] == "online" and stale["connected"] is False and stale["available"] is False
    )

    async def beat() -> None:  # what every app process does for its connected users
        from okno.operators import presence

        db = Database(settings)
        async with db.transaction() as session:
            await presence.heartbeat(session, user_ids=[staff["anna"]])
        await db.dispose()

    services.run_in_thread(beat)
    assert presence_of(client, sveta, staff["anna"])["connected"] is True
