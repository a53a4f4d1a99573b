"""Staff sign-in, directory and (for admins) user and team administration handlers."""

from __future__ import annotations

import html
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from okno.errors import OknoError
from okno.http import AppState, State, client_ip, require, session_cookie_header, write
from okno.inputs import IdPath
from okno.operators import presence, revocation, service, signin
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
from okno.security import audit, permissions, sessions

log = structlog.get_logger("okno.auth")
admin_log = structlog.get_logger("okno.admin")
router = APIRouter(prefix="/api/v1", tags=["staff"])


# A dependency, so someone without the permission gets 403 before the body is even
# validated (no hints about what a valid request would look like).
AdminUser = Annotated[User, require("users.manage")]


def sign_in_context(state: AppState) -> signin.Context:
    return signin.Context(
        db=state.db, settings=state.settings, buckets=state.limits, signing_key=state.signing_key
    )


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
async def issue_token(body: TokenRequest, request: Request, state: State) -> TokenResponse:
    """Exchange login and password (and ``otp`` when the account has a second factor) for a
    bearer access token. Every refusal before the password is proven is 401
    ``bad_credentials``; 429 ``rate_limited`` with Retry-After when attempts come too fast;
    403 ``ip_not_allowed`` outside the staff allow-list."""
    user, generation = await signin.sign_in(
        sign_in_context(state),
        login=body.login,
        password=body.password,
        otp=body.otp,
        ip=client_ip(request),
        kind="token",
    )
    minutes = state.settings.access_token_minutes
    token = service.issue_access_token(
        state.signing_key, user, minutes=minutes, generation=generation
    )
    return TokenResponse(access_token=token, expires_in=minutes * 60)


# Unauthenticated on purpose: this is where a browser session comes from.
@router.post("/auth/session", response_model=BrowserSessionOut)
async def open_session(body: TokenRequest, request: Request, state: State) -> Response:
    """Sign in a browser: sets the HttpOnly session cookie and the CSRF cookie; send the
    CSRF token back in ``X-CSRF-Token`` on every state-changing request. The same checks
    and answers as ``/auth/token``."""
    user, generation = await signin.sign_in(
        sign_in_context(state),
        login=body.login,
        password=body.password,
        otp=body.otp,
        ip=client_ip(request),
        kind="browser",
    )
    return browser_session_response(state, request, user, generation)


def browser_session_response(
    state: AppState, request: Request, user: User, generation: int, *, redirect: str = ""
) -> Response:
    """The response that starts a browser session: JSON for the sign-in page, or (after an
    OpenID provider sent the browser back) a page that moves on to ``redirect``."""
    idle = state.settings.session_idle_minutes
    cookie, csrf = sessions.start(
        state.signing_key, user_id=user.id, idle_minutes=idle, generation=generation
    )
    out = BrowserSessionOut(csrf_token=csrf, expires_in=idle * 60, user=user_out(user))
    response: Response = JSONResponse(out.model_dump(mode="json"))
    if redirect:
        # A page, not a 303: the browser arrived here from the provider's site, and a
        # SameSite=Strict cookie set now is sent only on a navigation this page starts.
        target = html.escape(redirect, quote=True)
        response = HTMLResponse(
            f'<!doctype html><meta http-equiv="refresh" content="0;url={target}">'
            f'<a href="{target}">okno</a>',
            headers={"Cache-Control": "no-store"},
        )
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
            max_age=state.settings.session_max_minutes * 60,
            secure=secure,
            http_only=False,
        ),
    )
    return response


@router.post("/auth/logout", status_code=204)
async def logout(request: Request) -> Response:
    """End the browser session (clears both cookies). With a session cookie the request
    must carry its CSRF token like every other cookie-authenticated change: another site
    cannot sign an operator out mid-dialog. A live session's end is recorded as
    ``auth.sign_out``."""
    state: AppState = request.app.state.okno
    cookie = request.cookies.get(sessions.SESSION_COOKIE)
    if cookie:
        try:
            browser = sessions.read(
                state.signing_key, cookie, max_minutes=state.settings.session_max_minutes
            )
        except OknoError:
            browser = None  # an expired or broken session: clearing it is harmless
        if browser is not None:
            sessions.check_csrf(browser, request.method, request.headers.get(sessions.CSRF_HEADER))
            await _record_sign_out(state, browser, client_ip(request))
    response = Response(status_code=204)
    secure = request.url.scheme == "https"
    for name in (sessions.SESSION_COOKIE, sessions.CSRF_COOKIE):
        response.headers.append(
            "set-cookie", session_cookie_header(name, "", max_age=0, secure=secure)
        )
    return response


async def _record_sign_out(state: AppState, browser: sessions.BrowserSession, ip: str) -> None:
    """``auth.sign_out`` for a session that was still live (not one already revoked)."""
    async with state.db.read() as session:
        user = await session.get(User, browser.user_id)
        if user is None or await revocation.generation(session, user.id) != browser.generation:
            return
    await audit.record_separately(
        state.db,
        action=audit.AUTH_SIGN_OUT,
        actor=audit.Actor.of(user, ip=ip),
        object_type="user",
        object_id=user.id,
        details={"kind": "browser"},
    )
    log.info("auth.signed_out", user_id=user.id)


@router.get("/me", response_model=UserOut)
async def me(user: Annotated[User, require("account.self")]) -> UserOut:
    """Your own account (with an API token: its integration account)."""
    return user_out(user)


@router.get("/users", response_model=UsersOut)
async def users(
    user: Annotated[User, require("users.read")],
    state: State,
    include_disabled: Annotated[
        bool, Query(alias="all", description="Also disabled accounts (admins only).")
    ] = False,
) -> UsersOut:
    """Active staff (transfer targets); with ``all=true`` (``users.review``: admins,
    security officers, auditors) every account, disabled ones and API tokens' included."""
    if include_disabled:
        permissions.check(user, "users.review", "list disabled accounts")
    async with state.db.read() as session:
        rows = await service.list_users(session, include_disabled=include_disabled)
    return UsersOut(users=[user_out(u) for u in rows])


@router.post("/users", response_model=UserOut, status_code=201)
async def create_user(
    body: UserCreate, admin: AdminUser, state: State, request: Request
) -> UserOut:
    """Create a staff account (admins)."""
    password_hash = await service.hash_new_password(
        body.password,
        login=body.login,
        min_length=state.settings.password_min_length,
        min_classes=state.settings.password_min_classes,
    )

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
            actor=admin,
        )
        await audit.record(
            session,
            action=audit.USER_CREATED,
            actor=audit.actor_of(admin, request),
            object_type="user",
            object_id=created.id,
            details={"login": created.login, "role": created.role, "team_id": created.team_id},
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
async def update_user(
    user_id: IdPath, body: UserUpdate, admin: AdminUser, state: State, request: Request
) -> UserOut:
    """Change a staff account (admins): name, role, team, capacity, skills, on/off,
    password."""
    changes: dict[str, Any] = body.model_dump(include=body.model_fields_set, exclude={"password"})
    if body.password is not None:
        async with state.db.read() as session:
            target = await session.get(User, user_id)
            if target is not None:
                await service.check_password_is_ours(session, target.id)
        changes["password_hash"] = await service.hash_new_password(
            body.password,
            login=target.login if target else "",
            min_length=state.settings.password_min_length,
            min_classes=state.settings.password_min_classes,
        )

    async def run(session: AsyncSession) -> tuple[UserOut, list[str]]:
        updated, changed = await service.update_user(
            session, actor=admin, user_id=user_id, changes=changes
        )
        who = audit.actor_of(admin, request)
        await audit.record(
            session,
            action=audit.USER_UPDATED,
            actor=who,
            object_type="user",
            object_id=updated.id,
            details={"changed": sorted(changed), "is_active": updated.is_active},
        )
        if "role" in changed or "team_id" in changed:
            await audit.record(
                session,
                action=audit.USER_ROLE_CHANGED,
                actor=who,
                object_type="user",
                object_id=updated.id,
                details={"role": updated.role, "team_id": updated.team_id},
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
        elif "password" in changed:  # the credential the socket was opened with is revoked
            conn.stop("token_revoked", 4401)
        elif "role" in changed or "team_id" in changed:
            conn.ask_resync()


@router.get("/teams", response_model=TeamsOut)
async def teams(user: Annotated[User, require("users.read")], state: State) -> TeamsOut:
    async with state.db.read() as session:
        rows = await service.list_teams(session)
    return TeamsOut(teams=[TeamOut(id=t.id, name=t.name) for t in rows])


@router.post("/teams", response_model=TeamOut, status_code=201)
async def create_team(body: TeamIn, admin: AdminUser, state: State, request: Request) -> TeamOut:
    """Create a team (admins)."""

    async def run(session: AsyncSession) -> TeamOut:
        team = await service.add_team(session, name=body.name)
        await audit.record(
            session,
            action=audit.TEAM_CREATED,
            actor=audit.actor_of(admin, request),
            object_type="team",
            object_id=team.id,
        )
        return TeamOut(id=team.id, name=team.name)

    out = await write(state, run)
    admin_log.info("admin.team_created", actor_id=admin.id, team_id=out.id)
    return out


@router.patch("/teams/{team_id}", response_model=TeamOut)
async def rename_team(
    team_id: IdPath, body: TeamIn, admin: AdminUser, state: State, request: Request
) -> TeamOut:
    """Rename a team (admins)."""

    async def run(session: AsyncSession) -> TeamOut:
        team = await service.rename_team(session, team_id=team_id, name=body.name)
        await audit.record(
            session,
            action=audit.TEAM_UPDATED,
            actor=audit.actor_of(admin, request),
            object_type="team",
            object_id=team.id,
            details={"changed": ["name"]},
        )
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
async def set_presence(
    body: PresenceIn, user: Annotated[User, require("presence.set")], state: State
) -> PresenceOut:
    """Go online, take a break, or go offline."""

    async def run(session: AsyncSession) -> PresenceOut:
        return presence_out(await presence.set_status(session, user=user, status=body.status))

    return await write(state, run)


@router.get("/presence", response_model=PresenceListOut)
async def list_presence(
    user: Annotated[User, require("users.read")], state: State
) -> PresenceListOut:
    """Who is online, on a break or offline, and whose workspace is connected."""
    async with state.db.read() as session:
        rows = await presence.list_presence(session, viewer=user)
    return PresenceListOut(operators=[presence_out(r) for r in rows])
