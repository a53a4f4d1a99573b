"""The permission matrix, route by route: every HTTP route of the app (each method) and the
staff WebSocket, called by nobody, by every role, and by an API token with and without the
route's permission, gives exactly the allow/deny the matrix (okno.security.permissions,
documented in docs/security.md) says.

The expected outcome comes from the permission the route declares; a route that declares
none and is not in the explicit public list fails the test, and so does a refused caller
who gets through. "Allowed" means the permission check let the call in: the answer may
still be 404 (nothing with that id), 409 or 422 (the minimal body), never 401, never the
permission's 403 and never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route
from starlette.websockets import WebSocketDisconnect

from okno.app import create_app
from okno.operators import api_tokens
from okno.operators import service as operators
from okno.security import permissions, sessions
from okno.security.permissions import INTERACTIVE_ROLES, ROLE_PERMISSIONS, TOKEN_SCOPES
from okno.settings import Settings
from tests.builders import Staff, bearer, in_db, password_hash

DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"

# Routes anyone may call, each with the reason. A new route lands here only on purpose;
# everything else must declare a permission (okno.http.require / permissions.declare).
PUBLIC: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/token"): "where a staff token comes from",
    ("POST", "/api/v1/auth/session"): "where a browser session comes from",
    ("POST", "/api/v1/auth/logout"): "clears the caller's own cookies",
    ("POST", "/api/v1/auth/password"): "change a password with the current one (forced change)",
    ("POST", "/api/v1/auth/totp/setup"): "set up a second factor with login and password",
    ("POST", "/api/v1/auth/totp/confirm"): "confirm the second factor with login and password",
    ("GET", "/api/v1/auth/oidc/login"): "starts OpenID Connect sign-in",
    ("GET", "/api/v1/auth/oidc/callback"): "where the OpenID provider sends the browser back",
    ("GET", "/api/v1/widget/config"): "the widget on a bank's site (public widget key)",
    ("POST", "/api/v1/widget/sessions"): "a customer opens the chat",
    ("POST", "/api/v1/widget/messages"): "customer (widget session token)",
    ("POST", "/api/v1/widget/attachments"): "customer (widget session token)",
    ("GET", "/api/v1/widget/messages"): "customer (widget session token)",
    ("POST", "/api/v1/widget/rating"): "customer (widget session token)",
    ("GET", "/api/v1/widget/queue"): "customer (widget session token)",
    ("POST", "/api/v1/widget/handoff"): "customer (widget session token)",
    ("POST", "/api/v1/widget/read"): "customer (widget session token)",
    ("POST", "/api/v1/mobile/sessions"): "the bank's app (signed customer identity)",
    ("POST", "/api/v1/mobile/messages"): "customer (app session token)",
    ("POST", "/api/v1/mobile/attachments"): "customer (app session token)",
    ("GET", "/api/v1/mobile/messages"): "customer (app session token)",
    ("POST", "/api/v1/mobile/rating"): "customer (app session token)",
    ("GET", "/api/v1/mobile/queue"): "customer (app session token)",
    ("POST", "/api/v1/mobile/handoff"): "customer (app session token)",
    ("POST", "/api/v1/mobile/read"): "customer (app session token)",
    ("POST", "/hooks/{kind}/{channel_id}"): "messenger webhooks, verified per platform",
    ("GET", "/hooks/{kind}/{channel_id}"): "messenger webhook handshakes",
    ("GET", "/healthz"): "load-balancer probe",
    ("GET", "/readyz"): "load-balancer probe",
    ("GET", "/metrics"): "Prometheus scrape (no personal data)",
    ("GET", "/login"): "the sign-in page",
    ("GET", "/lang/{code}"): "remembers the UI language",
    ("GET", "/demo"): "the demo bank page",
    ("GET", "/widget.js"): "the widget script",
    ("GET", "/openapi.json"): "the public API contract",
    ("GET", "/docs"): "the API reference",
    ("GET", "/docs/oauth2-redirect"): "the API reference",
    ("GET", "/redoc"): "the API reference",
}
PUBLIC_SOCKETS = {
    "/api/v1/widget/ws": "customer (widget session token)",
    "/api/v1/mobile/ws": "customer (app session token)",
}
PUBLIC_MOUNTS = {"/static": "scripts and styles"}
# Routes that revoke the calling account's own credentials (okno.operators.revocation)
SELF_ENDING = {"/api/v1/me/sign-out-everywhere"}
PAGE_PREFIX_EXCLUDED = ("/api/", "/hooks/")
MISSING_ID = "999999"  # nothing has this id: an allowed call changes nothing


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    permission: str | None
    is_page: bool


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]
    cookie: str | None
    granted: frozenset[str]
    is_token: bool = False


def _routes(app: FastAPI) -> Iterator[Any]:
    """Every route as the app serves it (routers included, prefixes applied)."""
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined]
    except ImportError:  # older FastAPI: app.routes is already flat
        yield from app.routes
        return
    for context in iter_route_contexts(app.routes):
        yield context.original_route


def declared_permission(route: APIRoute | APIWebSocketRoute) -> str | None:
    """The permission a route declares: on its handler (permissions.declare) or on one of
    its dependencies (okno.http.require)."""
    found = getattr(route.endpoint, "okno_permission", None)
    if found:
        return str(found)
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        mark = getattr(dep.call, "okno_permission", None)
        if mark:
            return str(mark)
        stack.extend(dep.dependencies)
    return None


def endpoints(app: FastAPI) -> tuple[list[Endpoint], list[str], list[APIWebSocketRoute]]:
    """(declared HTTP endpoints, problems, staff sockets)."""
    found: list[Endpoint] = []
    problems: list[str] = []
    sockets: list[APIWebSocketRoute] = []
    for route in _routes(app):
        if isinstance(route, Mount):
            if route.path not in PUBLIC_MOUNTS:
                problems.append(f"mount {route.path} is neither public nor declared")
            continue
        if isinstance(route, APIWebSocketRoute):
            if route.path in PUBLIC_SOCKETS:
                continue
            if declared_permission(route) is None:
                problems.append(f"WS {route.path} declares no permission")
            sockets.append(route)
            continue
        if not isinstance(route, (APIRoute, Route)):
            problems.append(f"{route!r} is a kind of route this test does not know")
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            key = (method, route.path)
            permission = declared_permission(route) if isinstance(route, APIRoute) else None
            if key in PUBLIC:
                if permission is not None:
                    problems.append(
                        f"{method} {route.path} is listed public but declares {permission}"
                    )
                continue
            if permission is None:
                problems.append(f"{method} {route.path} declares no permission and is not public")
                continue
            is_page = not route.path.startswith(PAGE_PREFIX_EXCLUDED)
            found.append(Endpoint(method, route.path, permission, is_page))
    return found, problems, sockets


def concrete(path: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return "0" * 40 if name == "key" else MISSING_ID

    return re.sub(r"\{([a-z_]+)(?::[a-z]+)?\}", fill, path)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


def make_callers(settings: Settings) -> tuple[list[Caller], dict[str, Caller], dict[str, Caller]]:
    """One account per role (staff token and browser cookie), and for every scope an API
    token holding just it and one holding every other scope."""
    key = settings.signing_key()

    async def seed(session: Any) -> tuple[list[Caller], dict[str, Caller], dict[str, Caller]]:
        team = await operators.get_or_create_team(session, name="Поддержка")
        staff: list[Caller] = []
        for role in INTERACTIVE_ROLES:
            user = await operators.create_user(
                session,
                login=f"matrix-{role}",
                password="",
                password_hash=password_hash(),
                role=role,
                team=team.name if role in ("operator", "senior_operator") else None,
            )
            token = operators.issue_access_token(key, user, minutes=30)
            cookie, _ = sessions.start(key, user_id=user.id, idle_minutes=30)
            staff.append(Caller(role, bearer(token), cookie, ROLE_PERMISSIONS[role]))
        with_scope: dict[str, Caller] = {}
        without_scope: dict[str, Caller] = {}
        for scope in sorted(TOKEN_SCOPES):
            for label, scopes, into in (
                ("with", [scope], with_scope),
                ("without", sorted(TOKEN_SCOPES - {scope}), without_scope),
            ):
                _row, secret = await api_tokens.create_token(
                    session, name=f"matrix {label} {scope}", scopes=scopes, created_by=None
                )
                into[scope] = Caller(
                    f"token {label} {scope}",
                    bearer(secret),
                    None,
                    frozenset(scopes),
                    is_token=True,
                )
        return staff, with_scope, without_scope

    result: tuple[list[Caller], dict[str, Caller], dict[str, Caller]] = in_db(settings, seed)
    return result


def call(client: TestClient, endpoint: Endpoint, caller: Caller | None) -> Any:
    client.cookies.clear()
    headers = dict(caller.headers) if caller and not endpoint.is_page else {}
    if caller and caller.cookie and endpoint.is_page:
        client.cookies.set(sessions.SESSION_COOKIE, caller.cookie)
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if endpoint.method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return client.request(endpoint.method, concrete(endpoint.path), **kwargs)


def verdict(endpoint: Endpoint, caller: Caller | None, response: Any) -> str | None:
    """What is wrong with this answer, or None."""
    status = response.status_code
    if status >= 500:
        return f"server error {status}"
    if endpoint.is_page:
        if caller is None or caller.is_token:
            # pages need a browser session; API tokens never open one
            return None if status == 303 else f"expected the sign-in redirect, got {status}"
        allowed = endpoint.permission in caller.granted
        if allowed:
            return None if status == 200 else f"expected the page, got {status}"
        return None if status == 403 else f"expected 403, got {status}"
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    refused_here = status == 403 and (
        body.get("code") == "forbidden_role"
        and (body.get("fields") or {}).get("permission") == endpoint.permission
    )
    if caller is None:
        return None if status == 401 else f"expected 401 for nobody, got {status}"
    allowed = endpoint.permission in caller.granted
    if allowed:
        if status == 401 or refused_here:
            return f"refused ({status} {body.get('code')}) although the matrix allows it"
        return None
    if not refused_here:
        return f"expected 403 forbidden_role for {endpoint.permission}, got {status} {body}"
    return None


def test_every_route_declares_a_permission_or_is_listed_public(app: FastAPI) -> None:
    found, problems, sockets = endpoints(app)
    assert not problems, "\n".join(problems)
    assert len(found) > 80 and sockets  # the enumeration really saw the app
    unknown = {e.permission for e in found} - set(permissions.PERMISSIONS)
    assert not unknown


def test_every_route_gives_every_caller_what_the_matrix_says(
    app: FastAPI, settings: Settings, staff: Staff
) -> None:
    found, problems, _ = endpoints(app)
    assert not problems, "\n".join(problems)
    staff_callers, with_scope, without_scope = make_callers(settings)
    # "sign out everywhere" ends the caller's own tokens: it is called last
    found.sort(key=lambda e: e.path in SELF_ENDING)
    failures: list[str] = []
    checked = 0
    with TestClient(app) as client:
        for endpoint in found:
            assert endpoint.permission is not None
            callers: list[Caller | None] = [None, *staff_callers]
            if endpoint.permission in TOKEN_SCOPES:
                callers += [with_scope[endpoint.permission], without_scope[endpoint.permission]]
            else:
                # no token can hold it: even one with every scope is refused
                callers.append(with_scope["account.self"])
                callers.append(without_scope["account.self"])
            for caller in callers:
                response = call(client, endpoint, caller)
                checked += 1
                problem = verdict(endpoint, caller, response)
                if problem:
                    who = caller.name if caller else "nobody"
                    failures.append(f"{endpoint.method} {endpoint.path} as {who}: {problem}")
    assert not failures, f"{len(failures)} of {checked} calls:\n" + "\n".join(failures)
    assert checked >= len(found) * 8


def test_the_staff_socket_admits_exactly_who_may_read_dialogs(
    app: FastAPI, settings: Settings, staff: Staff
) -> None:
    _, _, sockets = endpoints(app)
    staff_callers, with_scope, without_scope = make_callers(settings)
    with TestClient(app) as client:
        for route in sockets:
            permission = declared_permission(route)
            assert permission is not None
            callers = [*staff_callers, with_scope[permission], without_scope[permission]]
            for caller in [None, *callers]:
                token = caller.headers["Authorization"].split(" ", 1)[1] if caller else ""
                with client.websocket_connect(f"{route.path}?token={token}") as ws:
                    first = ws.receive_json()
                    if caller is not None and permission in caller.granted:
                        assert first["type"] == "stream.ready", (route.path, caller.name, first)
                        continue
                    assert first["type"] == "stream.error", (route.path, caller, first)
                    expected = "forbidden_role" if caller else "token_missing"
                    assert first["payload"]["code"] == expected, (caller, first)
                    with pytest.raises(WebSocketDisconnect) as closed:
                        ws.receive_json()
                    assert closed.value.code == (4403 if caller else 4401)


def _documented_matrix() -> dict[str, dict[str, bool]]:
    """The "Roles and what each may do" table of docs/security.md: permission -> role ->
    allowed."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Roles and what each may do", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    header = next(line for line in section.splitlines() if line.startswith("| permission"))
    # | permission | what it allows | operator | senior_operator | ...
    roles = [c.strip() for c in header.strip().strip("|").split("|")[2:]]
    table: dict[str, dict[str, bool]] = {}
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        table[name] = {role: cell == "✓" for role, cell in zip(roles, cells[2:], strict=True)}
    return table


def test_the_documented_matrix_is_the_enforced_one() -> None:
    documented = _documented_matrix()
    assert set(documented) == set(permissions.PERMISSIONS)
    for permission, by_role in documented.items():
        assert set(by_role) == set(ROLE_PERMISSIONS), permission
        for role, allowed in by_role.items():
            assert allowed == (permission in ROLE_PERMISSIONS[role]), (permission, role)
