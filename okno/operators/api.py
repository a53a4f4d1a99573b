"""Staff sign-in, directory and (for admins) user and team administration handlers."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from okno.http import AppState, CurrentUser, State, session_cookie_header, write
from okno.inputs import IdPath
from okno.operators import presence, service
from okno.operators.models import User
from okno.operators.schemas import (
    BrowserSessionOut,
    PresenceIn,
    PresenceListOut,
    PresenceOut,
    TeamIn,
    TeamOut,
    TeamsOut,
    TokenRequest,
    TokenResponse,
    UserCreate,
    UserOut,
    UsersOut,
    UserUpdate,
)
from okno.security import sessions

log = structlog.get_logger("okno.auth")
admin_log = structlog.get_logger("okno.admin")
router = APIRouter(prefix="/api/v1", tags=["staff"])


async def admin_user(user: CurrentUser) -> User:
    """The signed-in user, if an admin. A dependency, so a non-admin gets 403 before the
    body is even validated (no hints about what a valid request would look like)."""
    service.require_admin(user)
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        login=user.login,
        name=user.display_name,
        role=user.role,
        team_id=user.team_id,
        capacity=user.capacity,
        skills=dict(user.skills or {}),
        is_active=user.is_active,
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
async def users(
    user: CurrentUser,
    state: State,
    include_disabled: Annotated[
        bool, Query(alias="all", description="Also disabled accounts (admins only).")
    ] = False,
) -> UsersOut:
    """Active staff (transfer targets); with ``all=true`` admins also get disabled ones."""
    if include_disabled:
        service.require_admin(user, "list disabled accounts")
    async with state.db.read() as session:
        rows = await service.list_users(session, include_disabled=include_disabled)
    return UsersOut(users=[user_out(u) for u in rows])


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(body: UserCreate, admin: AdminUser, state: State) -> UserOut:
    """Create a staff account (admins)."""
    password_hash = await service.hash_new_password(body.password)

    async def run(session: AsyncSession) -> UserOut:
        created = await service.add_user(
            session,
            login=body.login,
            name=body.name,
            password_hash=password_hash,
            role=body.role,
            team_id=body.team_id,
            capacity=body.capacity,
            skills=body.skills,
        )
        return user_out(created)

    out = await write(state, run)
    admin_log.info(
        "admin.user_created",
        actor_id=admin.id,
        user_id=out.id,
        role=out.role,
        team_id=out.team_id,
    )
    return out


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(user_id: IdPath, body: UserUpdate, admin: AdminUser, state: State) -> UserOut:
    """Change a staff account (admins): name, role, team, capacity, skills, on/off,
    password."""
    changes: dict[str, Any] = body.model_dump(include=body.model_fields_set, exclude={"password"})
    if body.password is not None:
        changes["password_hash"] = await service.hash_new_password(body.password)

    async def run(session: AsyncSession) -> tuple[UserOut, list[str]]:
        updated, changed = await service.update_user(
            session, actor=admin, user_id=user_id, changes=changes
        )
        return user_out(updated), changed

    out, changed = await write(state, run)
    admin_log.info("admin.user_updated", actor_id=admin.id, user_id=out.id, changed=changed)
    _refresh_sockets(state, out, changed)
    return out


def _refresh_sockets(state: AppState, user: UserOut, changed: list[str]) -> None:
    """Open workspace sockets of this process carry the role and team they were opened
    with: a disabled account is cut off now (not at the next heartbeat), and a new role or
    team makes the client reconnect and catch up under its new visibility."""
    conns = state.hub.staff_connections().get(user.id, set())
    for conn in conns:
        if not user.is_active:
            conn.stop("account_disabled", 4401)
        elif "role" in changed or "team_id" in changed:
            conn.ask_resync()


@router.get("/teams", response_model=TeamsOut)
async def teams(user: CurrentUser, state: State) -> TeamsOut:
    async with state.db.read() as session:
        rows = await service.list_teams(session)
    return TeamsOut(teams=[TeamOut(id=t.id, name=t.name) for t in rows])


@router.post("/teams", response_model=TeamOut, status_code=201)
async def create_team(body: TeamIn, admin: AdminUser, state: State) -> TeamOut:
    """Create a team (admins)."""

    async def run(session: AsyncSession) -> TeamOut:
        team = await service.add_team(session, name=body.name)
        return TeamOut(id=team.id, name=team.name)

    out = await write(state, run)
    admin_log.info("admin.team_created", actor_id=admin.id, team_id=out.id)
    return out


@router.patch("/teams/{team_id}", response_model=TeamOut)
async def rename_team(team_id: IdPath, body: TeamIn, admin: AdminUser, state: State) -> TeamOut:
    """Rename a team (admins)."""

    async def run(session: AsyncSession) -> TeamOut:
        team = await service.rename_team(session, team_id=team_id, name=body.name)
        return TeamOut(id=team.id, name=team.name)

    out = await write(state, run)
    admin_log.info("admin.team_updated", actor_id=admin.id, team_id=out.id)
    return out


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
