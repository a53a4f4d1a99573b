"""Sign-in security through the API: password policy, lockout that tells outsiders
nothing, the TOTP second factor, revocation of tokens, sessions and sockets, the admin's
password reset, IP allow-lists for staff and for API tokens, and rate limits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from okno.app import create_app
from okno.db.base import utcnow
from okno.db.session import Database
from okno.errors import BadRequest
from okno.operators import api_tokens, presence, revocation
from okno.operators import service as operators
from okno.operators.auth_models import SignInState
from okno.security import audit, password_policy, sessions, tokens
from okno.settings import Settings
from tests import services
from tests.builders import PASSWORD, WIDGET_KEY, Staff, bearer, in_db, staff_token
from tests.conftest import make_settings

NEW_PASSWORD = "Rasp-berry-Field-42"


class FromPeer:
    """The app as reached from the address in the test's ``X-Test-Peer`` header: what the
    ASGI server reports as the client (after applying OKNO_TRUSTED_PROXIES)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            for name, value in scope.get("headers", []):
                if name == b"x-test-peer":
                    scope = {**scope, "client": (value.decode(), 40000)}
        await self.app(scope, receive, send)


def peer(ip: str, **headers: str) -> dict[str, str]:
    return {"X-Test-Peer": ip, **headers}


def sign_in(
    client: TestClient, login: str, password: str = PASSWORD, ip: str = "", **extra: Any
) -> Any:
    return client.post(
        "/api/v1/auth/token",
        json={"login": login, "password": password, **extra},
        headers=peer(ip) if ip else {},
    )


def audit_actions(settings: Settings, login: str) -> list[tuple[str, str]]:
    async def run(session: Any) -> list[tuple[str, str]]:
        page = await audit.search(session, actor=login, limit=200)
        return [(e.action, e.outcome) for e in reversed(page.entries)]

    result: list[tuple[str, str]] = in_db(settings, run)
    return result


@pytest.fixture
def tuned(tmp_path: Path, database_url: str, staff: Staff) -> Iterator[tuple[TestClient, Settings]]:
    """A client on settings with small limits: 3 failures lock for 15 minutes."""
    settings = make_settings(tmp_path, database_url, lockout_attempts=3, lockout_minutes=15)
    with TestClient(create_app(settings)) as client:
        yield client, settings


# --- password policy ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short-1", "at least 10"),
        ("onlyletterslong", "kinds of characters"),
        ("Qwerty12345", "too common"),
        ("Password2026!", "too common"),
        ("pavel-secure-77", "login"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(
    client: TestClient, staff: Staff, password: str, why: str
) -> None:
    root = staff_token(client, "root")
    body = {"login": "pavel", "name": "Павел", "password": password, "role": "operator"}
    response = client.post("/api/v1/users", json=body, headers=bearer(root))
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "weak_password"
    assert why in response.json()["detail"]
    assert response.json()["fields"]["field"] == "password"


def test_the_cli_path_uses_the_same_policy(settings: Settings) -> None:
    async def run(session: Any) -> str:
        try:
            await operators.create_user(
                session, login="boris", password="boris12345", role="operator"
            )
        except BadRequest as exc:
            return exc.message
        return "created"

    assert "login" in in_db(settings, run)
    assert password_policy.problem("12345678", min_length=8) is not None
    assert password_policy.problem("Tundra-Lantern-9", login="anna") is None


# --- lockout -----------------------------------------------------------------------------


def test_lockout_after_repeated_failures_looks_like_a_wrong_password(
    tuned: tuple[TestClient, Settings], staff: Staff
) -> None:
    client, settings = tuned
    for _ in range(3):
        assert sign_in(client, "anna", "wrong-password-1").status_code == 401
    locked = sign_in(client, "anna")  # the right password, but locked
    unknown = sign_in(client, "nobody-here", "wrong-password-1")
    assert locked.status_code == unknown.status_code == 401
    assert locked.json() == unknown.json()  # an outsider learns nothing about the login
    assert locked.json()["code"] == "bad_credentials"

    root = staff_token(client, "root")
    state = client.get(f"/api/v1/users/{staff['anna']}/sign-in", headers=bearer(root)).json()
    assert state["locked"] and state["failed_attempts"] == 3 and state["locked_until"]
    actions = audit_actions(settings, "anna")
    assert ("auth.locked", "locked") in actions
    assert actions.count(("auth.sign_in", "failure")) == 3
    assert ("auth.sign_in", "locked") in actions

    unlocked = client.post(f"/api/v1/users/{staff['anna']}/unlock", headers=bearer(root))
    assert unlocked.status_code == 200 and not unlocked.json()["locked"]
    assert sign_in(client, "anna").status_code == 200
    assert ("auth.sign_in", "success") in audit_actions(settings, "anna")


def test_a_timed_lock_runs_out(tuned: tuple[TestClient, Settings], staff: Staff) -> None:
    client, settings = tuned
    for _ in range(3):
        sign_in(client, "igor", "wrong-password-1")
    assert sign_in(client, "igor").status_code == 401

    async def expire(session: Any) -> None:
        row = await session.get(SignInState, staff["igor"])
        row.locked_until = utcnow() - timedelta(seconds=1)

    in_db(settings, expire)
    assert sign_in(client, "igor").status_code == 200


def test_without_a_lock_period_only_an_admin_unlocks(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url, lockout_attempts=2, lockout_minutes=0)
    with TestClient(create_app(settings)) as client:
        for _ in range(2):
            sign_in(client, "olga", "wrong-password-1")
        root = staff_token(client, "root")
        state = client.get(f"/api/v1/users/{staff['olga']}/sign-in", headers=bearer(root))
        assert state.json()["locked"] and state.json()["locked_until"] is None
        assert sign_in(client, "olga").status_code == 401


# --- rate limits -------------------------------------------------------------------------


def test_sign_in_attempts_per_login_are_limited_with_retry_after(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url, signin_per_login_per_minute=3)
    with TestClient(create_app(settings)) as client:
        codes = [sign_in(client, "ghost", "wrong-password-1").status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        limited = sign_in(client, "ghost", "wrong-password-1")
        assert limited.status_code == 429
        assert limited.json()["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 20
        assert sign_in(client, "anna").status_code == 200  # another login is not held up


def test_sign_in_attempts_per_address_are_limited(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url, signin_per_ip_per_minute=2)
    with TestClient(FromPeer(create_app(settings))) as client:
        assert sign_in(client, "anna", ip="10.9.9.9").status_code == 200
        assert sign_in(client, "igor", ip="10.9.9.9").status_code == 200
        assert sign_in(client, "olga", ip="10.9.9.9").status_code == 429
        assert sign_in(client, "olga", ip="10.9.9.10").status_code == 200


def test_widget_sessions_and_messages_are_rate_limited(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(
        tmp_path, database_url, widget_sessions_per_ip_per_minute=2, widget_messages_per_minute=3
    )
    with TestClient(create_app(settings)) as client:
        origin = {"Origin": "https://bank.example"}
        opened = [
            client.post("/api/v1/widget/sessions", json={"widget_key": WIDGET_KEY}, headers=origin)
            for _ in range(3)
        ]
        assert [r.status_code for r in opened] == [200, 200, 429]
        assert opened[2].json()["code"] == "rate_limited"
        assert opened[2].headers["retry-after"]
        # the widget on the bank's page can read the refusal (CORS applies to it too)
        assert opened[2].headers.get("access-control-allow-origin") == "*"
        token = opened[0].json()["session_token"]
        sent = [
            client.post(
                "/api/v1/widget/messages",
                json={"client_msg_id": f"m{i}", "text": f"вопрос {i}"},
                headers=bearer(token),
            ).status_code
            for i in range(4)
        ]
        assert sent[:3] == [201, 201, 201] or sent[:3] == [200, 200, 200]
        assert sent[3] == 429
        # another visitor's session has its own bucket
        other = opened[1].json()["session_token"]
        again = client.post(
            "/api/v1/widget/messages",
            json={"client_msg_id": "x1", "text": "привет"},
            headers=bearer(other),
        )
        assert again.status_code in (200, 201)


# --- TOTP ----------------------------------------------------------------------------------


def enrol(client: TestClient, login: str) -> pyotp.TOTP:
    setup = client.post("/api/v1/auth/totp/setup", json={"login": login, "password": PASSWORD})
    assert setup.status_code == 200, setup.text
    body = setup.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert body["qr_svg"].lstrip().startswith("<svg")
    totp = pyotp.TOTP(body["secret"])
    confirmed = client.post(
        "/api/v1/auth/totp/confirm",
        json={"login": login, "password": PASSWORD, "otp": totp.now()},
    )
    assert confirmed.status_code == 204, confirmed.text
    return totp


def next_code(totp: pyotp.TOTP) -> str:
    """The code of the next 30-second step (the current one was used by the set-up)."""
    return totp.at(time.time() + 30)


def test_totp_enrolment_then_sign_in_needs_a_fresh_code(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    totp = enrol(client, "anna")
    again = client.post("/api/v1/auth/totp/setup", json={"login": "anna", "password": PASSWORD})
    assert again.status_code == 409 and again.json()["code"] == "totp_already_enabled"

    assert sign_in(client, "anna").json()["code"] == "otp_required"
    wrong = sign_in(client, "anna", otp="000000")
    assert wrong.status_code == 401 and wrong.json()["code"] == "otp_invalid"
    code = next_code(totp)
    ok = sign_in(client, "anna", otp=code)
    assert ok.status_code == 200, ok.text
    assert client.get("/api/v1/me", headers=bearer(ok.json()["access_token"])).status_code == 200
    replay = sign_in(client, "anna", otp=code)  # a code is good only once
    assert replay.status_code == 401 and replay.json()["code"] == "otp_invalid"
    assert ("auth.totp_enrolled", "success") in audit_actions(settings, "anna")


def test_a_role_can_be_made_to_use_a_second_factor(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    put = client.put(
        "/api/v1/security/two-factor-roles", json={"roles": ["operator"]}, headers=bearer(root)
    )
    assert put.status_code == 200 and put.json()["roles"] == ["operator"]
    bad = client.put(
        "/api/v1/security/two-factor-roles", json={"roles": ["king"]}, headers=bearer(root)
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_role"
    refused = sign_in(client, "igor")
    assert refused.status_code == 403 and refused.json()["code"] == "totp_enrolment_required"
    assert sign_in(client, "sveta").status_code == 200  # supervisors are not asked
    totp = enrol(client, "igor")
    assert sign_in(client, "igor", otp=next_code(totp)).status_code == 200

    # a lost phone: the admin removes the factor, the user must set it up again
    removed = client.delete(f"/api/v1/users/{staff['igor']}/totp", headers=bearer(root))
    assert removed.status_code == 200 and not removed.json()["totp_enabled"]
    assert sign_in(client, "igor").json()["code"] == "totp_enrolment_required"


# --- revocation ----------------------------------------------------------------------------


def test_changing_the_password_ends_every_token_and_socket(client: TestClient, staff: Staff) -> None:
    old = staff_token(client, "anna")
    with client.websocket_connect(f"/api/v1/ws?token={old}") as ws:
        assert ws.receive_json()["type"] == "stream.ready"
        changed = client.post(
            "/api/v1/auth/password",
            json={"login": "anna", "password": PASSWORD, "new_password": NEW_PASSWORD},
        )
        assert changed.status_code == 204, changed.text
        event = ws.receive_json()
        while event["type"] != "stream.error":
            event = ws.receive_json()
        assert event["payload"]["code"] == "token_revoked"
    refused = client.get("/api/v1/me", headers=bearer(old))
    assert refused.status_code == 401 and refused.json()["code"] == "token_revoked"
    assert sign_in(client, "anna").status_code == 401
    assert sign_in(client, "anna", NEW_PASSWORD).status_code == 200
    weak = client.post(
        "/api/v1/auth/password",
        json={"login": "anna", "password": NEW_PASSWORD, "new_password": "anna-2026-x"},
    )
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"


def test_an_admin_signs_a_user_out_everywhere_including_browser_sessions(
    client: TestClient, staff: Staff
) -> None:
    root = staff_token(client, "root")
    token = staff_token(client, "igor")
    browser = client.post("/api/v1/auth/session", json={"login": "igor", "password": PASSWORD})
    assert browser.status_code == 200
    assert client.get("/api/v1/me").status_code == 200  # the cookie works
    cookie = client.cookies.get(sessions.SESSION_COOKIE)
    client.cookies.clear()
    out = client.post(f"/api/v1/users/{staff['igor']}/sign-out-everywhere", headers=bearer(root))
    assert out.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(token)).json()["code"] == "token_revoked"
    assert cookie
    client.cookies.set(sessions.SESSION_COOKIE, cookie)
    assert client.get("/api/v1/me").json()["code"] == "token_revoked"
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 303 and "/login" in page.headers["location"]
    client.cookies.clear()
    assert client.get("/api/v1/me", headers=bearer(root)).status_code == 200  # others unaffected


def test_signing_yourself_out_everywhere(client: TestClient, staff: Staff) -> None:
    first, second = staff_token(client, "olga"), staff_token(client, "olga")
    assert client.post("/api/v1/me/sign-out-everywhere", headers=bearer(first)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(second)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(staff_token(client, "olga"))).status_code == 200


def test_the_browser_session_has_an_absolute_lifetime(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url, session_max_minutes=60)
    with TestClient(create_app(settings)) as client:
        key = settings.signing_key()
        two_hours_ago = int((utcnow() - timedelta(hours=2)).timestamp())
        cookie = tokens.issue(
            key,
            typ=tokens.SESSION,
            subject=str(staff["anna"]),
            ttl=timedelta(minutes=30),  # still "active", but signed in too long ago
            csrf="x",
            auth=two_hours_ago,
            gen=0,
        )
        client.cookies.set(sessions.SESSION_COOKIE, cookie)
        refused = client.get("/api/v1/me")
        assert refused.status_code == 401 and refused.json()["code"] == "session_expired"


def test_admin_password_reset_forces_a_change(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    old = staff_token(client, "olga")
    reset = client.post(f"/api/v1/users/{staff['olga']}/password-reset", headers=bearer(root))
    assert reset.status_code == 200
    temporary = reset.json()["temporary_password"]
    assert client.get("/api/v1/me", headers=bearer(old)).status_code == 401
    forced = sign_in(client, "olga", temporary)
    assert forced.status_code == 403 and forced.json()["code"] == "password_change_required"
    changed = client.post(
        "/api/v1/auth/password",
        json={"login": "olga", "password": temporary, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 204, changed.text
    assert sign_in(client, "olga", NEW_PASSWORD).status_code == 200


def test_a_security_officer_cannot_reset_an_admin(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    async def make(session: Any) -> None:
        await operators.create_user(
            session, login="sec", password=PASSWORD, role="security_officer"
        )

    in_db(settings, make)
    officer = staff_token(client, "sec")
    refused = client.post(f"/api/v1/users/{staff['root']}/password-reset", headers=bearer(officer))
    assert refused.status_code == 403
    assert client.post(
        f"/api/v1/users/{staff['anna']}/unlock", headers=bearer(officer)
    ).status_code == 200


# --- IP allow-lists ------------------------------------------------------------------------


def test_staff_sign_in_only_from_allowed_networks(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url)
    inside, outside = peer("10.1.2.3"), peer("192.0.2.7")
    with TestClient(FromPeer(create_app(settings))) as client:
        root = sign_in(client, "root", ip="10.1.2.3").json()["access_token"]
        shut_out = client.put(
            "/api/v1/security/ip-allowlist",
            json={"entries": [{"cidr": "172.16.0.0/12"}]},
            headers={**bearer(root), **inside},
        )
        assert shut_out.status_code == 409 and shut_out.json()["code"] == "allowlist_excludes_you"
        bad = client.put(
            "/api/v1/security/ip-allowlist",
            json={"entries": [{"cidr": "10.0.0.300/8"}]},
            headers={**bearer(root), **inside},
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_cidr"
        put = client.put(
            "/api/v1/security/ip-allowlist",
            json={"entries": [{"cidr": "10.0.0.0/8", "note": "офис"}]},
            headers={**bearer(root), **inside},
        )
        assert put.status_code == 200 and put.json()["entries"][0]["cidr"] == "10.0.0.0/8"
        assert sign_in(client, "anna", ip="10.1.2.3").status_code == 200
        refused = sign_in(client, "anna", ip="192.0.2.7")
        assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"
        browser = client.post(
            "/api/v1/auth/session", json={"login": "anna", "password": PASSWORD}, headers=outside
        )
        assert browser.status_code == 403 and browser.json()["code"] == "ip_not_allowed"


def test_the_allow_list_setting_applies_too(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url, signin_ip_allowlist="198.51.100.0/24")
    with TestClient(FromPeer(create_app(settings))) as client:
        assert sign_in(client, "anna", ip="198.51.100.20").status_code == 200
        assert sign_in(client, "anna", ip="10.1.2.3").json()["code"] == "ip_not_allowed"


def test_an_api_token_works_only_from_its_networks(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url)

    async def make(session: Any) -> tuple[int, str]:
        row, secret = await api_tokens.create_token(
            session, name="CRM", scopes=["users.read"], created_by=None
        )
        return row.id, secret

    token_id, secret = in_db(settings, make)
    crm, stranger = peer("10.20.30.40"), peer("203.0.113.9")
    with TestClient(FromPeer(create_app(settings))) as client:
        assert client.get("/api/v1/users", headers={**bearer(secret), **stranger}).status_code == 200
        root = {**bearer(staff_token(client, "root")), **crm}
        bad = client.put(
            f"/api/v1/tokens/{token_id}/ip-allowlist",
            json={"ip_allowlist": ["not-a-net"]},
            headers=root,
        )
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_cidr"
        put = client.put(
            f"/api/v1/tokens/{token_id}/ip-allowlist",
            json={"ip_allowlist": ["10.20.0.0/16", "10.20.30.40"]},
            headers=root,
        )
        assert put.status_code == 200
        assert put.json()["ip_allowlist"] == ["10.20.0.0/16", "10.20.30.40/32"]
        assert client.get("/api/v1/users", headers={**bearer(secret), **crm}).status_code == 200
        refused = client.get("/api/v1/users", headers={**bearer(secret), **stranger})
        assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"
        missing = client.get("/api/v1/tokens/999999/ip-allowlist", headers=root)
        assert missing.status_code == 404


def test_the_sign_in_state_row_is_created_lazily(settings: Settings, staff: Staff) -> None:
    async def run(session: Any) -> list[int]:
        return list((await session.scalars(select(SignInState.user_id))).all())

    assert in_db(settings, run) == []  # accounts made before migration 0011 have none


# --- signing out, revocation seen from another process, allow-lists for auditors ---------


def test_signing_out_is_recorded_with_who_and_from_where(
    tmp_path: Path, database_url: str, staff: Staff
) -> None:
    settings = make_settings(tmp_path, database_url)
    with TestClient(FromPeer(create_app(settings))) as client:
        opened = client.post(
            "/api/v1/auth/session",
            json={"login": "anna", "password": PASSWORD},
            headers=peer("10.7.7.7"),
        )
        assert opened.status_code == 200
        csrf = opened.json()["csrf_token"]
        out = client.post("/api/v1/auth/logout", headers=peer("10.7.7.7", **{"X-CSRF-Token": csrf}))
        assert out.status_code == 204
        assert client.get("/api/v1/me").status_code == 401
        # clearing the cookies again (no session left) is no second sign-out
        assert client.post("/api/v1/auth/logout").status_code == 204
        # a session that was already ended everywhere is not "signed out" by its page
        igor = client.post("/api/v1/auth/session", json={"login": "igor", "password": PASSWORD})
        root = bearer(sign_in(client, "root").json()["access_token"])
        client.post(f"/api/v1/users/{staff['igor']}/sign-out-everywhere", headers=root)
        late = client.post(
            "/api/v1/auth/logout", headers={"X-CSRF-Token": igor.json()["csrf_token"]}
        )
        assert late.status_code == 204

        entries = client.get(
            "/api/v1/audit", params={"action": "auth.sign_out"}, headers=root
        ).json()["entries"]
    assert [(e["actor_login"], e["actor_id"], e["ip"], e["outcome"]) for e in entries] == [
        ("anna", staff["anna"], "10.7.7.7", "success")
    ]
    assert entries[0]["object_type"] == "user" and entries[0]["object_id"] == str(staff["anna"])


def test_sockets_held_here_of_an_account_revoked_elsewhere_end_as_revoked(
    settings: Settings, staff: Staff, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 0.2)
    with TestClient(create_app(settings)) as client:
        token = staff_token(client, "anna")
        with client.websocket_connect(f"/api/v1/ws?token={token}") as ws:
            assert ws.receive_json()["type"] == "stream.ready"

            async def sign_out_everywhere_in_another_process() -> None:
                db = Database(settings)
                try:
                    async with db.transaction() as session:
                        await revocation.revoke(session, staff["anna"])
                finally:
                    await db.dispose()

            services.run_in_thread(sign_out_everywhere_in_another_process)
            event = ws.receive_json()
            while event["type"] != "stream.error":
                event = ws.receive_json()
    # the workspace takes token_revoked to the sign-in page ("the session was ended"),
    # not to "this account is disabled"
    assert event["payload"]["code"] == "token_revoked"


def test_auditors_and_security_officers_read_the_allow_lists_only_admins_change_them(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    async def make(session: Any) -> int:
        for login, role in (("aud", "auditor"), ("sec", "security_officer")):
            await operators.create_user(session, login=login, password=PASSWORD, role=role)
        row, _ = await api_tokens.create_token(
            session, name="CRM", scopes=["users.read"], created_by=None
        )
        return int(row.id)

    token_id = in_db(settings, make)
    auditor, officer = bearer(staff_token(client, "aud")), bearer(staff_token(client, "sec"))
    for who in (auditor, officer):
        staff_list = client.get("/api/v1/security/ip-allowlist", headers=who)
        assert staff_list.status_code == 200, staff_list.text
        assert staff_list.json()["entries"] == []
        token_list = client.get(f"/api/v1/tokens/{token_id}/ip-allowlist", headers=who)
        assert token_list.status_code == 200 and token_list.json()["ip_allowlist"] == []
    refused = client.put("/api/v1/security/ip-allowlist", json={"entries": []}, headers=auditor)
    assert refused.status_code == 403
    assert refused.json()["fields"]["permission"] == "ip_allowlist.manage"
    refused = client.put(
        f"/api/v1/tokens/{token_id}/ip-allowlist", json={"ip_allowlist": []}, headers=auditor
    )
    assert refused.status_code == 403
    operator = bearer(staff_token(client, "anna"))
    denied = client.get("/api/v1/security/ip-allowlist", headers=operator)
    assert (
        denied.status_code == 403 and denied.json()["fields"]["permission"] == "ip_allowlist.read"
    )


def test_an_admin_cannot_give_an_okno_password_to_an_openid_account(
    client: TestClient, settings: Settings, staff: Staff
) -> None:
    async def make(session: Any) -> int:
        user = await operators.create_user(
            session, login="maria", password=PASSWORD, role="operator"
        )
        row = await revocation.state_for(session, user.id)
        row.source, row.external_id = "oidc", "https://sso.bank.test|f3a1-77"
        return int(user.id)

    maria = in_db(settings, make)
    root = bearer(staff_token(client, "root"))
    patched = client.patch(f"/api/v1/users/{maria}", json={"password": NEW_PASSWORD}, headers=root)
    assert patched.status_code == 409 and patched.json()["code"] == "external_password"
    reset = client.post(f"/api/v1/users/{maria}/password-reset", headers=root)
    assert reset.status_code == 409 and reset.json()["code"] == "external_password"
    assert sign_in(client, "maria", NEW_PASSWORD).status_code == 401


# --- texts ---------------------------------------------------------------------------------


def test_every_error_the_sign_in_answers_has_a_text_in_both_languages() -> None:
    from okno.operators import api as staff_api
    from okno.operators import auth_api, directory, oidc, signin
    from okno.security import ratelimit
    from okno.web import i18n

    modules = (signin, directory, oidc, auth_api, staff_api, password_policy, sessions, tokens)
    codes = {ratelimit.RateLimited.code}
    for module in modules:
        source = Path(str(module.__file__)).read_text("utf-8")
        codes |= set(re.findall(r'\bcode="([a-z_]+)"', source))
    assert {"oidc_no_role", "directory_unavailable", "bad_credentials"} <= codes
    assert sorted(c for c in codes if f"error.{c}" not in i18n.TEXTS) == []
