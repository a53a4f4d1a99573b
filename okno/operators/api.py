"""Staff sign-in and directory handlers."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from okno.http import CurrentUser, State, session_cookie_header, write
from okno.operators import presence, service
from okno.operators.models import User
from okno.operators.schemas import (
    BrowserSessionOut,
    PresenceIn,
    PresenceListOut,
    PresenceOut,
    TeamOut,
    TeamsOut,
    TokenRequest,
    TokenResponse,
    UserOut,
    UsersOut,
)
from okno.security import sessions

log = structlog.get_logger("okno.auth")
router = APIRouter(prefix="/api/v1", tags=["staff"])


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        login=user.login,
        name=user.display_name,
        role=user.role,
        team_id=user.team_id,
        capacity=user.capacity,
    )


# Unauthenticated on purpose: this is where a token comes from.
@router.post("/auth/token", response_model=TokenResponse)
async def issue_token(body: TokenRequest, state: State) -> TokenResponse:
    """Exchange login and password for a bearer access token."""
    async with state.db.read() as session:
        try:
            user = await service.authenticate(session, login=body.login, password=body.password)
        except Exception:
            log.info("auth.failed", login_length=len(body.login))
            raise
    log.info("auth.signed_in", user_id=user.id, role=user.role)
    minutes = state.settings.access_token_minutes
    token = service.issue_access_token(state.signing_key, user, minutes=minutes)
    return TokenResponse(access_token=token, expires_in=minutes * 60)


# Unauthenticated on purpose: this is where a browser session comes from.
@router.post("/auth/session", response_model=BrowserSessionOut)
async def open_session(body: TokenRequest, request: Request, state: State) -> JSONResponse:
    """Sign in a browser: sets the HttpOnly session cookie and the CSRF cookie; send the
    CSRF token back in ``X-CSRF-Token`` on every state-changing request."""
    async with state.db.read() as session:
        try:
            user = await service.authenticate(session, login=body.login, password=body.password)
        except Exception:
            log.info("auth.failed", login_length=len(body.login))
            raise
    idle = state.settings.session_idle_minutes
    cookie, csrf = sessions.start(state.signing_key, user_id=user.id, idle_minutes=idle)
    log.info("auth.signed_in", user_id=user.id, role=user.role, kind="browser")
    out = BrowserSessionOut(csrf_token=csrf, expires_in=idle * 60, user=user_out(user))
    response = JSONResponse(out.model_dump(mode="json"))
    secure = request.url.scheme == "https"
    response.headers.append(
        "set-cookie",
        session_cookie_header(sessions.SESSION_COOKIE, cookie, max_age=idle * 60, secure=secure),
    )
    response.headers.append(
        "set-cookie",
        session_cookie_header(
            sessions.CSRF_COOKIE,
            csrf,
            max_age=state.settings.access_token_minutes * 60,
            secure=secure,
            http_only=False,
        ),
    )
    return response


@router.post("/auth/logout", status_code=204)
async def logout(request: Request) -> Response:
    """End the browser session (clears both cookies)."""
    response = Response(status_code=204)
    secure = request.url.scheme == "https"
    for name in (sessions.SESSION_COOKIE, sessions.CSRF_COOKIE):
        response.headers.append(
            "set-cookie", session_cookie_header(name, "", max_age=0, secure=secure)
        )
    return response


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    return user_out(user)


@router.get("/users", response_model=UsersOut)
async def users(user: CurrentUser, state: State) -> UsersOut:
    """Active staff (transfer targets)."""
    async with state.db.read() as session:
        rows = await service.list_users(session)
    return UsersOut(users=[user_out(u) for u in rows])


@router.get("/teams", response_model=TeamsOut)
async def teams(user: CurrentUser, state: State) -> TeamsOut:
    async with state.db.read() as session:
        rows = await service.list_teams(session)
    return TeamsOut(teams=[TeamOut(id=t.id, name=t.name) for t in rows])


def presence_out(v: presence.PresenceView) -> PresenceOut:
    return PresenceOut(
        user_id=v.user_id,
        name=v.name,
        role=v.role,
        team_id=v.team_id,
        status=v.status,
        since=v.since,
        connected=v.connected,
        available=v.available,
    )


@router.put("/me/presence", response_model=PresenceOut)
async def set_presence(body: PresenceIn, user: CurrentUser, state: State) -> PresenceOut:
    """Go online, take a break, or go offline."""

    async def run(session: AsyncSession) -> PresenceOut:
        return presence_out(await presence.set_status(session, user=user, status=body.status))

    return await write(state, run)


@router.get("/presence", response_model=PresenceListOut)
async def list_presence(user: CurrentUser, state: State) -> PresenceListOut:
    """Who is online, on a break or offline, and whose workspace is connected."""
    async with state.db.read() as session:
        rows = await presence.list_presence(session, viewer=user)
    return PresenceListOut(operators=[presence_out(r) for r in rows])
