"""HTTP plumbing shared by every domain's handlers: app state, auth dependencies, the one
error shape, the request-size guard and the write helper that retries racing inserts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from okno.bot.service import KnowledgeBase
from okno.bus.base import Bus
from okno.channels.service import ChannelCache
from okno.db.base import utcnow
from okno.db.session import Database
from okno.errors import Forbidden, OknoError, PayloadTooLarge, Unauthorized
from okno.events.hub import Hub
from okno.jobs.worker import Worker
from okno.observability import Metrics
from okno.operators import api_tokens, revocation
from okno.operators.models import User
from okno.operators.service import user_from_token
from okno.security import ip_allowlist, permissions, ratelimit, sessions, tokens
from okno.settings import Settings

log = structlog.get_logger("okno.http")
T = TypeVar("T")


@dataclass
class AppState:
    settings: Settings
    db: Database
    bus: Bus
    hub: Hub
    metrics: Metrics
    signing_key: str
    channels: ChannelCache = field(default_factory=ChannelCache)
    kb: KnowledgeBase = field(default_factory=KnowledgeBase)
    worker: Worker | None = None
    # sign-in and widget rate limits (in Redis when OKNO_REDIS_URL is set)
    limits: ratelimit.Buckets = field(default_factory=ratelimit.MemoryBuckets)


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.okno
    return state


def ws_state(websocket: WebSocket) -> AppState:
    state: AppState = websocket.app.state.okno
    return state


State = Annotated[AppState, Depends(get_state)]


def client_ip(connection: Request | WebSocket) -> str:
    """The client's address: uvicorn (``okno serve``) has already replaced the peer by the
    ``X-Forwarded-For`` address when the peer is one of OKNO_TRUSTED_PROXIES."""
    return connection.client.host if connection.client else ""


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "send the token as 'Authorization: Bearer <token>'", code="token_missing"
        )
    return token.strip()


async def current_user(request: Request, state: State) -> User:
    """The signed-in staff user: a bearer access token, or the browser session cookie
    (then state-changing requests must carry the CSRF header)."""
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    if cookie and not request.headers.get("authorization"):
        browser = sessions.read(
            state.signing_key, cookie, max_minutes=state.settings.session_max_minutes
        )
        sessions.check_csrf(browser, request.method, request.headers.get(sessions.CSRF_HEADER))
        renewed = sessions.renew(
            state.signing_key, browser, idle_minutes=state.settings.session_idle_minutes
        )
        if renewed:
            request.state.renewed_session = renewed
        async with state.db.read() as session:
            user = await session.get(User, browser.user_id)
            if user is not None:
                await revocation.check(session, user.id, browser.generation)
        if user is None or not user.is_active:
            raise Unauthorized("this account is disabled", code="account_disabled")
        return user
    token = bearer_token(request)
    if api_tokens.is_api_token(token):
        return await api_token_principal(state, token, ip=client_ip(request))
    async with state.db.read() as session:
        return await user_from_token(session, key=state.signing_key, token=token)


async def api_token_principal(state: AppState, secret: str, *, ip: str) -> User:
    """The integration principal of an API token (401 when unknown, revoked or expired;
    403 ``ip_not_allowed`` from outside the token's IP allow-list), noting when the token
    was last used."""
    async with state.db.read() as session:
        token = await api_tokens.find_token(session, secret)
        ip_allowlist.check(
            ip,
            ip_allowlist.parse_networks(token.ip_allowlist or []),
            what="this API token",
            code="ip_not_allowed",
        )
        user = await api_tokens.principal_for(session, token)
    now = utcnow()
    if api_tokens.needs_last_used(token, now):
        async with state.db.transaction() as session:
            await api_tokens.touch(session, token_id=token.id, now=now)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require(permission: str) -> Any:
    """A dependency giving the signed-in principal if it holds ``permission``, else 403
    ``forbidden_role`` before the request body is even validated. Every staff route
    declares its permission this way (the route × role test reads ``okno_permission``)::

        async def handler(user: Annotated[User, require("customers.read")]) -> ...
    """
    if permission not in permissions.PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")

    async def dependency(user: CurrentUser) -> User:
        try:
            permissions.check(user, permission)
        except Forbidden:
            log.warning("access.denied", user_id=user.id, role=user.role, permission=permission)
            raise
        return user

    dependency.okno_permission = permission  # type: ignore[attr-defined]
    return Depends(dependency)


async def write(state: AppState, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``fn`` in one transaction, retrying lost races (`Database.write`)."""
    return await state.db.write(fn)


def install_error_handlers(app: FastAPI) -> None:
    """One JSON error shape: ``{"detail": str, "code": str, "fields"?: {...}}``."""

    @app.exception_handler(OknoError)
    async def _okno(request: Request, exc: OknoError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, ratelimit.RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse(exc.to_dict(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                {"detail": "the request body is not valid JSON", "code": "malformed_json"},
                status_code=400,
            )
        problems = []
        for e in errors:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            limits = {
                k: v
                for k, v in (e.get("ctx") or {}).items()
                if k in ("min_length", "max_length", "ge", "le", "gt", "lt")
            }
            problems.append(
                {
                    "field": loc,
                    "problem": e.get("msg", "invalid"),
                    "type": e.get("type", ""),
                    **limits,
                }
            )
        summary = "; ".join(f"{p['field'] or 'body'}: {p['problem']}" for p in problems)
        return JSONResponse(
            {"detail": summary, "code": "invalid_request", "fields": {"errors": problems}},
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return JSONResponse(
            {"detail": str(exc.detail), "code": codes.get(exc.status_code, "http_error")},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("http.unhandled", path=request.url.path, error=type(exc).__name__, exc_info=exc)
        return JSONResponse(
            {"detail": "internal error; it was logged", "code": "internal"}, status_code=500
        )


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes before reading them into memory."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _reject(send, self.limit)
                    return
        seen = 0

        async def limited_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await _reject(send, self.limit)


class _TooLarge(Exception):
    pass


async def _reject(send: Send, limit: int) -> None:
    body = PayloadTooLarge(
        f"the request is larger than {limit // (1024 * 1024)} MB", code="request_too_large"
    ).to_dict()
    response = JSONResponse(body, status_code=413)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(k.encode(), v.encode()) for k, v in response.headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def session_cookie_header(
    name: str, value: str, *, max_age: int, secure: bool, http_only: bool = True
) -> str:
    parts = [f"{name}={value}", "Path=/", f"Max-Age={max_age}", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


async def staff_from_socket(
    websocket: WebSocket, state: AppState, token: str
) -> tuple[User, float]:
    """The staff user of a WebSocket and when their credential runs out (epoch seconds):
    the ``token`` query parameter, or the session cookie when the page that opened it is
    on our own origin (no cross-site socket hijacking)."""
    cookie = websocket.cookies.get(sessions.SESSION_COOKIE)
    if not token and cookie:
        origin = websocket.headers.get("origin", "")
        host = websocket.headers.get("host", "")
        if not origin or origin.split("://", 1)[-1] != host:
            raise Forbidden(
                "a cookie session opens sockets only from okno's own pages",
                code="origin_not_allowed",
            )
        browser = sessions.read(
            state.signing_key, cookie, max_minutes=state.settings.session_max_minutes
        )
        async with state.db.read() as session:
            user = await session.get(User, browser.user_id)
            if user is not None:
                await revocation.check(session, user.id, browser.generation)
        if user is None or not user.is_active:
            raise Unauthorized("this account is disabled", code="account_disabled")
        ends = browser.signed_in_at.timestamp() + state.settings.session_max_minutes * 60
        return user, ends
    if api_tokens.is_api_token(token):
        user = await api_token_principal(state, token, ip=client_ip(websocket))
        async with state.db.read() as session:
            row = await api_tokens.find_token(session, token)
        # a token without an expiry streams until it is revoked (its account is then off)
        return user, row.expires_at.timestamp() if row.expires_at else float("inf")
    async with state.db.read() as session:
        user = await user_from_token(session, key=state.signing_key, token=token)
    claims = tokens.verify(state.signing_key, token, typ=tokens.STAFF)
    return user, float(claims["exp"])
