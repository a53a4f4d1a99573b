"""Signing staff in: rate limits, the sign-in IP allow-list, lockout, the password (okno's
own or the LDAP directory's), the TOTP second factor and the forced password change, with
every outcome in the audit log.

Every refusal before the password is proven gives one answer, 401 ``bad_credentials``,
whether the login does not exist, the password is wrong or the account is locked: the
response never tells an outsider which logins exist (the security officer sees the lock in
the audit log and the admin page). Only after the password is proven may the answer say
more (``otp_required``, ``totp_enrolment_required``, ``password_change_required``).

argon2 and LDAP binds run before any write transaction opens (SQLite holds one writer at a
time), each outcome is then written in a short transaction of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.db.session import Database
from okno.errors import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from okno.operators import directory, revocation, service, totp
from okno.operators.auth_models import (
    LDAP,
    LOCAL,
    OIDC,
    SignInState,
    StaffIpAllowEntry,
    TwoFactorRole,
)
from okno.operators.models import User
from okno.security import audit, ip_allowlist, password_policy, ratelimit, secrets
from okno.security.passwords import hash_password, verify_password
from okno.security.permissions import INTERACTIVE_ROLES
from okno.settings import Settings

log = structlog.get_logger("okno.auth")
# Actions of sign-in security in the audit log (beside audit.AUTH_SIGN_IN, AUTH_LOCKED)
PASSWORD_CHANGED = "auth.password_changed"
PASSWORD_RESET = "auth.password_reset"
ACCOUNT_UNLOCKED = "auth.unlocked"
SESSIONS_REVOKED = "auth.sessions_revoked"
TOTP_ENROLLED = "auth.totp_enrolled"
TOTP_RESET = "auth.totp_reset"
ALLOWLIST_CHANGED = "security.ip_allowlist_changed"
TWO_FACTOR_ROLES_CHANGED = "security.two_factor_roles_changed"
BAD_CREDENTIALS = "wrong login or password"
NO_PASSWORD = "!external"  # accounts whose password lives in the directory or the provider


AdminFn = Callable[..., Awaitable[SignInState]]


@dataclass(frozen=True)
class Context:
    """What a sign-in needs from the running app."""

    db: Database
    settings: Settings
    buckets: ratelimit.Buckets
    signing_key: str


@dataclass(frozen=True)
class Proven:
    """An account whose password was just proven, with its sign-in row as read."""

    user: User
    state: SignInState


def _bad() -> Unauthorized:
    return Unauthorized(BAD_CREDENTIALS, code="bad_credentials")


async def _audit(
    ctx: Context,
    action: str,
    *,
    user: User | None,
    login: str,
    ip: str,
    outcome: str,
    **details: Any,
) -> None:
    actor = (
        audit.Actor.of(user, ip=ip) if user is not None else audit.Actor(login=login[:100], ip=ip)
    )
    try:
        await audit.record_separately(
            ctx.db,
            action=action,
            actor=actor,
            object_type="user",
            object_id=user.id if user else "",
            outcome=outcome,
            details=details,
        )
    except Exception as exc:  # the refusal stands even if its record cannot be written
        log.error("auth.audit_failed", action=action, error=type(exc).__name__)


async def staff_networks(session: AsyncSession, settings: Settings) -> list[ip_allowlist.Network]:
    """The staff sign-in allow-list: the setting's entries and the admins' list."""
    rows = (await session.scalars(select(StaffIpAllowEntry.cidr))).all()
    return ip_allowlist.parse_networks([*settings.signin_ip_allowlist.split(","), *rows])


async def check_network(ctx: Context, *, login: str, ip: str) -> None:
    """403 ``ip_not_allowed`` for a sign-in from outside the staff allow-list."""
    async with ctx.db.read() as session:
        networks = await staff_networks(session, ctx.settings)
    if not ip_allowlist.allowed(ip, networks):
        await _audit(
            ctx,
            audit.AUTH_SIGN_IN,
            user=None,
            login=login,
            ip=ip,
            outcome="denied",
            reason="ip_not_allowed",
        )
        raise Forbidden("staff sign-in is not allowed from this address", code="ip_not_allowed")


async def limit_attempt(ctx: Context, *, login: str | None, ip: str) -> None:
    """429 ``rate_limited`` when sign-in attempts come too fast from this address or (when
    the login is known) for this login, whatever its letter case; recorded as denied."""
    s = ctx.settings
    try:
        await ratelimit.limit(
            ctx.buckets,
            scope="signin_ip",
            key=ip or "-",
            per_minute=s.signin_per_ip_per_minute,
            what="sign-in attempts from this address",
        )
        if login is not None:
            await ratelimit.limit(
                ctx.buckets,
                scope="signin_login",
                key=login.casefold(),
                per_minute=s.signin_per_login_per_minute,
                what="sign-in attempts for this login",
            )
    except ratelimit.RateLimited as exc:
        await _audit(
            ctx,
            audit.AUTH_SIGN_IN,
            user=None,
            login=login or "",
            ip=ip,
            outcome="denied",
            reason=exc.code,
        )
        raise


def is_locked(row: SignInState | None) -> bool:
    if row is None or row.locked_at is None:
        return False
    return row.locked_until is None or row.locked_until > utcnow()


async def _failed(ctx: Context, *, user: User, login: str, ip: str, reason: str) -> None:
    """Count a failed attempt on an existing account; lock it at the threshold."""
    s = ctx.settings
    locked = False
    async with ctx.db.transaction() as session:
        row = await revocation.state_for(session, user.id)
        if row.locked_at is not None and not is_locked(row):  # an old lock ran out
            row.locked_at = row.locked_until = None
            row.failed_attempts = 0
        row.failed_attempts += 1
        if (
            s.lockout_attempts
            and row.failed_attempts >= s.lockout_attempts
            and row.locked_at is None
        ):
            now = utcnow()
            row.locked_at = now
            row.locked_until = (
                now + timedelta(minutes=s.lockout_minutes) if s.lockout_minutes else None
            )
            locked = True
        attempts = row.failed_attempts
    await _audit(
        ctx,
        audit.AUTH_SIGN_IN,
        user=user,
        login=login,
        ip=ip,
        outcome="failure",
        reason=reason,
        attempts=attempts,
    )
    if locked:
        log.warning("auth.locked", user_id=user.id, minutes=s.lockout_minutes or None)
        await _audit(
            ctx,
            audit.AUTH_LOCKED,
            user=user,
            login=login,
            ip=ip,
            outcome="locked",
            attempts=attempts,
            minutes=s.lockout_minutes or "until unlocked",
        )


async def _refuse_unusable(
    ctx: Context, *, user: User, row: SignInState | None, password: str, ip: str
) -> None:
    """401 ``bad_credentials`` for a switched-off or locked account (after as long as a
    password check takes), recorded with the real reason."""
    if not user.is_active or user.role not in INTERACTIVE_ROLES:
        reason, outcome = "disabled", "failure"
    elif is_locked(row):
        reason, outcome = "locked", "locked"
    else:
        return
    await asyncio.to_thread(verify_password, None, password)  # same time as a real check
    await _audit(
        ctx, audit.AUTH_SIGN_IN, user=user, login=user.login, ip=ip, outcome=outcome, reason=reason
    )
    raise _bad()


async def prove_password(ctx: Context, *, login: str, password: str, ip: str) -> Proven:
    """The account whose login and password these are (after rate limits, the allow-list
    and the lockout); raises 401 ``bad_credentials`` for every kind of "no"."""
    login = login.strip()
    await limit_attempt(ctx, login=login, ip=ip)
    await check_network(ctx, login=login, ip=ip)
    async with ctx.db.read() as session:
        user = await session.scalar(select(User).where(User.login == login))
        row = await session.get(SignInState, user.id) if user else None
    source = row.source if row else LOCAL
    if (user is None or source == LDAP) and directory.enabled(ctx.settings):
        # the directory decides who the login is (whatever its letter case), and the
        # lockout of that person's okno account applies before their password is tried
        return await _directory_sign_in(
            ctx, user=user, row=row, login=login, password=password, ip=ip
        )
    if user is not None:
        await _refuse_unusable(ctx, user=user, row=row, password=password, ip=ip)
    if user is None or source != LOCAL:
        await asyncio.to_thread(verify_password, None, password)
        await _audit(
            ctx,
            audit.AUTH_SIGN_IN,
            user=user,
            login=login,
            ip=ip,
            outcome="failure",
            reason="unknown_login" if user is None else f"{source}_account",
        )
        raise _bad()
    # argon2 takes ~0.1-0.2 s of CPU by design: in a thread, so a burst of sign-ins does
    # not freeze every socket of the process
    if not await asyncio.to_thread(verify_password, user.password_hash, password):
        await _failed(ctx, user=user, login=login, ip=ip, reason="password")
        raise _bad()
    async with ctx.db.transaction() as session:
        row = await revocation.state_for(session, user.id)
    return Proven(user=user, state=row)


async def _directory_account(ctx: Context, dn: str) -> tuple[User | None, SignInState | None]:
    """The okno account made for this directory entry (by its DN), with its sign-in row."""
    async with ctx.db.read() as session:
        row = await session.scalar(
            select(SignInState).where(
                SignInState.source == LDAP, SignInState.external_id == directory.norm_dn(dn)
            )
        )
        user = await session.get(User, row.user_id) if row else None
    return user, row if user else None


async def _directory_sign_in(
    ctx: Context,
    *,
    user: User | None,
    row: SignInState | None,
    login: str,
    password: str,
    ip: str,
) -> Proven:
    """Find the person in the directory, check their okno account's lock, bind with the
    password; create or refresh the okno account from their groups.

    ``user`` is the directory account whose okno login is exactly what was typed, if any."""
    s = ctx.settings
    found = await asyncio.to_thread(directory.find, s, login)
    if found is None:
        if user is not None:  # an okno directory account the directory no longer knows
            await _refuse_unusable(ctx, user=user, row=row, password=password, ip=ip)
            await _failed(ctx, user=user, login=user.login, ip=ip, reason="not_in_directory")
        else:
            await _audit(
                ctx,
                audit.AUTH_SIGN_IN,
                user=None,
                login=login,
                ip=ip,
                outcome="failure",
                reason="unknown_login",
            )
        raise _bad()
    account, account_row = await _directory_account(ctx, found.dn)
    if account is not None:
        await _refuse_unusable(ctx, user=account, row=account_row, password=password, ip=ip)
    if not await asyncio.to_thread(directory.password_ok, s, found.dn, password):
        if account is not None:
            await _failed(
                ctx, user=account, login=account.login, ip=ip, reason="directory_password"
            )
        else:  # in the directory, never signed in to okno: no account to count on
            await _audit(
                ctx,
                audit.AUTH_SIGN_IN,
                user=None,
                login=found.login,
                ip=ip,
                outcome="failure",
                reason="directory_password",
            )
        raise _bad()
    role = directory.strongest_role(found.groups, s.ldap_role_groups, dn_keys=True)
    team = directory.team_of(found.groups, s.ldap_team_groups)
    if role is None:
        if account is not None:  # taken out of every okno group: end what they still hold
            async with ctx.db.transaction() as session:
                await revocation.revoke(session, account.id)
        await _audit(
            ctx,
            audit.AUTH_SIGN_IN,
            user=account,
            login=found.login,
            ip=ip,
            outcome="denied",
            reason="no_directory_role",
        )
        raise Forbidden(
            "your directory account is in no group that gives access to okno; ask an admin",
            code="directory_no_role",
        )
    account = await provision(
        ctx,
        source=LDAP,
        external_id=directory.norm_dn(found.dn),
        login=found.login,
        name=found.name,
        role=role,
        team=team,
    )
    async with ctx.db.read() as session:
        state = await session.get(SignInState, account.id)
    assert state is not None
    return Proven(user=account, state=state)


async def provision(
    ctx: Context,
    *,
    source: str,
    external_id: str,
    login: str,
    name: str,
    role: str,
    team: str | None,
) -> User:
    """The okno account of a directory or OpenID user: created at first sign-in, its name,
    role and team refreshed at every one. A local account with the same login is never
    taken over (409 ``login_taken``)."""

    async def run(session: AsyncSession) -> User:
        row = await session.scalar(
            select(SignInState).where(SignInState.external_id == external_id)
        )
        user = await session.get(User, row.user_id) if row else None
        if user is None:
            taken = await session.scalar(select(User).where(User.login == login))
            if taken is not None:
                raise Conflict(
                    f"the login {login!r} belongs to another okno account", code="login_taken"
                )
            user = User(
                login=login,
                display_name=name or login,
                password_hash=NO_PASSWORD,
                role=role,
                team_id=None,
                capacity=5,
                skills={},
                is_active=True,
            )
            session.add(user)
            await session.flush()
            row = await revocation.state_for(session, user.id)
            row.source = source
            row.external_id = external_id
        team_row = await service.get_or_create_team(session, name=team) if team else None
        changed = user.role != role or (team_row is not None and user.team_id != team_row.id)
        user.role = role
        user.display_name = name or user.display_name
        if team_row is not None:
            user.team_id = team_row.id
        if changed:
            await audit.record(
                session,
                action=audit.USER_ROLE_CHANGED,
                actor=audit.SYSTEM,
                object_type="user",
                object_id=user.id,
                details={"role": role, "source": source},
            )
        await session.flush()
        return user

    return await ctx.db.write(run)


async def two_factor_required(session: AsyncSession, role: str) -> bool:
    return await session.get(TwoFactorRole, role) is not None


async def _check_otp(ctx: Context, proven: Proven, otp: str | None, *, ip: str) -> int | None:
    """The accepted TOTP step (None when the account has no second factor)."""
    row, user = proven.state, proven.user
    if not row.totp_enabled or not row.totp_secret:
        return None
    if not otp:
        raise Unauthorized("enter the code from your authenticator app", code="otp_required")
    secret = secrets.decrypt(row.totp_secret, ctx.signing_key)
    step = totp.accepted_step(secret, otp, last_step=row.totp_last_step)
    if step is None:
        await _failed(ctx, user=user, login=user.login, ip=ip, reason="otp")
        raise Unauthorized("the code is wrong or was already used", code="otp_invalid")
    return step


async def sign_in(
    ctx: Context, *, login: str, password: str, otp: str | None, ip: str, kind: str
) -> tuple[User, int]:
    """A full staff sign-in; returns the account and its credential generation."""
    proven = await prove_password(ctx, login=login, password=password, ip=ip)
    user = proven.user
    step = await _check_otp(ctx, proven, otp, ip=ip)
    if step is None and proven.state.source != OIDC:
        async with ctx.db.read() as session:
            required = await two_factor_required(session, user.role)
        if required:
            await _audit(
                ctx,
                audit.AUTH_SIGN_IN,
                user=user,
                login=user.login,
                ip=ip,
                outcome="denied",
                reason="totp_enrolment_required",
            )
            raise Forbidden(
                "your role must sign in with a second factor: set up an authenticator app first",
                code="totp_enrolment_required",
            )
    if proven.state.must_change_password:
        raise Forbidden("choose a new password before signing in", code="password_change_required")
    return await succeeded(ctx, user=user, ip=ip, kind=kind, totp_step=step)


async def succeeded(
    ctx: Context, *, user: User, ip: str, kind: str, totp_step: int | None = None
) -> tuple[User, int]:
    """Record a successful sign-in: reset the failure count, remember the TOTP step."""
    async with ctx.db.transaction() as session:
        row = await revocation.state_for(session, user.id)
        row.failed_attempts = 0
        row.locked_at = row.locked_until = None
        row.last_sign_in_at = utcnow()
        if totp_step is not None:
            row.totp_last_step = totp_step
        generation = row.token_generation
        await audit.record(
            session,
            action=audit.AUTH_SIGN_IN,
            actor=audit.Actor.of(user, ip=ip),
            object_type="user",
            object_id=user.id,
            details={"kind": kind, "source": row.source, "second_factor": totp_step is not None},
        )
    log.info("auth.signed_in", user_id=user.id, role=user.role, kind=kind)
    return user, generation


def check_new_password(settings: Settings, password: str, *, login: str) -> None:
    """The policy, with this installation's settings (422 ``weak_password``)."""
    password_policy.check(
        password,
        login=login,
        min_length=settings.password_min_length,
        min_classes=settings.password_min_classes,
    )


async def change_password(
    ctx: Context, *, login: str, password: str, new_password: str, otp: str | None, ip: str
) -> None:
    """Change one's own password (also the forced change after an admin's reset); every
    token and session of the account ends."""
    proven = await prove_password(ctx, login=login, password=password, ip=ip)
    if proven.state.source != LOCAL:
        raise Conflict(
            "this account's password is kept by the directory; change it there",
            code="external_password",
        )
    step = await _check_otp(ctx, proven, otp, ip=ip)
    check_new_password(ctx.settings, new_password, login=proven.user.login)
    if new_password == password:
        raise Unprocessable(
            "the new password must differ from the current one",
            code="weak_password",
            field="new_password",
        )
    new_hash = await asyncio.to_thread(hash_password, new_password)
    async with ctx.db.transaction() as session:
        user = await session.get(User, proven.user.id)
        assert user is not None
        user.password_hash = new_hash
        row = await revocation.state_for(session, user.id)
        row.must_change_password = False
        row.password_changed_at = utcnow()
        if step is not None:
            row.totp_last_step = step
        await revocation.revoke(session, user.id)
        await audit.record(
            session,
            action=PASSWORD_CHANGED,
            actor=audit.Actor.of(user, ip=ip),
            object_type="user",
            object_id=user.id,
        )


async def start_totp(ctx: Context, *, login: str, password: str, ip: str) -> tuple[str, str]:
    """A new TOTP secret for the account (shown once): (secret, otpauth URI). Replaces any
    secret not yet confirmed; 409 ``totp_already_enabled`` when one is in use."""
    proven = await prove_password(ctx, login=login, password=password, ip=ip)
    if proven.state.totp_enabled:
        raise Conflict(
            "a second factor is already set up; an admin can reset it", code="totp_already_enabled"
        )
    secret = totp.new_secret()
    async with ctx.db.transaction() as session:
        row = await revocation.state_for(session, proven.user.id)
        row.totp_pending_secret = secrets.encrypt(secret, ctx.signing_key)
    uri = totp.provisioning_uri(secret, login=proven.user.login, issuer=ctx.settings.totp_issuer)
    return secret, uri


async def confirm_totp(ctx: Context, *, login: str, password: str, otp: str, ip: str) -> None:
    """Turn the second factor on once a code from the new secret is right."""
    proven = await prove_password(ctx, login=login, password=password, ip=ip)
    row = proven.state
    if row.totp_enabled:
        raise Conflict("a second factor is already set up", code="totp_already_enabled")
    if not row.totp_pending_secret:
        raise Conflict("start the set-up first", code="totp_not_started")
    secret = secrets.decrypt(row.totp_pending_secret, ctx.signing_key)
    step = totp.accepted_step(secret, otp, last_step=None)
    if step is None:
        await _failed(ctx, user=proven.user, login=proven.user.login, ip=ip, reason="otp_setup")
        raise Unauthorized("the code is wrong; check the phone's clock", code="otp_invalid")
    async with ctx.db.transaction() as session:
        row = await revocation.state_for(session, proven.user.id)
        row.totp_secret = row.totp_pending_secret
        row.totp_pending_secret = None
        row.totp_enabled = True
        row.totp_last_step = step
        await audit.record(
            session,
            action=TOTP_ENROLLED,
            actor=audit.Actor.of(proven.user, ip=ip),
            object_type="user",
            object_id=proven.user.id,
        )


# --- administration ---------------------------------------------------------------------


async def get_user_or_raise(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist", code="user_not_found")
    return user


async def unlock(session: AsyncSession, *, user_id: int) -> SignInState:
    """Lift a lockout and reset the failure count."""
    await get_user_or_raise(session, user_id)
    row = await revocation.state_for(session, user_id)
    row.locked_at = row.locked_until = None
    row.failed_attempts = 0
    await session.flush()
    return row


async def reset_totp(session: AsyncSession, *, user_id: int) -> SignInState:
    """Remove the second factor (a lost phone); the user sets up a new one."""
    await get_user_or_raise(session, user_id)
    row = await revocation.state_for(session, user_id)
    row.totp_secret = row.totp_pending_secret = None
    row.totp_enabled = False
    row.totp_last_step = None
    await revocation.revoke(session, user_id)
    return row


async def reset_password(session: AsyncSession, *, user_id: int, new_hash: str) -> None:
    """Set a temporary password the user must change at the next sign-in; ends every
    session of the account."""
    user = await get_user_or_raise(session, user_id)
    row = await revocation.state_for(session, user_id)
    if row.source != LOCAL:
        raise Conflict(
            "this account's password is kept by the directory; reset it there",
            code="external_password",
        )
    user.password_hash = new_hash
    row.must_change_password = True
    row.password_changed_at = utcnow()
    row.locked_at = row.locked_until = None
    row.failed_attempts = 0
    await revocation.revoke(session, user_id)
