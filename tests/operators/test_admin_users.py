"""Admins manage staff accounts and teams through the API; everyone else is refused."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from tests.builders import PASSWORD, Staff, bearer, staff_token

NEW_PASSWORD = "long-enough-pw-42"


def new_user(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "login": "pavel",
        "name": "Павел",
        "password": NEW_PASSWORD,
        "role": "operator",
        "team_id": None,
        "capacity": 3,
    }
    body.update(overrides)
    return body


def users_by_login(client: TestClient, token: str, query: str = "") -> dict[str, dict[str, Any]]:
    response = client.get(f"/api/v1/users{query}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {u["login"]: u for u in response.json()["users"]}


def sign_in(client: TestClient, login: str, password: str) -> int:
    return client.post(
        "/api/v1/auth/token", json={"login": login, "password": password}
    ).status_code


def test_admin_creates_a_user_who_can_sign_in(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    team = staff.teams["Кредиты"]
    with capture_logs() as logs:
        response = client.post(
            "/api/v1/users", json=new_user(team_id=team, login="  pavel "), headers=bearer(root)
        )
    assert response.status_code == 201, response.text
    created = response.json()
    assert created == {
        "id": created["id"],
        "login": "pavel",
        "name": "Павел",
        "role": "operator",
        "team_id": team,
        "capacity": 3,
        "skills": {},
        "is_active": True,
    }
    token = client.post(
        "/api/v1/auth/token", json={"login": "pavel", "password": NEW_PASSWORD}
    ).json()["access_token"]
    assert client.get("/api/v1/me", headers=bearer(token)).json()["id"] == created["id"]
    assert users_by_login(client, root)["pavel"]["team_id"] == team
    entry = next(e for e in logs if e["event"] == "admin.user_created")
    assert entry["actor_id"] == staff["root"] and entry["user_id"] == created["id"]
    assert NEW_PASSWORD not in repr(logs)


def test_duplicate_login_is_409_naming_the_field(client: TestClient) -> None:
    root = staff_token(client, "root")
    response = client.post("/api/v1/users", json=new_user(login="anna"), headers=bearer(root))
    assert response.status_code == 409
    assert response.json()["code"] == "login_taken"
    assert response.json()["fields"] == {"field": "login"}


def test_short_password_is_422_naming_the_field(client: TestClient) -> None:
    root = staff_token(client, "root")
    response = client.post(
        "/api/v1/users", json=new_user(password="123456789"), headers=bearer(root)
    )
    assert response.status_code == 422
    assert response.json()["code"] == "weak_password"
    assert response.json()["fields"] == {"field": "password"}
    assert sign_in(client, "pavel", "123456789") == 401  # nothing was created


def test_unknown_team_and_unknown_role_are_refused(client: TestClient) -> None:
    root = staff_token(client, "root")
    team = client.post("/api/v1/users", json=new_user(team_id=9999), headers=bearer(root))
    assert team.status_code == 422
    assert team.json()["code"] == "unknown_team" and team.json()["fields"] == {"field": "team_id"}
    role = client.post("/api/v1/users", json=new_user(role="king"), headers=bearer(root))
    assert role.status_code == 422
    assert [e["field"] for e in role.json()["fields"]["errors"]] == ["role"]
    for bad in ({"capacity": 0}, {"capacity": 51}, {"login": "two words"}, {"name": " "}):
        response = client.post("/api/v1/users", json=new_user(**bad), headers=bearer(root))
        assert response.status_code == 422, bad
        assert [e["field"] for e in response.json()["fields"]["errors"]] == list(bad)
    assert "pavel" not in users_by_login(client, root, "?all=true")


def test_role_and_team_changes_show_in_the_directory(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    url = f"/api/v1/users/{staff['anna']}"
    credits = staff.teams["Кредиты"]
    with capture_logs() as logs:
        moved = client.patch(
            url, json={"role": "supervisor", "team_id": credits}, headers=bearer(root)
        )
    assert moved.status_code == 200, moved.text
    anna = users_by_login(client, root)["anna"]
    assert (anna["role"], anna["team_id"]) == ("supervisor", credits)
    entry = next(e for e in logs if e["event"] == "admin.user_updated")
    assert entry["actor_id"] == staff["root"] and entry["user_id"] == staff["anna"]
    assert entry["changed"] == ["role", "team_id"]
    # Leaving team_id out keeps the team; null takes the user out of it.
    client.patch(url, json={"capacity": 7, "name": "Анна К."}, headers=bearer(root))
    anna = users_by_login(client, root)["anna"]
    assert (anna["team_id"], anna["capacity"], anna["name"]) == (credits, 7, "Анна К.")
    client.patch(url, json={"team_id": None}, headers=bearer(root))
    assert users_by_login(client, root)["anna"]["team_id"] is None
    # A new role applies to the next request of an existing token.
    anna_token = staff_token(client, "anna")
    client.patch(url, json={"role": "admin"}, headers=bearer(root))
    assert client.get("/api/v1/users?all=true", headers=bearer(anna_token)).status_code == 200


def test_bad_changes_are_refused(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    url = f"/api/v1/users/{staff['anna']}"
    for body, field in (
        ({"capacity": 51}, "capacity"),
        ({"name": None}, "name"),
        ({"role": "king"}, "role"),
        ({"login": "anya"}, "login"),  # the login is the account's identity: not editable
    ):
        response = client.patch(url, json=body, headers=bearer(root))
        assert response.status_code == 422, body
        assert [e["field"] for e in response.json()["fields"]["errors"]] == [field]
    team = client.patch(url, json={"team_id": 9999}, headers=bearer(root))
    assert team.status_code == 422 and team.json()["fields"] == {"field": "team_id"}
    short = client.patch(url, json={"password": "short"}, headers=bearer(root))
    assert short.status_code == 422 and short.json()["fields"] == {"field": "password"}
    missing = client.patch("/api/v1/users/9999", json={"capacity": 2}, headers=bearer(root))
    assert missing.status_code == 404 and missing.json()["code"] == "user_not_found"


def test_password_change_replaces_the_old_one(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    with capture_logs() as logs:
        response = client.patch(
            f"/api/v1/users/{staff['igor']}", json={"password": NEW_PASSWORD}, headers=bearer(root)
        )
    assert response.status_code == 200
    assert sign_in(client, "igor", PASSWORD) == 401
    assert sign_in(client, "igor", NEW_PASSWORD) == 200
    assert next(e for e in logs if e["event"] == "admin.user_updated")["changed"] == ["password"]
    assert NEW_PASSWORD not in repr(logs)


def test_disabling_a_user_stops_their_token_and_hides_them(
    client: TestClient, staff: Staff
) -> None:
    root, olga = staff_token(client, "root"), staff_token(client, "olga")
    assert client.get("/api/v1/me", headers=bearer(olga)).status_code == 200
    response = client.patch(
        f"/api/v1/users/{staff['olga']}", json={"is_active": False}, headers=bearer(root)
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    refused = client.get("/api/v1/me", headers=bearer(olga))
    assert refused.status_code == 401 and refused.json()["code"] == "account_disabled"
    assert sign_in(client, "olga", PASSWORD) == 401
    assert "olga" not in users_by_login(client, root)
    assert users_by_login(client, root, "?all=true")["olga"]["is_active"] is False
    # and back
    client.patch(f"/api/v1/users/{staff['olga']}", json={"is_active": True}, headers=bearer(root))
    assert sign_in(client, "olga", PASSWORD) == 200


def test_disabling_ends_an_open_workspace_socket_and_a_move_resyncs_it(
    client: TestClient, staff: Staff
) -> None:
    root, anna, igor = (staff_token(client, n) for n in ("root", "anna", "igor"))
    with client.websocket_connect(f"/api/v1/ws?token={igor}") as ws:
        assert ws.receive_json()["type"] == "stream.ready"
        client.patch(
            f"/api/v1/users/{staff['igor']}",
            json={"team_id": staff.teams["Кредиты"]},
            headers=bearer(root),
        )
        event = ws.receive_json()
        while event["type"] != "stream.error":  # presence events may come first
            event = ws.receive_json()
        assert event["payload"]["code"] == "resync"
    with client.websocket_connect(f"/api/v1/ws?token={anna}") as ws:
        assert ws.receive_json()["type"] == "stream.ready"
        client.patch(
            f"/api/v1/users/{staff['anna']}", json={"is_active": False}, headers=bearer(root)
        )
        event = ws.receive_json()
        while event["type"] != "stream.error":
            event = ws.receive_json()
        assert event["payload"]["code"] == "account_disabled"


def test_an_admin_cannot_lock_themselves_out(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    url = f"/api/v1/users/{staff['root']}"
    for body, field in (({"is_active": False}, "is_active"), ({"role": "supervisor"}, "role")):
        response = client.patch(url, json=body, headers=bearer(root))
        assert response.status_code == 409, body
        assert response.json()["code"] == "self_lockout"
        assert response.json()["fields"] == {"field": field}
    assert client.get("/api/v1/me", headers=bearer(root)).json()["role"] == "admin"
    # Harmless changes of one's own account are fine.
    same = client.patch(url, json={"role": "admin", "capacity": 2}, headers=bearer(root))
    assert same.status_code == 200


def test_only_admins_administer(client: TestClient, staff: Staff) -> None:
    for login in ("anna", "sveta"):
        token = staff_token(client, login)
        calls = [
            client.post("/api/v1/users", json=new_user(), headers=bearer(token)),
            # an invalid body is refused for the role first: no hints for non-admins
            client.post("/api/v1/users", json={"login": ""}, headers=bearer(token)),
            client.patch(
                f"/api/v1/users/{staff['igor']}", json={"capacity": 9}, headers=bearer(token)
            ),
            client.get("/api/v1/users?all=true", headers=bearer(token)),
            client.post("/api/v1/teams", json={"name": "Новая"}, headers=bearer(token)),
            client.patch(
                f"/api/v1/teams/{staff.teams['Кредиты']}",
                json={"name": "Новая"},
                headers=bearer(token),
            ),
        ]
        for response in calls:
            assert response.status_code == 403, (login, response.text)
            assert response.json()["code"] == "forbidden_role"
        # the ordinary directory stays open to everyone
        assert "igor" in users_by_login(client, token)
    assert client.post("/api/v1/users", json=new_user()).status_code == 401


def test_teams_are_created_renamed_and_kept_unique(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    created = client.post("/api/v1/teams", json={"name": " Ипотека "}, headers=bearer(root))
    assert created.status_code == 201, created.text
    team = created.json()
    assert team["name"] == "Ипотека"
    for name in ("Ипотека", "поддержка"):  # the same name in another letter case is taken
        duplicate = client.post("/api/v1/teams", json={"name": name}, headers=bearer(root))
        assert duplicate.status_code == 409
        assert duplicate.json()["code"] == "team_exists"
        assert duplicate.json()["fields"] == {"field": "name"}
    url = f"/api/v1/teams/{team['id']}"
    renamed = client.patch(url, json={"name": "Ипотека и вклады"}, headers=bearer(root))
    assert renamed.status_code == 200 and renamed.json()["name"] == "Ипотека и вклады"
    # renaming to its own name in another case is not a clash with itself
    assert (
        client.patch(url, json={"name": "ипотека и вклады"}, headers=bearer(root)).status_code
        == 200
    )
    clash = client.patch(url, json={"name": "Кредиты"}, headers=bearer(root))
    assert clash.status_code == 409 and clash.json()["code"] == "team_exists"
    empty = client.patch(url, json={"name": "  "}, headers=bearer(root))
    assert empty.status_code == 422
    missing = client.patch("/api/v1/teams/9999", json={"name": "X"}, headers=bearer(root))
    assert missing.status_code == 404 and missing.json()["code"] == "team_not_found"
    names = {t["name"] for t in client.get("/api/v1/teams", headers=bearer(root)).json()["teams"]}
    assert names == {"Поддержка", "Кредиты", "ипотека и вклады"}
    # the new team can take members at once
    user = client.post("/api/v1/users", json=new_user(team_id=team["id"]), headers=bearer(root))
    assert user.status_code == 201 and user.json()["team_id"] == team["id"]
