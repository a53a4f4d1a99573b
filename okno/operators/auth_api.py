"""Sign-in security handlers: password change, TOTP set-up, OpenID Connect sign-in, "sign
out everywhere", and the admins' side (unlock, password reset, 2FA per role, IP
allow-lists for staff sign-in and for API tokens)."""

from __future__ import annotations

import secrets as random
from typing import Annotated
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.errors import Conflict, Forbidden, NotFound, OknoError, Unauthorized, Unprocessable
from okno.http import AppState, State, client_ip, require, session_cookie_header, write
from okno.inputs import IdPath
from okno.operators import directory, oidc, revocation, service, signin, totp
from okno.operators.api import browser_session_response, sign_in_context
from okno.operators.auth_models import OIDC, SignInState, StaffIpAllowEntry, TwoFactorRole
from okno.operators.auth_schemas import (
    Credentials,
    PasswordChange,
    SignInStateOut,
    StaffAllowlist,
    StaffAllowlistOut,
    TemporaryPasswordOut,
    TokenAllowlist,
    TokenAllowlistOut,
    TotpConfirm,
    TotpSetupOut,
    TwoFactorRoles,
)
from okno.operators.models import ApiToken, User
from okno.security import audit, ip_allowlist, permissions, sessions
from okno.web.pages import _safe_next

log = structlog.get_logger("okno.auth")
router = APIRouter(prefix="/api/v1", tags=["sign-in"])


# --- unauthenticated on purpose: these prove who the caller is themselves ----------------


@router.post("/auth/password", status_code=204)
async def change_password(body: PasswordChange, request: Request, state: State) -> Response:
    """Change your password with the current one (and ``otp`` when 2FA is on); also the way
    out of ``password_change_required``. Every token and session of the account ends."""
    await signin.change_password(
        sign_in_context(state),
        login=body.login,
        password=body.password,
        new_password=body.new_password,
        otp=body.otp,
        ip=client_ip(request),
    )
    async with state.db.read() as session:
        user = await session.scalar(select(User).where(User.login == body.login.strip()))
    if user is not None:
        _stop_sockets(state, user.id, "token_revoked")
    return Response(status_code=204)


@router.post("/auth/totp/setup", response_model=TotpSetupOut)
async def totp_setup(body: Credentials, request: Request, state: State) -> TotpSetupOut:
    """Start setting up a second factor: a new secret, shown only in this answer (as text,
    an ``otpauth://`` URI and a QR code). Confirm it with ``/auth/totp/confirm``."""
    secret, uri = await signin.start_totp(
        sign_in_context(state), login=body.login, password=body.password, ip=client_ip(request)
    )
    return TotpSetupOut(secret=secret, otpauth_uri=uri, qr_svg=totp.qr_svg(uri))


@router.post("/auth/totp/confirm", status_code=204)
async def totp_confirm(body: TotpConfirm, request: Request, state: State) -> Response:
    """Turn the second factor on with a code from the app; from now on sign-ins need one."""
    await signin.confirm_totp(
        sign_in_context(state),
        login=body.login,
        password=body.password,
        otp=body.otp,
        ip=client_ip(request),
    )
    return Response(status_code=204)


def _redirect_uri(request: Request, state: AppState) -> str:
    base = state.settings.public_url.rstrip("/") or str(request.base_url).rstrip("/")
    return base + "/api/v1/auth/oidc/callback"


def _to_login_page(request: Request, code: str) -> Response:
    """Back to the sign-in page, which says what went wrong (``?reason=<code>``) in the
    person's language: the browser came here by navigation and must not be shown JSON.
    The flow cookie of the attempt is cleared."""
    response = RedirectResponse(f"/login?reason={quote(code)}", status_code=303)
    response.headers["Cache-Control"] = "no-store"
    response.headers.append(
        "set-cookie",
        session_cookie_header(
            oidc.FLOW_COOKIE, "", max_age=0, secure=request.url.scheme == "https"
        ),
    )
    return response


@router.get("/auth/oidc/login", include_in_schema=True)
async def oidc_login(
    request: Request,
    state: State,
    next: Annotated[str, Query(max_length=2000)] = "/",
) -> Response:
    """Go to the OpenID Connect provider to sign in (404 ``oidc_disabled`` when not set up;
    a provider that does not answer sends the browser back to ``/login?reason=...``)."""
    settings = state.settings
    if not oidc.enabled(settings):
        raise NotFound("OpenID Connect sign-in is not set up", code="oidc_disabled")
    try:
        started = await oidc.start(
            settings,
            state.signing_key,
            redirect_uri=_redirect_uri(request, state),
            next_path=_safe_next(next),
        )
    except OknoError as exc:
        return _to_login_page(request, exc.code)
    response = RedirectResponse(started.url, status_code=303)
    # SameSite=Lax: the provider sends the browser back with a cross-site top-level GET
    cookie = session_cookie_header(
        oidc.FLOW_COOKIE,
        started.cookie,
        max_age=oidc.FLOW_MINUTES * 60,
        secure=request.url.scheme == "https",
    ).replace("SameSite=Strict", "SameSite=Lax")
    response.headers.append("set-cookie", cookie)
    return response


# Refusals the sign-in functions record themselves; every other one is recorded here.
_RECORDED = {"ip_not_allowed", "rate_limited", "oidc_no_role"}


@router.get("/auth/oidc/callback")
async def oidc_callback(
    request: Request,
    state: State,
    code: Annotated[str, Query(max_length=4000)] = "",
    state_param: Annotated[str, Query(alias="state", max_length=500)] = "",
    error: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Where the provider sends the browser back: checks the answer, signs in, moves on.
    A refusal sends the browser to ``/login?reason=<code>`` (``oidc_no_role``,
    ``oidc_failed``, ``oidc_state_mismatch``, ``rate_limited``, ...), which says why."""
    settings = state.settings
    if not oidc.enabled(settings):
        raise NotFound("OpenID Connect sign-in is not set up", code="oidc_disabled")
    ip = client_ip(request)
    try:
        return await _oidc_sign_in(request, state, code=code, state_param=state_param, error=error)
    except OknoError as exc:
        log.warning("auth.oidc_refused", code=exc.code)
        if exc.code not in _RECORDED:
            await audit.record_separately(
                state.db,
                action=audit.AUTH_SIGN_IN,
                actor=audit.Actor(ip=ip),
                outcome="failure",
                details={"kind": "oidc", "reason": exc.code},
            )
        return _to_login_page(request, exc.code)


async def _oidc_sign_in(
    request: Request, state: AppState, *, code: str, state_param: str, error: str
) -> Response:
    settings = state.settings
    ctx = sign_in_context(state)
    ip = client_ip(request)
    # the same per-address limit as password sign-ins: each return costs calls to the
    # provider and, with a valid code, a write
    await signin.limit_attempt(ctx, login=None, ip=ip)
    if error or not code:
        raise Unprocessable(
            f"the sign-in provider did not sign you in ({error or 'no code'})",
            code="oidc_failed",
        )
    flow = oidc.read_flow(state.signing_key, request.cookies.get(oidc.FLOW_COOKIE), state_param)
    await signin.check_network(ctx, login="", ip=ip)
    claims = await oidc.finish(
        settings, code=code, flow=flow, redirect_uri=_redirect_uri(request, state)
    )
    login = str(oidc.claim(claims, settings.oidc_login_claim) or "").strip()
    role = directory.strongest_role(
        oidc.claim_values(claims, settings.oidc_role_claim), settings.oidc_role_map, dn_keys=False
    )
    if not login or len(login) > 100 or any(c.isspace() for c in login) or role is None:
        await audit.record_separately(
            state.db,
            action=audit.AUTH_SIGN_IN,
            actor=audit.Actor(login=login[:100], ip=ip),
            outcome="denied",
            details={"kind": "oidc", "reason": "no_role" if login else "no_login"},
        )
        raise Forbidden(
            "your account at the sign-in provider has no okno role; ask an admin",
            code="oidc_no_role",
        )
    team_values = (
        oidc.claim_values(claims, settings.oidc_team_claim) if settings.oidc_team_claim else []
    )
    name = str(claims.get("name") or login)
    user = await signin.provision(
        ctx,
        source=OIDC,
        external_id=f"{claims['iss']}|{claims['sub']}",
        login=login,
        name=name[:200],
        role=role,
        team=team_values[0][:100] if team_values else None,
    )
    if not user.is_active:
        raise Unauthorized("this account is disabled", code="account_disabled")
    user, generation = await signin.succeeded(ctx, user=user, ip=ip, kind="oidc")
    response = browser_session_response(
        state, request, user, generation, redirect=str(flow.get("next") or "/")
    )
    response.headers.append(
        "set-cookie",
        session_cookie_header(
            oidc.FLOW_COOKIE, "", max_age=0, secure=request.url.scheme == "https"
        ),
    )
    return response


# --- your own sessions -------------------------------------------------------------------


def _stop_sockets(state: AppState, user_id: int, code: str) -> None:
    """Close this process's sockets of the account now (others: at their heartbeat)."""
    for conn in state.hub.staff_connections().get(user_id, set()):
        conn.stop(code, 4401)


@router.post("/me/sign-out-everywhere", status_code=204)
async def sign_out_everywhere(
    user: Annotated[User, require("account.self")], request: Request, state: State
) -> Response:
    """End every token and browser session of your account, this one included."""

    async def run(session: AsyncSession) -> None:
        await revocation.revoke(session, user.id)
        await audit.record(
            session,
            action=signin.SESSIONS_REVOKED,
            actor=audit.actor_of(user, request),
            object_type="user",
            object_id=user.id,
            details={"by": "self"},
        )

    await write(state, run)
    _stop_sockets(state, user.id, "token_revoked")
    response = Response(status_code=204)
    for name in (sessions.SESSION_COOKIE, sessions.CSRF_COOKIE):
        response.headers.append(
            "set-cookie",
            session_cookie_header(name, "", max_age=0, secure=request.url.scheme == "https"),
        )
    return response


# --- administration ----------------------------------------------------------------------

Manager = Annotated[User, require("users.manage")]
Reviewer = Annotated[User, require("users.review")]
AllowlistReader = Annotated[User, require("ip_allowlist.read")]
AllowlistManager = Annotated[User, require("ip_allowlist.manage")]


def state_out(user_id: int, row: SignInState | None) -> SignInStateOut:
    return SignInStateOut(
        user_id=user_id,
        source=row.source if row else "local",
        locked=signin.is_locked(row),
        locked_until=row.locked_until if row and signin.is_locked(row) else None,
        failed_attempts=row.failed_attempts if row else 0,
        totp_enabled=bool(row and row.totp_enabled),
        must_change_password=bool(row and row.must_change_password),
        last_sign_in_at=row.last_sign_in_at if row else None,
        password_changed_at=row.password_changed_at if row else None,
    )


async def _target(session: AsyncSession, actor: User, user_id: int) -> User:
    """The account an admin acts on; an admin's account only by who may manage admins."""
    user = await signin.get_user_or_raise(session, user_id)
    if user.role == "admin":
        service.check_admin_grant(actor)
    return user


@router.get("/users/{user_id}/sign-in", response_model=SignInStateOut)
async def sign_in_state(user_id: IdPath, admin: Reviewer, state: State) -> SignInStateOut:
    """An account's lockout, failed attempts, second factor and last sign-in."""
    async with state.db.read() as session:
        await signin.get_user_or_raise(session, user_id)
        row = await session.get(SignInState, user_id)
    return state_out(user_id, row)


async def _admin_action(
    state: AppState, request: Request, admin: User, user_id: int, action: str, fn: signin.AdminFn
) -> SignInStateOut:
    async def run(session: AsyncSession) -> SignInStateOut:
        await _target(session, admin, user_id)
        row = await fn(session, user_id=user_id)
        await audit.record(
            session,
            action=action,
            actor=audit.actor_of(admin, request),
            object_type="user",
            object_id=user_id,
        )
        return state_out(user_id, row)

    return await write(state, run)


@router.post("/users/{user_id}/unlock", response_model=SignInStateOut)
async def unlock(user_id: IdPath, admin: Manager, request: Request, state: State) -> SignInStateOut:
    """Lift a lockout now."""
    return await _admin_action(
        state, request, admin, user_id, signin.ACCOUNT_UNLOCKED, signin.unlock
    )


@router.post("/users/{user_id}/sign-out-everywhere", response_model=SignInStateOut)
async def revoke_sessions(
    user_id: IdPath, admin: Manager, request: Request, state: State
) -> SignInStateOut:
    """End every token, browser session and open socket of the account."""

    async def revoke(session: AsyncSession, *, user_id: int) -> SignInState:
        await revocation.revoke(session, user_id)
        return await revocation.state_for(session, user_id)

    out = await _admin_action(state, request, admin, user_id, signin.SESSIONS_REVOKED, revoke)
    _stop_sockets(state, user_id, "token_revoked")
    return out


@router.delete("/users/{user_id}/totp", response_model=SignInStateOut)
async def reset_totp(
    user_id: IdPath, admin: Manager, request: Request, state: State
) -> SignInStateOut:
    """Remove the account's second factor (a lost phone); its sessions end."""
    out = await _admin_action(state, request, admin, user_id, signin.TOTP_RESET, signin.reset_totp)
    _stop_sockets(state, user_id, "token_revoked")
    return out


@router.post("/users/{user_id}/password-reset", response_model=TemporaryPasswordOut)
async def reset_password(
    user_id: IdPath, admin: Manager, request: Request, state: State
) -> TemporaryPasswordOut:
    """A temporary password (shown once) that must be changed at the next sign-in; every
    session of the account ends and a lockout is lifted."""
    temporary = "-".join(random.token_urlsafe(6) for _ in range(3)) + "-7"
    new_hash = await service.hash_new_password(temporary, min_length=10, min_classes=1)

    async def run(session: AsyncSession) -> None:
        await _target(session, admin, user_id)
        await signin.reset_password(session, user_id=user_id, new_hash=new_hash)
        await audit.record(
            session,
            action=signin.PASSWORD_RESET,
            actor=audit.actor_of(admin, request),
            object_type="user",
            object_id=user_id,
        )

    await write(state, run)
    _stop_sockets(state, user_id, "token_revoked")
    return TemporaryPasswordOut(temporary_password=temporary)


@router.get("/security/two-factor-roles", response_model=TwoFactorRoles)
async def two_factor_roles(admin: Reviewer, state: State) -> TwoFactorRoles:
    """Roles whose members must sign in with a second factor."""
    async with state.db.read() as session:
        rows = (
            await session.scalars(select(TwoFactorRole.role).order_by(TwoFactorRole.role))
        ).all()
    return TwoFactorRoles(roles=list(rows))


@router.put("/security/two-factor-roles", response_model=TwoFactorRoles)
async def set_two_factor_roles(
    body: TwoFactorRoles, admin: Manager, request: Request, state: State
) -> TwoFactorRoles:
    """Choose the roles that must use a second factor; a member without one is asked to
    set it up at the next sign-in (``totp_enrolment_required``)."""
    wanted = sorted(set(body.roles))
    for role in wanted:
        if role not in permissions.INTERACTIVE_ROLES:
            raise Unprocessable(
                f"unknown role {role!r}; use " + ", ".join(permissions.INTERACTIVE_ROLES),
                code="invalid_role",
                field="roles",
            )

    async def run(session: AsyncSession) -> None:
        await session.execute(delete(TwoFactorRole))
        for role in wanted:
            session.add(TwoFactorRole(role=role, created_at=utcnow()))
        await audit.record(
            session,
            action=signin.TWO_FACTOR_ROLES_CHANGED,
            actor=audit.actor_of(admin, request),
            object_type="security",
            object_id="two_factor_roles",
            details={"roles": wanted},
        )
        await session.flush()

    await write(state, run)
    return TwoFactorRoles(roles=wanted)


def _allowlist_out(rows: list[StaffIpAllowEntry], state: AppState) -> StaffAllowlistOut:
    return StaffAllowlistOut(
        entries=[{"cidr": r.cidr, "note": r.note} for r in rows],
        from_settings=ip_allowlist.normalise(state.settings.signin_ip_allowlist.split(",")),
    )


@router.get("/security/ip-allowlist", response_model=StaffAllowlistOut)
async def staff_allowlist(admin: AllowlistReader, state: State) -> StaffAllowlistOut:
    """Where staff may sign in from (empty: anywhere)."""
    async with state.db.read() as session:
        rows = list(
            (await session.scalars(select(StaffIpAllowEntry).order_by(StaffIpAllowEntry.id))).all()
        )
    return _allowlist_out(rows, state)


@router.put("/security/ip-allowlist", response_model=StaffAllowlistOut)
async def set_staff_allowlist(
    body: StaffAllowlist, admin: AllowlistManager, request: Request, state: State
) -> StaffAllowlistOut:
    """Replace the staff sign-in allow-list. Refused (409 ``allowlist_excludes_you``) when
    it would shut out the address you are asking from: nobody locks the bank out by a typo."""
    entries: dict[str, str] = {}
    for i, entry in enumerate(body.entries):
        try:
            cidr = str(ip_allowlist.parse_network(entry.cidr))
        except ValueError as exc:
            raise Unprocessable(str(exc), code="invalid_cidr", field=f"entries.{i}.cidr") from None
        entries.setdefault(cidr, entry.note)
    networks = ip_allowlist.parse_networks(
        [*entries, *state.settings.signin_ip_allowlist.split(",")]
    )
    ip = client_ip(request)
    if entries and not ip_allowlist.allowed(ip, networks):
        raise Conflict(
            f"the list would not include your own address {ip}; add it first",
            code="allowlist_excludes_you",
        )

    async def run(session: AsyncSession) -> list[StaffIpAllowEntry]:
        await session.execute(delete(StaffIpAllowEntry))
        rows = [StaffIpAllowEntry(cidr=c, note=n, created_at=utcnow()) for c, n in entries.items()]
        session.add_all(rows)
        await audit.record(
            session,
            action=signin.ALLOWLIST_CHANGED,
            actor=audit.actor_of(admin, request),
            object_type="security",
            object_id="staff_ip_allowlist",
            details={"entries": list(entries)},
        )
        await session.flush()
        return rows

    rows = await write(state, run)
    return _allowlist_out(rows, state)


@router.get("/tokens/{token_id}/ip-allowlist", response_model=TokenAllowlistOut)
async def token_allowlist(
    token_id: IdPath, admin: AllowlistReader, state: State
) -> TokenAllowlistOut:
    """Where an API token may be used from (empty: anywhere)."""
    async with state.db.read() as session:
        token = await session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"API token {token_id} does not exist", code="token_not_found")
    return TokenAllowlistOut(token_id=token.id, ip_allowlist=list(token.ip_allowlist or []))


@router.put("/tokens/{token_id}/ip-allowlist", response_model=TokenAllowlistOut)
async def set_token_allowlist(
    token_id: IdPath, body: TokenAllowlist, admin: AllowlistManager, request: Request, state: State
) -> TokenAllowlistOut:
    """Limit an API token to addresses or networks (CIDR); a call from elsewhere gets 403
    ``ip_not_allowed``. An empty list lifts the limit."""
    try:
        cidrs = ip_allowlist.normalise(body.ip_allowlist)
    except ValueError as exc:
        raise Unprocessable(str(exc), code="invalid_cidr", field="ip_allowlist") from None

    async def run(session: AsyncSession) -> TokenAllowlistOut:
        token = await session.get(ApiToken, token_id)
        if token is None:
            raise NotFound(f"API token {token_id} does not exist", code="token_not_found")
        token.ip_allowlist = cidrs
        await audit.record(
            session,
            action=signin.ALLOWLIST_CHANGED,
            actor=audit.actor_of(admin, request),
            object_type="api_token",
            object_id=token.id,
            details={"entries": cidrs},
        )
        await session.flush()
        return TokenAllowlistOut(token_id=token.id, ip_allowlist=cidrs)

    return await write(state, run)
