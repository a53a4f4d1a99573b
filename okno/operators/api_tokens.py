"""API tokens for integrators: create (the secret shown once), list, revoke, and resolve a
bearer ``okno_...`` secret to the integration principal it stands for.

A token is ``okno_`` + 43 URL-safe characters (32 random bytes). Only its SHA-256 is
stored; each token has its own account of role ``integration`` (no password, cannot sign
in interactively) so that dialogs, notes and audit entries name the integration that
acted. The principal holds the integration role's permissions narrowed to the token's
scopes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.errors import Conflict, NotFound, Unauthorized, Unprocessable
from okno.operators.models import ApiToken, User
from okno.security import permissions

TOKEN_PREFIX = "okno_"
SHOWN_PREFIX_CHARS = 9  # "okno_" and four characters of the secret
# An account that can never sign in with a password: not an argon2 hash, so no password
# verifies against it (okno.security.passwords.verify_password answers False).
NO_PASSWORD = "!api-token"
# Writing last_used_at on every request would make each API read a write; once a minute is
# enough to tell a security officer which tokens are alive.
LAST_USED_EVERY = timedelta(minutes=1)
MAX_EXPIRES_DAYS = 3650


def is_api_token(bearer: str) -> bool:
    """Whether a bearer credential is an API token (staff tokens are JWTs)."""
    return bearer.startswith(TOKEN_PREFIX)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_token(
    session: AsyncSession,
    *,
    name: str,
    scopes: list[str],
    created_by: int | None,
    expires_days: int | None = None,
    ip_allowlist: list[str] | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret (returned only here). 422 ``invalid_scope`` naming a
    scope an API token may not hold, 422 ``invalid_expiry``, 409 ``token_name_taken``.
    ``ip_allowlist``: the networks it may be used from, canonical (empty: anywhere)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise Unprocessable("name must be 1-100 characters", code="invalid_name", field="name")
    if not scopes:
        raise Unprocessable(
            "give the token at least one scope", code="invalid_scope", field="scopes"
        )
    try:
        checked = permissions.check_scopes(scopes)
    except ValueError as exc:
        raise Unprocessable(
            f"an API token may not hold {exc.args[0]!r}; allowed: "
            + ", ".join(sorted(permissions.TOKEN_SCOPES)),
            code="invalid_scope",
            field="scopes",
            scope=exc.args[0],
        ) from None
    if expires_days is not None and not 1 <= expires_days <= MAX_EXPIRES_DAYS:
        raise Unprocessable(
            f"expires_days must be between 1 and {MAX_EXPIRES_DAYS}",
            code="invalid_expiry",
            field="expires_days",
        )
    if await session.scalar(select(ApiToken.id).where(ApiToken.name == name)):
        raise Conflict(f"a token named {name!r} exists", code="token_name_taken", field="name")
    account = User(
        login=f"api:{name}"[:100],
        display_name=name,
        password_hash=NO_PASSWORD,
        role="integration",
        team_id=None,
        capacity=1,
        skills={},
        is_active=True,
    )
    session.add(account)
    await session.flush()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(
        name=name,
        token_hash=hash_secret(secret),
        prefix=secret[:SHOWN_PREFIX_CHARS],
        scopes=checked,
        user_id=account.id,
        created_by=created_by,
        created_at=now,
        expires_at=now + timedelta(days=expires_days) if expires_days else None,
        ip_allowlist=list(ip_allowlist or []),
    )
    session.add(token)
    await session.flush()
    return token, secret


async def list_tokens(session: AsyncSession) -> list[ApiToken]:
    """Every token, newest first, revoked and expired ones included (they are history)."""
    return list((await session.scalars(select(ApiToken).order_by(ApiToken.id.desc()))).all())


async def revoke_token(session: AsyncSession, *, token_id: int) -> ApiToken:
    """Revoke a token at once (a repeat changes nothing); its account is switched off."""
    token = await session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"API token {token_id} does not exist", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        account = await session.get(User, token.user_id)
        if account is not None:
            account.is_active = False
        await session.flush()
    return token


def status_of(token: ApiToken, now: datetime | None = None) -> str:
    """active, expired or revoked."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= (now or utcnow()):
        return "expired"
    return "active"


async def find_token(session: AsyncSession, secret: str) -> ApiToken:
    """The active token with this secret; 401 saying why not (unknown, revoked, expired)."""
    token = await session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_secret(secret)))
    if token is None:
        raise Unauthorized("the API token is not valid", code="token_invalid")
    status = status_of(token)
    if status == "revoked":
        raise Unauthorized("the API token was revoked", code="token_revoked")
    if status == "expired":
        raise Unauthorized("the API token has expired", code="token_expired")
    return token


async def principal_for(session: AsyncSession, token: ApiToken) -> User:
    """The token's integration account, holding only the token's scopes."""
    user = await session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise Unauthorized("the API token's account is disabled", code="account_disabled")
    user.token_scopes = frozenset(token.scopes or [])
    return user


def needs_last_used(token: ApiToken, now: datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY


async def touch(session: AsyncSession, *, token_id: int, now: datetime) -> None:
    """Record that the token was used (at most once a minute, see LAST_USED_EVERY)."""
    token = await session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = now
        await session.flush()
