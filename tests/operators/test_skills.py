"""Operators' skills (routing matches queues' skills against them): set by admins through
the API, shown in the directory, cleared with null or {}, refused with a reason next to the
field when a name or a level is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from structlog.testing import capture_logs

from okno.jobs.models import Job
from okno.operators import skills
from okno.routing.triggers import DISPATCH
from okno.settings import Settings
from tests.builders import Staff, bearer, in_db, staff_token

NEW_PASSWORD = "long-enough-pw-42"


def new_user(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "login": "pavel",
        "name": "Павел",
        "password": NEW_PASSWORD,
        "role": "operator",
    }
    body.update(overrides)
    return body


def skills_of(client: TestClient, token: str, login: str) -> dict[str, int]:
    users = client.get("/api/v1/users?all=true", headers=bearer(token)).json()["users"]
    found: dict[str, int] = next(u for u in users if u["login"] == login)["skills"]
    return found


def test_skills_are_created_shown_changed_and_cleared(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    created = client.post(
        "/api/v1/users",
        json=new_user(skills={"cards": 3, "кредиты": 1, "business-accounts_2": 5}),
        headers=bearer(root),
    )
    assert created.status_code == 201, created.text
    assert created.json()["skills"] == {"cards": 3, "кредиты": 1, "business-accounts_2": 5}
    assert skills_of(client, root, "pavel") == created.json()["skills"]
    # Without skills: none. Everybody else's directory entry carries them too.
    plain = client.post("/api/v1/users", json=new_user(login="petr"), headers=bearer(root))
    assert plain.status_code == 201 and plain.json()["skills"] == {}
    assert skills_of(client, root, "anna") == {}

    url = f"/api/v1/users/{created.json()['id']}"
    with capture_logs() as logs:
        changed = client.patch(url, json={"skills": {"fraud": 2}}, headers=bearer(root))
    assert changed.status_code == 200 and changed.json()["skills"] == {"fraud": 2}
    entry = next(e for e in logs if e["event"] == "admin.user_updated")
    assert entry["changed"] == ["skills"]
    # Leaving skills out keeps them; null and {} clear them.
    client.patch(url, json={"capacity": 4}, headers=bearer(root))
    assert skills_of(client, root, "pavel") == {"fraud": 2}
    cleared = client.patch(url, json={"skills": None}, headers=bearer(root))
    assert cleared.status_code == 200 and cleared.json()["skills"] == {}
    client.patch(url, json={"skills": {"fraud": 2}}, headers=bearer(root))
    emptied = client.patch(url, json={"skills": {}}, headers=bearer(root))
    assert emptied.status_code == 200 and emptied.json()["skills"] == {}
    # The operator sees their own skills.
    anna_url = f"/api/v1/users/{staff['anna']}"
    client.patch(anna_url, json={"skills": {"cards": 4}}, headers=bearer(root))
    me = client.get("/api/v1/me", headers=bearer(staff_token(client, "anna")))
    assert me.json()["skills"] == {"cards": 4}


@pytest.mark.parametrize(
    "bad",
    [
        {"cards": 0},
        {"cards": 6},
        {"cards": "3"},
        {"cards": 2.5},
        {"cards": True},
        {"cards": None},
        {"": 1},
        {"card s": 1},
        {"cards!": 1},
        {"x" * 51: 1},
        ["cards"],
        "cards:3",
        {f"s{i}": 1 for i in range(51)},
    ],
)
def test_bad_skills_are_422_on_the_skills_field(
    client: TestClient, staff: Staff, bad: object
) -> None:
    root = staff_token(client, "root")
    for method, url, body in (
        ("POST", "/api/v1/users", new_user(skills=bad)),
        ("PATCH", f"/api/v1/users/{staff['anna']}", {"skills": bad}),
    ):
        response = client.request(method, url, json=body, headers=bearer(root))
        assert response.status_code == 422, (method, bad, response.text)
        errors = response.json()["fields"]["errors"]
        assert [(e["field"], e["type"]) for e in errors] == [("skills", "invalid_skills")], errors
        assert "skill" in errors[0]["problem"]
    # Nothing was written.
    assert "pavel" not in {
        u["login"]
        for u in client.get("/api/v1/users?all=true", headers=bearer(root)).json()["users"]
    }
    assert skills_of(client, root, "anna") == {}


def test_only_admins_set_skills(client: TestClient, staff: Staff) -> None:
    for login in ("sveta", "anna"):
        response = client.patch(
            f"/api/v1/users/{staff['anna']}",
            json={"skills": {"cards": 5}},
            headers=bearer(staff_token(client, login)),
        )
        assert response.status_code == 403 and response.json()["code"] == "forbidden_role"


def test_changing_an_operators_skills_asks_routing_for_a_pass(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    """New skills may make waiting dialogs fit this operator: a dispatch job is queued."""
    root = staff_token(client, "root")

    async def dispatch_jobs(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).where(Job.kind == DISPATCH)) or 0)

    before = in_db(settings, dispatch_jobs)
    client.patch(
        f"/api/v1/users/{staff['anna']}", json={"skills": {"cards": 2}}, headers=bearer(root)
    )
    assert in_db(settings, dispatch_jobs) > before


# ------------------------------------------------------------------ the text form


def test_text_form_of_skills() -> None:
    assert skills.parse("cards:3, credits") == {"cards": 3, "credits": 1}
    assert skills.parse("  карты : 2 ,, ") == {"карты": 2}
    assert skills.parse("") == {}
    assert skills.describe({"cards": 3, "credits": 1}) == "cards:3, credits:1"
    for bad in ("cards:0", "cards:6", "cards:x", "cards:", "card s", "cards:1,cards:2", "a:1:2"):
        with pytest.raises(skills.SkillsError):
            skills.parse(bad)
