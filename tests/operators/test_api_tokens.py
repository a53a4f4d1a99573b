"""API tokens end to end: a security officer creates one (the secret shown once), an
integration calls the API with it and holds only its scopes, revoking or expiry refuses it,
and the account behind it can never sign in with a password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from okno.db.base import utcnow
from okno.operators.models import ApiToken, User
from okno.settings import Settings
from tests.builders import (
    PASSWORD,
    Staff,
    bearer,
    customer_says,
    in_db,
    staff_token,
    widget_session,
)

REPO = Path(__file__).resolve().parents[2]


def make_user(settings: Settings, login: str, role: str) -> None:
    from okno.operators import service

    async def run(session: Any) -> None:
        await service.create_user(session, login=login, password=PASSWORD, role=role)

    in_db(settings, run)


def create_token(client: TestClient, token: str, **body: Any) -> Any:
    return client.post("/api/v1/tokens", json=body, headers=bearer(token))


def test_the_secret_is_shown_once_and_only_its_hash_is_kept(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    make_user(settings, "sec", "security_officer")
    officer = staff_token(client, "sec")
    created = create_token(client, officer, name="CRM", scopes=["customers.read"])
    assert created.status_code == 201, created.text
    out = created.json()
    secret = out["token"]
    assert secret.startswith("okno_") and len(secret) > 40
    assert out["prefix"] == secret[:9] and out["status"] == "active"
    assert out["scopes"] == ["customers.read"] and out["expires_at"] is None

    listed = client.get("/api/v1/tokens", headers=bearer(officer)).json()["tokens"]
    assert [t["name"] for t in listed] == ["CRM"]
    assert secret not in json.dumps(listed)

    async def stored(session: Any) -> list[str]:
        return [row.token_hash for row in (await session.scalars(select(ApiToken))).all()]

    hashes = in_db(settings, stored)
    assert secret not in hashes and len(hashes[0]) == 64


def test_a_token_holds_only_its_scopes(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    visitor = widget_session(client)
    said = customer_says(client, visitor["session_token"], "Здравствуйте, карта не работает")
    secret = create_token(
        client, root, name="CRM", scopes=["conversations.read_team", "conversations.read_all"]
    ).json()["token"]

    listed = client.get("/api/v1/conversations?status=all", headers=bearer(secret))
    assert listed.status_code == 200, listed.text
    assert [c["id"] for c in listed.json()["conversations"]] == [said["conversation_id"]]
    me = client.get("/api/v1/me", headers=bearer(secret))
    assert me.status_code == 403 and me.json()["fields"]["permission"] == "account.self"
    refused = client.get("/api/v1/customers?q=ab", headers=bearer(secret))
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden_role"
    assert refused.json()["fields"]["permission"] == "customers.read"
    # a token is never a colleague: no replying, even on a dialog it can read
    reply = client.post(
        f"/api/v1/conversations/{said['conversation_id']}/messages",
        json={"client_msg_id": "t1", "text": "hi"},
        headers=bearer(secret),
    )
    assert reply.status_code == 403


def test_without_read_all_a_token_sees_only_dialogs_not_given_to_a_team(
    client: TestClient, staff: Staff
) -> None:
    root = staff_token(client, "root")
    visitor = widget_session(client)
    said = customer_says(client, visitor["session_token"], "Где мой перевод?")
    team_only = create_token(client, root, name="T", scopes=["conversations.read_team"])
    secret = team_only.json()["token"]
    dialog = f"/api/v1/conversations/{said['conversation_id']}"
    assert client.get(dialog, headers=bearer(secret)).status_code == 200  # no team yet
    anna = staff_token(client, "anna")
    assert client.post(f"{dialog}/assign", json={}, headers=bearer(anna)).status_code == 200
    hidden = client.get(dialog, headers=bearer(secret))
    assert hidden.status_code == 403 and hidden.json()["code"] == "forbidden_team"
    listed = client.get("/api/v1/conversations?status=all", headers=bearer(secret))
    assert listed.json()["conversations"] == []


def test_revoked_and_expired_tokens_are_refused(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    root = staff_token(client, "root")
    first = create_token(client, root, name="A", scopes=["users.read"]).json()
    second = create_token(client, root, name="B", scopes=["users.read"], expires_days=1).json()
    assert client.get("/api/v1/teams", headers=bearer(first["token"])).status_code == 200

    revoked = client.delete(f"/api/v1/tokens/{first['id']}", headers=bearer(root))
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = client.delete(f"/api/v1/tokens/{first['id']}", headers=bearer(root))
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]  # a no-op
    refused = client.get("/api/v1/teams", headers=bearer(first["token"]))
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"

    async def expire(session: Any) -> None:
        await session.execute(
            update(ApiToken)
            .where(ApiToken.id == second["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )

    in_db(settings, expire)
    expired = client.get("/api/v1/teams", headers=bearer(second["token"]))
    assert expired.status_code == 401 and expired.json()["code"] == "token_expired"
    forged = client.get("/api/v1/teams", headers=bearer("okno_" + "x" * 43))
    assert forged.status_code == 401 and forged.json()["code"] == "token_invalid"
    statuses = {
        t["name"]: t["status"]
        for t in client.get("/api/v1/tokens", headers=bearer(root)).json()["tokens"]
    }
    assert statuses == {"A": "revoked", "B": "expired"}


def test_last_used_is_recorded(client: TestClient, settings: Settings, staff: Staff) -> None:
    root = staff_token(client, "root")
    made = create_token(client, root, name="BI", scopes=["reports.read"]).json()
    assert made["last_used_at"] is None
    assert client.get("/api/v1/supervisor/board", headers=bearer(made["token"])).status_code == 200
    listed = client.get("/api/v1/tokens", headers=bearer(root)).json()["tokens"]
    assert listed[0]["last_used_at"] is not None


def test_bad_token_requests_get_a_clear_4xx(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    bad_scope = create_token(client, root, name="X", scopes=["users.manage"])
    assert bad_scope.status_code == 422 and bad_scope.json()["code"] == "invalid_scope"
    assert bad_scope.json()["fields"]["scope"] == "users.manage"
    assert create_token(client, root, name="X", scopes=[]).status_code == 422
    assert (
        create_token(client, root, name="X", scopes=["bot.ask"], expires_days=0).status_code == 422
    )
    assert create_token(client, root, name="X", scopes=["bot.ask"]).status_code == 201
    taken = create_token(client, root, name="X", scopes=["bot.ask"])
    assert taken.status_code == 409 and taken.json()["code"] == "token_name_taken"
    missing = client.delete("/api/v1/tokens/4242", headers=bearer(root))
    assert missing.status_code == 404 and missing.json()["code"] == "token_not_found"


def test_auditors_list_tokens_but_cannot_make_them(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    make_user(settings, "aud", "auditor")
    auditor = staff_token(client, "aud")
    assert client.get("/api/v1/tokens", headers=bearer(auditor)).status_code == 200
    refused = create_token(client, auditor, name="mine", scopes=["bot.ask"])
    assert refused.status_code == 403 and refused.json()["fields"]["permission"] == "tokens.manage"
    operator = staff_token(client, "anna")
    assert client.get("/api/v1/tokens", headers=bearer(operator)).status_code == 403


def test_a_tokens_account_never_signs_in_and_is_no_transfer_target(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    root = staff_token(client, "root")
    create_token(client, root, name="CRM", scopes=["bot.ask"])

    async def login_of(session: Any) -> str:
        user = await session.scalar(select(User).where(User.role == "integration"))
        return str(user.login)

    login = in_db(settings, login_of)
    assert login == "api:CRM"
    for password in ("", "!api-token", PASSWORD):
        refused = client.post("/api/v1/auth/token", json={"login": login, "password": password})
        assert refused.status_code in (401, 422)
    directory = client.get("/api/v1/users", headers=bearer(root)).json()["users"]
    assert login not in [u["login"] for u in directory]
    everyone = client.get("/api/v1/users?all=true", headers=bearer(root)).json()["users"]
    assert login in [u["login"] for u in everyone]
    made = client.post(
        "/api/v1/users",
        json={"login": "bot2", "name": "Bot", "password": "long-enough-1", "role": "integration"},
        headers=bearer(root),
    )
    assert made.status_code == 422
    assert [e["field"] for e in made.json()["fields"]["errors"]] == ["role"]


def test_the_cli_creates_lists_and_revokes_tokens(tmp_path: Path) -> None:
    env = {**os.environ, "OKNO_DATA_DIR": str(tmp_path), "OKNO_SECRET_KEY": "k" * 40}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "okno.cli", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )

    made = cli(
        "tokens",
        "create",
        "--name",
        "CRM",
        "--scope",
        "customers.read,bot.ask",
        "--expires-days",
        "30",
        "--json",
    )
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    assert out["token"].startswith("okno_") and out["scopes"] == ["bot.ask", "customers.read"]
    assert out["expires_at"] is not None
    bad = cli("tokens", "create", "--name", "X", "--scope", "users.manage")
    assert bad.returncode != 0 and "users.manage" in bad.stderr
    listed = json.loads(cli("tokens", "list", "--json").stdout)["tokens"]
    assert [t["name"] for t in listed] == ["CRM"] and "token" not in listed[0]
    revoked = cli("tokens", "revoke", str(out["id"]), "--json")
    assert json.loads(revoked.stdout)["status"] == "revoked"
    missing = cli("tokens", "revoke", "999")
    assert missing.returncode != 0 and "does not exist" in missing.stderr
