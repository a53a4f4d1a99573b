"""Web hardening: security headers per kind of response, templates without inline code,
cookie flags, CSRF on every cookie-authenticated change, and no credentials in logs."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.http import current_user
from okno.settings import Settings
from okno.web.pages import WEB
from tests.builders import PASSWORD, Staff, bearer, cmid, customer_says, widget_session
from tests.channels.fakes.server import Reply
from tests.channels.fakes.telegram import TOKEN, FakeTelegram, message_update
from tests.channels.telegram_live import add_channel, eventually
from tests.conftest import make_settings

CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def header_values(response: Any, name: str) -> list[str]:
    return response.headers.get_list(name)


# ---------------------------------------------------------------- headers


def test_staff_pages_run_only_their_own_scripts_and_cannot_be_framed(client: TestClient) -> None:
    page = client.get("/login")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    assert "camera=()" in page.headers["permissions-policy"]
    assert "microphone=()" in page.headers["permissions-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert len(header_values(page, "content-security-policy")) == 1


def test_api_answers_carry_a_policy_that_runs_nothing(client: TestClient) -> None:
    for path in ("/api/v1/conversations", "/api/v1/nothing-here", "/widget.js"):
        response = client.get(path)
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["x-frame-options"] == "DENY"
    # staff answers are not embeddable elsewhere; what the bank's page loads is
    assert client.get("/api/v1/conversations").headers["cross-origin-resource-policy"] == (
        "same-origin"
    )
    assert client.get("/widget.js").headers["cross-origin-resource-policy"] == "cross-origin"


def test_the_demo_bank_page_is_as_strict_as_a_careful_banks(client: TestClient) -> None:
    page = client.get("/demo")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self' http://testserver;" in csp
    assert "style-src 'self';" in csp and "unsafe-inline" not in csp
    assert "connect-src 'self' http://testserver ws://testserver" in csp
    assert "geolocation=(self)" in page.headers["permissions-policy"]


def test_hsts_only_over_https(settings: Settings, staff: Staff) -> None:
    app = create_app(settings)
    with TestClient(app) as plain, TestClient(app, base_url="https://testserver") as tls:
        assert "strict-transport-security" not in plain.get("/login").headers
        hsts = tls.get("/login").headers["strict-transport-security"]
        assert hsts.startswith("max-age=31536000")


def test_templates_have_no_inline_scripts_handlers_or_styles() -> None:
    """What a script-src 'self' / style-src 'self' policy would block must not be there."""
    for template in sorted((WEB / "templates").glob("*.html")):
        html = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (template.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", html), template.name
        assert not re.search(r"\sstyle\s*=", html), template.name
        assert "<style" not in html, template.name
        assert "javascript:" not in html, template.name


# ---------------------------------------------------------------- cookies


@pytest.mark.parametrize("base_url", ["http://testserver", "https://testserver"])
def test_session_cookies_are_httponly_samesite_and_secure_over_https(
    settings: Settings, staff: Staff, base_url: str
) -> None:
    with TestClient(create_app(settings), base_url=base_url) as client:
        response = client.post("/api/v1/auth/session", json={"login": "anna", "password": PASSWORD})
        assert response.status_code == 200, response.text
        cookies = {c.split("=", 1)[0]: c for c in header_values(response, "set-cookie")}
        session, csrf = cookies["okno_session"], cookies["okno_csrf"]
        assert "HttpOnly" in session and "SameSite=Strict" in session
        assert "SameSite=Strict" in csrf  # readable by our script, sent by no other site
        assert ("Secure" in session) == base_url.startswith("https")
        assert ("Secure" in csrf) == base_url.startswith("https")
        lang = client.get("/lang/en", follow_redirects=False)
        (lang_cookie,) = header_values(lang, "set-cookie")
        assert "HttpOnly" in lang_cookie and "samesite=lax" in lang_cookie.lower()
        assert ("Secure" in lang_cookie) == base_url.startswith("https")


# ---------------------------------------------------------------- CSRF


def _uses_session(dependant: Any) -> bool:
    """Whether a route (or any dependency of it) authenticates through ``current_user``."""
    return any(
        d.call is current_user or _uses_session(d) for d in getattr(dependant, "dependencies", [])
    )


def _routes(app: Any) -> Iterator[Any]:
    """Every route as the app serves it (routers included, prefixes applied)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # older FastAPI: app.routes is already flat
        yield from app.routes
        return
    for context in iter_route_contexts(app.routes):
        yield context.original_route


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_cookie_authenticated_change_needs_the_csrf_token(client: TestClient) -> None:
    """With only the session cookie (what a forged cross-site request would carry), every
    state-changing route is refused: 403 csrf_failed where the cookie authenticates."""
    signed_in = client.post("/api/v1/auth/session", json={"login": "root", "password": PASSWORD})
    assert signed_in.status_code == 200
    csrf = signed_in.json()["csrf_token"]
    checked = 0
    for route in _routes(client.app):
        if not isinstance(route, APIRoute):
            continue
        for method in sorted(route.methods & CHANGING):
            response = client.request(method, _fill(route.path), json={})
            assert response.status_code >= 400, (method, route.path, response.status_code)
            if _uses_session(route.dependant):
                assert response.status_code == 403, (method, route.path, response.text)
                assert response.json()["code"] == "csrf_failed", (method, route.path)
                checked += 1
    assert checked > 40  # the staff API is covered, not a handful of routes
    # the same cookie with its token gets through the CSRF check
    with_token = client.post(
        "/api/v1/conversations/999999/close", json={}, headers={"X-CSRF-Token": csrf}
    )
    assert with_token.json()["code"] != "csrf_failed"
    wrong = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403 and wrong.json()["code"] == "csrf_failed"
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204


def test_bearer_token_calls_need_no_csrf_token(client: TestClient) -> None:
    token = client.post("/api/v1/auth/token", json={"login": "anna", "password": PASSWORD}).json()[
        "access_token"
    ]
    customer = widget_session(client)["session_token"]
    conv = customer_says(client, customer, "Здравствуйте")["conversation_id"]
    response = client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Добрый день"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text


# ---------------------------------------------------------------- secrets in logs


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


def test_sign_in_and_a_messenger_send_leave_no_credentials_in_the_logs(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    staff: Staff,
    telegram: FakeTelegram,
) -> None:
    live = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=1.0,
        log_level="debug",
    )
    channel_id = add_channel(
        live,
        "telegram",
        bot_token=TOKEN,
        webhook_secret="wh-secret_0123456789",
        api_base=telegram.url,
    )
    stdlib = io.StringIO()
    root_handler = logging.getLogger().handlers[0]
    assert isinstance(root_handler, logging.StreamHandler)
    old_stream = root_handler.setStream(stdlib)
    # an administrator turning on library logging sees every URL httpx calls
    httpx_logger = logging.getLogger("httpx")
    old_level = httpx_logger.level
    httpx_logger.setLevel(logging.INFO)
    app = create_app(live)
    try:
        with TestClient(app) as client:
            bad = client.post(
                "/api/v1/auth/token", json={"login": "anna", "password": "Wr0ng-pass"}
            )
            assert bad.status_code == 401
            good = client.post("/api/v1/auth/token", json={"login": "anna", "password": PASSWORD})
            access = good.json()["access_token"]
            session = client.post(
                "/api/v1/auth/session", json={"login": "anna", "password": PASSWORD}
            )
            csrf = session.json()["csrf_token"]
            client.get("/api/v1/me", headers={"Authorization": f"Bearer {access}x"})
            # the customer writes in Telegram; the operator answers; Telegram fails once
            telegram.fail_next("/sendMessage", Reply(502, {"ok": False}))
            hook = client.post(
                f"/hooks/telegram/{channel_id}",
                json=message_update("Здравствуйте"),
                headers={"X-Telegram-Bot-Api-Secret-Token": "wh-secret_0123456789"},
            )
            assert hook.status_code == 200
            conv = eventually(
                lambda: client.get("/api/v1/conversations", headers=bearer(access)).json()[
                    "conversations"
                ]
            )[0]["id"]
            client.post(f"/api/v1/conversations/{conv}/assign", json={}, headers=bearer(access))
            reply = client.post(
                f"/api/v1/conversations/{conv}/messages",
                json={"client_msg_id": cmid(), "text": "Добрый день"},
                headers=bearer(access),
            )
            assert reply.status_code == 201
            eventually(lambda: len(telegram.calls("/sendMessage")) >= 2, what="a retried send")
            # a library quoting the URL it called in an error
            logging.getLogger("okno.test").error(
                "send failed: POST %s/bot%s/sendMessage", telegram.url, TOKEN
            )
    finally:
        httpx_logger.setLevel(old_level)
        root_handler.setStream(old_stream)  # type: ignore[arg-type]
    output = capsys.readouterr().out + stdlib.getvalue()
    assert "/sendMessage" in output  # the calls were logged, only without the token
    assert "[redacted]" in output
    for secret in (TOKEN, TOKEN.split(":", 1)[1], PASSWORD, "Wr0ng-pass", access, csrf):
        assert secret not in output, secret
    assert "wh-secret_0123456789" not in output


def test_log_fields_named_like_secrets_are_dropped() -> None:
    from okno.security import redact

    event = redact.redact_secrets(
        None,
        "info",
        {
            "event": "x",
            "password": "hunter2",
            "token_id": 7,
            "headers": {"Authorization": "Bearer abc.def.ghi", "Accept": "text/html"},
            "url": "postgresql://okno:s3cret@db/okno",
        },
    )
    assert event["password"] == "[redacted]" and event["token_id"] == 7
    assert event["headers"] == {"Authorization": "[redacted]", "Accept": "text/html"}
    assert event["url"] == "postgresql://okno:[redacted]@db/okno"
