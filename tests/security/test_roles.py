"""What the new roles do in practice: a senior operator takes over colleagues' dialogs and
keeps the team's replies, a security officer administers accounts but reads no dialog and
cannot make admins, an auditor reads and never writes; and every list of roles (API schema,
CLI, admin page) is the matrix's."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import click
from fastapi.testclient import TestClient

from okno.cli import users_create
from okno.operators import service
from okno.operators.schemas import Role
from okno.security.permissions import INTERACTIVE_ROLES, ROLE_PERMISSIONS, roles_with
from okno.settings import Settings
from tests.builders import (
    PASSWORD,
    Staff,
    bearer,
    cmid,
    customer_says,
    in_db,
    staff_token,
    widget_session,
)

ADMIN_JS = Path(service.__file__).resolve().parents[1] / "web" / "static" / "js" / "admin.js"


def make_user(settings: Settings, login: str, role: str, team: str | None = None) -> None:
    async def run(session: Any) -> None:
        await service.create_user(session, login=login, password=PASSWORD, role=role, team=team)

    in_db(settings, run)


def waiting_dialog(client: TestClient) -> int:
    visitor = widget_session(client)
    said = customer_says(client, visitor["session_token"], "Помогите с картой")
    return int(said["conversation_id"])


def test_a_senior_operator_takes_a_dialog_a_colleague_is_serving(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    make_user(settings, "lead", "senior_operator", team="Поддержка")
    dialog = waiting_dialog(client)
    anna, igor, lead = (staff_token(client, who) for who in ("anna", "igor", "lead"))
    taken = client.post(f"/api/v1/conversations/{dialog}/assign", json={}, headers=bearer(anna))
    assert taken.status_code == 200, taken.text

    # a plain operator cannot take it from her ...
    refused = client.post(f"/api/v1/conversations/{dialog}/assign", json={}, headers=bearer(igor))
    assert refused.status_code == 409 and refused.json()["code"] == "already_assigned"
    # ... a senior operator can, and can hand it on to a colleague
    took = client.post(f"/api/v1/conversations/{dialog}/assign", json={}, headers=bearer(lead))
    assert took.status_code == 200 and took.json()["assignee"]["id"] != staff["anna"]
    given = client.post(
        f"/api/v1/conversations/{dialog}/assign",
        json={"user_id": staff["igor"]},
        headers=bearer(lead),
    )
    assert given.status_code == 200 and given.json()["assignee"]["id"] == staff["igor"]
    not_for_operators = client.post(
        f"/api/v1/conversations/{dialog}/assign",
        json={"user_id": staff["anna"]},
        headers=bearer(igor),
    )
    assert not_for_operators.status_code == 403
    assert not_for_operators.json()["fields"]["permission"] == "conversations.reassign"


def test_routing_gives_dialogs_to_senior_operators_but_never_to_supervisors_or_admins() -> None:
    assert set(roles_with("conversations.receive")) == {"operator", "senior_operator"}


def test_a_senior_operator_keeps_the_teams_replies_an_operator_only_personal_ones(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    make_user(settings, "lead", "senior_operator", team="Поддержка")
    reply = {"scope": "team", "shortcut": "hi", "title": "Привет", "body": "Здравствуйте!"}
    lead, anna, olga = (staff_token(client, who) for who in ("lead", "anna", "olga"))
    refused = client.post("/api/v1/saved-replies", json=reply, headers=bearer(anna))
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    made = client.post("/api/v1/saved-replies", json=reply, headers=bearer(lead))
    assert made.status_code == 201, made.text
    other_team = {**reply, "shortcut": "hi2", "team_id": staff.teams["Кредиты"]}
    assert (
        client.post("/api/v1/saved-replies", json=other_team, headers=bearer(lead)).status_code
        == 403
    )
    shared = {**reply, "scope": "shared", "shortcut": "all"}
    assert (
        client.post("/api/v1/saved-replies", json=shared, headers=bearer(lead)).status_code == 403
    )
    # colleagues of the team use it; another team does not see it
    found = client.get("/api/v1/saved-replies?q=hi", headers=bearer(anna)).json()
    assert [r["shortcut"] for r in found["saved_replies"]] == ["hi"]
    assert (
        client.get("/api/v1/saved-replies?q=hi", headers=bearer(olga)).json()["saved_replies"] == []
    )


def test_a_security_officer_manages_accounts_but_reads_no_dialog_and_makes_no_admin(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    make_user(settings, "sec", "security_officer")
    dialog = waiting_dialog(client)
    officer = staff_token(client, "sec")
    new = {"login": "ivan", "name": "Иван", "password": "long-enough-1", "role": "operator"}
    made = client.post("/api/v1/users", json=new, headers=bearer(officer))
    assert made.status_code == 201, made.text
    promoted = client.patch(
        f"/api/v1/users/{made.json()['id']}", json={"role": "auditor"}, headers=bearer(officer)
    )
    assert promoted.status_code == 200 and promoted.json()["role"] == "auditor"

    for forbidden in (
        client.post(
            "/api/v1/users", json={**new, "login": "boss", "role": "admin"}, headers=bearer(officer)
        ),
        client.patch(
            f"/api/v1/users/{made.json()['id']}", json={"role": "admin"}, headers=bearer(officer)
        ),
        client.patch(
            f"/api/v1/users/{staff['root']}", json={"is_active": False}, headers=bearer(officer)
        ),
    ):
        assert forbidden.status_code == 403, forbidden.text
        assert forbidden.json()["fields"]["permission"] == "users.manage_admins"
    own = client.patch(
        f"/api/v1/users/{_me(client, officer)}", json={"role": "admin"}, headers=bearer(officer)
    )
    assert own.status_code == 409 and own.json()["code"] == "self_lockout"

    for path in (
        "/api/v1/conversations",
        f"/api/v1/conversations/{dialog}",
        f"/api/v1/conversations/{dialog}/messages",
        "/api/v1/customers?q=Помогите",
        "/api/v1/events",
    ):
        refused = client.get(path, headers=bearer(officer))
        assert refused.status_code == 403, (path, refused.text)


def _me(client: TestClient, token: str) -> int:
    return int(client.get("/api/v1/me", headers=bearer(token)).json()["id"])


def test_an_auditor_reads_overviews_and_never_writes(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    make_user(settings, "aud", "auditor")
    waiting_dialog(client)
    auditor = staff_token(client, "aud")
    everyone = client.get("/api/v1/users?all=true", headers=bearer(auditor))
    assert everyone.status_code == 200 and len(everyone.json()["users"]) == 6
    board = client.get("/api/v1/supervisor/board", headers=bearer(auditor))
    assert board.status_code == 200, board.text
    assert board.json()["totals"]["waiting"] == 1  # counts of the whole centre, no content
    for path in ("/api/v1/channels", "/api/v1/routing/queues", "/api/v1/kb/articles"):
        assert client.get(path, headers=bearer(auditor)).status_code == 200, path
    writes = [
        client.post("/api/v1/teams", json={"name": "Новая"}, headers=bearer(auditor)),
        client.patch(
            f"/api/v1/users/{staff['anna']}", json={"capacity": 2}, headers=bearer(auditor)
        ),
        client.post("/api/v1/routing/queues", json={"name": "q"}, headers=bearer(auditor)),
        client.put("/api/v1/me/presence", json={"status": "online"}, headers=bearer(auditor)),
        client.post(
            "/api/v1/saved-replies",
            json={"scope": "personal", "shortcut": "a", "title": "a", "body": "a"},
            headers=bearer(auditor),
        ),
    ]
    assert [w.status_code for w in writes] == [403] * len(writes)
    conversations = client.get("/api/v1/conversations", headers=bearer(auditor))
    assert conversations.status_code == 403


def test_a_team_supervisor_sees_only_their_team(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    make_user(settings, "boss", "supervisor", team="Кредиты")
    dialog = waiting_dialog(client)
    anna = staff_token(client, "anna")
    client.post(f"/api/v1/conversations/{dialog}/assign", json={}, headers=bearer(anna))
    boss, sveta = staff_token(client, "boss"), staff_token(client, "sveta")
    assert client.get(f"/api/v1/conversations/{dialog}", headers=bearer(boss)).status_code == 403
    assert client.get(f"/api/v1/conversations/{dialog}", headers=bearer(sveta)).status_code == 200
    note = client.post(
        f"/api/v1/conversations/{dialog}/messages",
        json={"client_msg_id": cmid(), "text": "Проверь лимит", "internal": True},
        headers=bearer(sveta),
    )
    assert note.status_code == 201, note.text


def test_every_list_of_roles_is_the_matrix() -> None:
    assert set(typing.get_args(Role)) == set(INTERACTIVE_ROLES)
    role_option = next(p for p in users_create.params if p.name == "role")
    assert isinstance(role_option.type, click.Choice)
    assert set(role_option.type.choices) == set(INTERACTIVE_ROLES)
    js = re.search(r"const ROLES = \[(.*?)\];", ADMIN_JS.read_text(encoding="utf-8"))
    assert js is not None
    assert set(re.findall(r'"([a-z_]+)"', js.group(1))) == set(INTERACTIVE_ROLES)
    assert set(ROLE_PERMISSIONS) == {*INTERACTIVE_ROLES, "integration"}
