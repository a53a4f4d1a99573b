"""Staff pages over HTTP: who is sent to sign in, who is refused, what the page carries
(security headers, the boot JSON, texts in the chosen language) and what it never does
(redirect off-site, let a name become markup, answer 500 to a bad link)."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from structlog.testing import capture_logs

from okno.bot.flows import PLACE_KINDS, STEP_KINDS
from okno.channels.models import CHANNEL_KINDS
from okno.conversations.models import RESOLUTIONS, STATUSES
from okno.operators.models import PRESENCE_STATUSES, ROLES
from okno.replies.models import SCOPES
from okno.security import tokens
from okno.settings import Settings
from okno.web import i18n
from tests.builders import PASSWORD, Staff, bearer, customer_says, staff_token, widget_session

WEB = Path(i18n.__file__).parent
STAFF_PAGES = ("/", "/supervisor", "/admin", "/templates", "/channels")
BOOT_RE = re.compile(
    r'<script type="application/json" id="okno-boot">(?P<json>.*?)</script>', re.DOTALL
)
DATA_NEXT_RE = re.compile(r'data-next="(?P<next>[^"]*)"')


# ------------------------------------------------------------------ helpers


def sign_in(client: TestClient, login: str, password: str = PASSWORD) -> str:
    """A fresh browser session for ``login`` in this client (earlier cookies dropped);
    returns the CSRF token."""
    client.cookies.clear()
    response = client.post("/api/v1/auth/session", json={"login": login, "password": password})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


def get(client: TestClient, path: str) -> Response:
    return client.get(path, follow_redirects=False)


def boot_of(response: Response) -> dict[str, Any]:
    found = BOOT_RE.search(response.text)
    assert found is not None, "the page has no okno-boot script"
    boot: dict[str, Any] = json.loads(found.group("json"))
    return boot


def assert_sent_to_login(response: Response, next_path: str) -> None:
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/login?next={next_path}"


def open_dialog_of_support_team(client: TestClient) -> int:
    """A widget dialog that anna (team Поддержка) has taken."""
    conversation_id: int = customer_says(
        client, widget_session(client)["session_token"], "Не проходит платёж"
    )["conversation_id"]
    taken = client.post(
        f"/api/v1/conversations/{conversation_id}/assign",
        json={},
        headers=bearer(staff_token(client, "anna")),
    )
    assert taken.status_code == 200, taken.text
    return conversation_id


# ------------------------------------------------------------------ strangers


@pytest.mark.parametrize("path", [*STAFF_PAGES, "/c/1"])
def test_staff_page_without_a_session_sends_to_sign_in_and_back(
    client: TestClient, path: str
) -> None:
    assert_sent_to_login(get(client, path), path)


def test_sign_in_page_shows_the_form_in_russian_by_default(client: TestClient) -> None:
    response = get(client, "/login")
    assert response.status_code == 200
    assert '<html lang="ru">' in response.text
    assert 'data-okno="login"' in response.text
    for key in ("login.title", "login.login", "login.password", "login.submit"):
        assert i18n.TEXTS[key][0] in response.text
    assert "Sign in" not in response.text
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert boot_of(response)["texts"]["login.submit"] == "Войти"


# ------------------------------------------------------------------ a signed-in page


def test_workspace_after_sign_in_carries_csp_no_store_and_boot_json(
    client: TestClient, staff: Staff
) -> None:
    sign_in(client, "anna")
    response = get(client, "/")
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    boot = boot_of(response)
    assert boot["me"]["id"] == staff["anna"]
    assert boot["me"]["login"] == "anna"
    assert boot["me"]["role"] == "operator"
    assert boot["me"]["team_id"] == staff.teams["Поддержка"]
    assert boot["lang"] == "ru"
    assert boot["texts"] == i18n.texts("ru")
    assert boot["open"] is None
    assert 'data-okno="me">Анна<' in response.text


# ------------------------------------------------------------------ roles


@pytest.mark.parametrize("path", ["/supervisor", "/admin", "/channels"])
def test_operator_is_refused_supervisor_and_admin_pages_and_it_is_logged(
    client: TestClient, staff: Staff, path: str
) -> None:
    sign_in(client, "anna")
    with capture_logs() as logs:
        response = get(client, path)
    assert response.status_code == 403
    assert 'data-okno="forbidden"' in response.text
    assert i18n.TEXTS["dialog.forbidden_title"][0] in response.text
    assert i18n.TEXTS["error.forbidden_role"][0] in response.text
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    denied = [e for e in logs if e["event"] == "access.denied"]
    assert len(denied) == 1
    assert denied[0]["user_id"] == staff["anna"]
    assert denied[0]["page"] == path.strip("/")
    assert denied[0]["log_level"] == "warning"


def test_operator_gets_workspace_and_templates(client: TestClient) -> None:
    sign_in(client, "anna")
    for path in ("/", "/templates"):
        assert get(client, path).status_code == 200, path


def test_supervisor_gets_the_board_but_not_administration(client: TestClient) -> None:
    sign_in(client, "sveta")
    for path in ("/", "/templates", "/supervisor"):
        assert get(client, path).status_code == 200, path
    board = get(client, "/supervisor")
    assert boot_of(board)["me"]["role"] == "supervisor"
    assert 'href="/supervisor"' in board.text and 'href="/admin"' not in board.text
    admin = get(client, "/admin")
    assert admin.status_code == 403 and 'data-okno="forbidden"' in admin.text
    assert get(client, "/channels").status_code == 403
    assert 'href="/channels"' not in board.text


def test_admin_gets_every_page(client: TestClient) -> None:
    sign_in(client, "root")
    for path in STAFF_PAGES:
        response = get(client, path)
        assert response.status_code == 200, path
        assert boot_of(response)["me"]["role"] == "admin"
    assert 'href="/admin"' in get(client, "/").text


# ------------------------------------------------------------------ /c/{id}


def test_dialog_link_of_another_team_is_refused_and_logged(
    client: TestClient, staff: Staff
) -> None:
    conversation_id = open_dialog_of_support_team(client)
    sign_in(client, "olga")
    with capture_logs() as logs:
        response = get(client, f"/c/{conversation_id}")
    assert response.status_code == 403
    assert 'data-okno="forbidden"' in response.text
    assert i18n.TEXTS["dialog.not_allowed"][0] in response.text
    assert "Не проходит платёж" not in response.text
    denied = [e for e in logs if e["event"] == "access.denied"]
    assert len(denied) == 1
    assert denied[0]["user_id"] == staff["olga"]
    assert denied[0]["conversation_id"] == conversation_id


def test_dialog_link_opens_the_dialog_for_its_team(client: TestClient, staff: Staff) -> None:
    conversation_id = open_dialog_of_support_team(client)
    sign_in(client, "anna")
    response = get(client, f"/c/{conversation_id}")
    assert response.status_code == 200
    boot = boot_of(response)
    assert boot["open"] == conversation_id and boot["me"]["id"] == staff["anna"]
    sign_in(client, "sveta")  # a supervisor without a team sees every dialog
    assert get(client, f"/c/{conversation_id}").status_code == 200


def test_dialog_link_to_an_unknown_dialog_opens_the_workspace(client: TestClient) -> None:
    sign_in(client, "anna")
    response = get(client, "/c/987654")
    assert response.status_code == 200
    assert boot_of(response)["open"] == 987654


@pytest.mark.parametrize(
    "path", ["/c/abc", "/c/0", "/c/-1", "/c/1.5", "/c/2147483648", "/c/" + "9" * 40]
)
@pytest.mark.parametrize("signed_in", [False, True])
def test_bad_dialog_link_is_a_client_error_never_500(
    client: TestClient, path: str, signed_in: bool
) -> None:
    if signed_in:
        sign_in(client, "anna")
    response = get(client, path)
    assert 400 <= response.status_code < 500, (path, response.status_code)


# ------------------------------------------------------------------ language


def test_language_switch_remembers_english_and_goes_back(client: TestClient) -> None:
    sign_in(client, "root")
    switched = get(client, "/lang/en?next=/admin")
    assert switched.status_code == 303
    assert switched.headers["location"] == "/admin"
    set_cookie = switched.headers["set-cookie"]
    assert set_cookie.startswith(f"{i18n.LANG_COOKIE}=en") and "HttpOnly" in set_cookie
    assert client.cookies.get(i18n.LANG_COOKIE) == "en"
    for path in STAFF_PAGES:
        page = get(client, path)
        assert page.status_code == 200, path
        assert '<html lang="en">' in page.text
        assert "Sign out" in page.text and "Выйти" not in page.text
        boot = boot_of(page)
        assert boot["lang"] == "en" and boot["texts"] == i18n.texts("en")
    assert "Sign in to okno" in get(client, "/login").text
    back = get(client, "/lang/ru?next=/")
    assert back.headers["location"] == "/"
    assert "Выйти" in get(client, "/").text


def test_unknown_language_changes_nothing(client: TestClient) -> None:
    sign_in(client, "anna")
    response = get(client, "/lang/xx?next=/templates")
    assert response.status_code == 303 and response.headers["location"] == "/templates"
    assert "set-cookie" not in response.headers
    assert i18n.LANG_COOKIE not in client.cookies
    assert "Выйти" in get(client, "/").text


OFF_SITE = [
    "https://evil.example/",
    "//evil.example",
    "//evil.example/admin",
    "http:/evil.example",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\x7f/evil.example",
    "evil.example",
    "",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_language_switch_never_redirects_off_site(client: TestClient, target: str) -> None:
    response = client.get("/lang/en", params={"next": target}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("target", OFF_SITE)
def test_sign_in_form_only_returns_to_a_local_path(client: TestClient, target: str) -> None:
    response = client.get("/login", params={"next": target}, follow_redirects=False)
    assert response.status_code == 200
    found = DATA_NEXT_RE.search(response.text)
    assert found is not None
    assert found.group("next") == "/"


def test_sign_in_form_keeps_a_local_next_and_escapes_it(client: TestClient) -> None:
    local = client.get("/login", params={"next": "/c/5"}, follow_redirects=False)
    found = DATA_NEXT_RE.search(local.text)
    assert found is not None and found.group("next") == "/c/5"
    crafted = client.get(
        "/login", params={"next": '/"><script>alert(1)</script>'}, follow_redirects=False
    )
    assert crafted.status_code == 200
    assert "<script>alert(1)" not in crafted.text


# ------------------------------------------------------------------ markup in names


NASTY_NAME = "</script><script>alert(1)</script>"


def test_markup_in_a_display_name_stays_text(client: TestClient) -> None:
    root = staff_token(client, "root")
    created = client.post(
        "/api/v1/users",
        json={
            "login": "mallory",
            "name": NASTY_NAME,
            "password": "long-enough-pw-42",
            "role": "operator",
        },
        headers=bearer(root),
    )
    assert created.status_code == 201, created.text
    sign_in(client, "mallory", "long-enough-pw-42")
    # The workspace and the forbidden page (which has the top bar too) for this user.
    for path, status in (("/", 200), ("/templates", 200), ("/c/1", 200), ("/admin", 403)):
        response = get(client, path)
        assert response.status_code == status, path
        assert "</script><script>" not in response.text, path
        assert "<script>alert(1)" not in response.text, path
        top_bar = 'data-okno="me">&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;</span>'
        assert top_bar in response.text, path
        if status == 200:
            assert boot_of(response)["me"]["name"] == NASTY_NAME


# ------------------------------------------------------------------ i18n


def test_every_text_exists_in_russian_and_english() -> None:
    assert set(i18n.texts("ru")) == set(i18n.texts("en")) == set(i18n.TEXTS)
    for key, pair in i18n.TEXTS.items():
        assert len(pair) == len(i18n.LANGUAGES), key
        ru, en = pair
        assert ru.strip() and en.strip(), key


TEMPLATE_KEY_RE = re.compile(r"""\bt\(\s*(["'])(?P<key>[^"']+)\1""")
JS_LITERAL_KEY_RE = re.compile(r"""\bt\(\s*(["'`])(?P<key>[^"'`$]+)\1""")
JS_BUILT_KEY_RE = re.compile(r"""\bt\(\s*`(?P<prefix>[^`$]*)\$\{""")
# Keys the browser code builds at run time, ``t(`status.${x}`)``: every value x can take.
BUILT_KEYS: dict[str, tuple[str, ...]] = {
    "status.": STATUSES,
    "resolution.": RESOLUTIONS,
    "presence.": PRESENCE_STATUSES,
    "role.": ROLES,
    "scope.": SCOPES,
    "channel.": CHANNEL_KINDS,
    "conn.": ("online", "connecting", "offline"),
    "msg.": ("customer", "operator", "bot", "system"),
    "msg.status.": (
        "pending",
        "sent",
        "read",
        "failed",
        # a messenger's delivery report (MessageOut.delivery; "failed" shown as undelivered)
        "queued",
        "sending",
        "delivered",
        "waiting",
        "undelivered",
    ),
    "channels.error_kind.": ("webhook", "send", "check", "poll"),
    "flows.kind.": STEP_KINDS,
    "flows.places.": PLACE_KINDS,
    "flows.source.": ("edit", "import", "off"),
    "audit.outcome.": ("success", "failure", "denied", "locked"),
    "audit.col.": ("seq", "at", "who", "ip", "action", "object", "outcome"),
    "retention.col.": ("when", "kind", "messages", "files", "customers", "audit"),
}


def test_every_key_the_templates_use_has_a_text() -> None:
    used: set[str] = set()
    for template in sorted((WEB / "templates").glob("*.html")):
        used |= {m["key"] for m in TEMPLATE_KEY_RE.finditer(template.read_text("utf-8"))}
    assert "nav.logout" in used and "presence.label" in used  # the regex sees both quotings
    assert sorted(used - set(i18n.TEXTS)) == []


def test_every_key_the_browser_code_uses_has_a_text() -> None:
    scripts = sorted((WEB / "static" / "js").glob("*.js"))
    assert scripts
    literal: set[str] = set()
    prefixes: set[str] = set()
    for script in scripts:
        source = script.read_text("utf-8")
        literal |= {m["key"] for m in JS_LITERAL_KEY_RE.finditer(source)}
        prefixes |= {m["prefix"] for m in JS_BUILT_KEY_RE.finditer(source)}
    assert "common.save" in literal
    assert sorted(literal - set(i18n.TEXTS)) == []
    # A new run-time prefix must be listed in BUILT_KEYS with the values it can take.
    assert sorted(prefixes - set(BUILT_KEYS)) == []


def test_every_run_time_key_has_a_text() -> None:
    expected = {
        "status.": ("waiting", "assigned", "closed"),
        "resolution.": ("resolved", "refused", "callback", "spam", "inactive"),
        "presence.": ("online", "break", "offline"),
        "role.": ("operator", "supervisor", "admin"),
        "scope.": ("personal", "team", "shared"),
    }
    for prefix, values in expected.items():
        assert set(values) <= set(BUILT_KEYS[prefix]), prefix
    missing = [
        prefix + value
        for prefix, values in BUILT_KEYS.items()
        for value in values
        if prefix + value not in i18n.TEXTS
    ]
    assert missing == []


# ------------------------------------------------------------------ sessions ending


def test_expired_session_cookie_sends_to_sign_in(client: TestClient, settings: Settings) -> None:
    key = settings.signing_key()
    idle = tokens.issue(
        key, typ=tokens.SESSION, subject="1", ttl=timedelta(seconds=-1), csrf="x", auth=0
    )
    client.cookies.set("okno_session", idle)
    assert_sent_to_login(get(client, "/"), "/")
    too_old = tokens.issue(
        key, typ=tokens.SESSION, subject="1", ttl=timedelta(minutes=5), csrf="x", auth=1
    )
    client.cookies.set("okno_session", too_old)
    assert_sent_to_login(get(client, "/supervisor"), "/supervisor")


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "a.b.c",
        "",
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        "x" * 4000,
    ],
)
def test_forged_session_cookie_sends_to_sign_in(client: TestClient, cookie: str) -> None:
    client.cookies.set("okno_session", cookie)
    assert_sent_to_login(get(client, "/"), "/")
    assert_sent_to_login(get(client, "/c/1"), "/c/1")


def test_session_cookie_signed_with_another_key_or_of_another_kind_is_refused(
    client: TestClient, staff: Staff
) -> None:
    forged = tokens.issue(
        "someone-elses-key-0123456789-abcdefgh",
        typ=tokens.SESSION,
        subject=str(staff["root"]),
        ttl=timedelta(minutes=5),
        csrf="x",
        auth=int(time.time()),
    )
    client.cookies.set("okno_session", forged)
    assert_sent_to_login(get(client, "/admin"), "/admin")
    client.cookies.set("okno_session", staff_token(client, "root"))  # a bearer token
    assert_sent_to_login(get(client, "/admin"), "/admin")


def test_disabled_users_cookie_sends_to_sign_in(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    sign_in(client, "anna")
    assert get(client, "/").status_code == 200
    disabled = client.patch(
        f"/api/v1/users/{staff['anna']}", json={"is_active": False}, headers=bearer(root)
    )
    assert disabled.status_code == 200, disabled.text
    assert_sent_to_login(get(client, "/"), "/")
    assert_sent_to_login(get(client, "/c/1"), "/c/1")


def test_after_logout_the_workspace_sends_to_sign_in(client: TestClient) -> None:
    csrf = sign_in(client, "anna")
    assert get(client, "/").status_code == 200
    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert "okno_session" not in client.cookies
    assert_sent_to_login(get(client, "/"), "/")
