"""Staff browser sessions: HttpOnly cookie, CSRF on every change, logout, idle timeout."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from okno.security import tokens
from okno.settings import Settings
from tests.builders import PASSWORD, cmid, customer_says, widget_session


def sign_in(client: TestClient, login: str = "anna") -> str:
    response = client.post("/api/v1/auth/session", json={"login": login, "password": PASSWORD})
    assert response.status_code == 200, response.text
    cookies = response.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("okno_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Strict" in session_cookie
    csrf: str = response.json()["csrf_token"]
    return csrf


def test_cookie_session_reads_and_writes_with_csrf(client: TestClient) -> None:
    conv = customer_says(client, widget_session(client)["session_token"], "Вопрос")[
        "conversation_id"
    ]
    csrf = sign_in(client)
    assert client.get("/api/v1/me").json()["login"] == "anna"
    body = {"client_msg_id": cmid(), "text": "Ответ"}
    without = client.post(f"/api/v1/conversations/{conv}/messages", json=body)
    assert without.status_code == 403 and without.json()["code"] == "csrf_failed"
    wrong = client.post(
        f"/api/v1/conversations/{conv}/messages", json=body, headers={"X-CSRF-Token": "guess"}
    )
    assert wrong.status_code == 403
    ok = client.post(
        f"/api/v1/conversations/{conv}/messages", json=body, headers={"X-CSRF-Token": csrf}
    )
    assert ok.status_code == 201


def test_logout_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client)
    # another site cannot sign an operator out: logout too needs the CSRF token
    forged = client.post("/api/v1/auth/logout")
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    after = client.get("/api/v1/me")
    assert after.status_code == 401


def test_idle_session_expires_and_old_sign_in_is_refused(
    client: TestClient, settings: Settings
) -> None:
    key = settings.signing_key()
    idle = tokens.issue(
        key, typ=tokens.SESSION, subject="1", ttl=timedelta(seconds=-1), csrf="x", auth=0
    )
    client.cookies.set("okno_session", idle)
    response = client.get("/api/v1/me")
    assert response.status_code == 401 and response.json()["code"] == "token_expired"
    ancient = tokens.issue(
        key, typ=tokens.SESSION, subject="1", ttl=timedelta(minutes=5), csrf="x", auth=1
    )
    client.cookies.set("okno_session", ancient)
    response = client.get("/api/v1/me")
    assert response.status_code == 401 and response.json()["code"] == "session_expired"


def test_session_cookie_is_renewed_when_half_used(client: TestClient, settings: Settings) -> None:
    import time

    key = settings.signing_key()
    half_used = tokens.issue(
        key,
        typ=tokens.SESSION,
        subject="1",
        ttl=timedelta(minutes=5),
        csrf="x",
        auth=int(time.time()),
    )
    client.cookies.set("okno_session", half_used)
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert any(c.startswith("okno_session=") for c in response.headers.get_list("set-cookie"))


def test_socket_with_cookie_only_from_our_own_origin(client: TestClient) -> None:
    sign_in(client)
    with client.websocket_connect("/api/v1/ws", headers={"Origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "stream.ready"
    with client.websocket_connect("/api/v1/ws", headers={"Origin": "https://evil.example"}) as ws:
        event = ws.receive_json()
    assert event["type"] == "stream.error" and event["payload"]["code"] == "origin_not_allowed"
