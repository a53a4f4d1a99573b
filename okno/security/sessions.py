"""Browser sessions for staff pages: an HttpOnly cookie plus a CSRF token.

The session cookie (``okno_session``) is a signed token that expires after
``OKNO_SESSION_IDLE_MINUTES`` without a request and is renewed as it is used, but never
past ``OKNO_SESSION_MAX_MINUTES`` after sign-in. Every state-changing request that relies
on the cookie must repeat the CSRF token in ``X-CSRF-Token``; the token is bound to the
session (its hash is inside the signed cookie), so a cookie planted by a sibling site
cannot be paired with a token of the attacker's choosing. Bearer-token clients (API
integrations, the widget) are not affected.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from okno.errors import Forbidden, Unauthorized
from okno.security import tokens

SESSION_COOKIE = "okno_session"
CSRF_COOKIE = "okno_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


@dataclass(frozen=True)
class BrowserSession:
    user_id: int
    csrf_hash: str
    signed_in_at: datetime
    expires_at: datetime
    # the account's credential generation at sign-in (okno.operators.revocation)
    generation: int = 0


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def start(
    key: str, *, user_id: int, idle_minutes: int, generation: int = 0
) -> tuple[str, str]:
    """A new session: (session cookie value, CSRF token)."""
    csrf = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    cookie = tokens.issue(
        key,
        typ=tokens.SESSION,
        subject=str(user_id),
        ttl=timedelta(minutes=idle_minutes),
        csrf=_hash(csrf),
        auth=int(now.timestamp()),
        gen=generation,
    )
    return cookie, csrf


def read(key: str, cookie: str, *, max_minutes: int) -> BrowserSession:
    """The session a cookie stands for; Unauthorized when expired, forged or too old."""
    claims: dict[str, Any] = tokens.verify(key, cookie, typ=tokens.SESSION)
    signed_in = datetime.fromtimestamp(int(claims.get("auth", 0)), UTC)
    if datetime.now(UTC) - signed_in > timedelta(minutes=max_minutes):
        raise Unauthorized("the session is over; sign in again", code="session_expired")
    try:
        return BrowserSession(
            user_id=int(claims["sub"]),
            csrf_hash=str(claims["csrf"]),
            signed_in_at=signed_in,
            expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),
            generation=int(claims.get("gen", 0)),
        )
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("the session is not valid", code="token_invalid") from None


def renew(key: str, session: BrowserSession, *, idle_minutes: int) -> str | None:
    """A fresh cookie when more than half the idle time is used, else None."""
    left = session.expires_at - datetime.now(UTC)
    if left > timedelta(minutes=idle_minutes) / 2:
        return None
    return tokens.issue(
        key,
        typ=tokens.SESSION,
        subject=str(session.user_id),
        ttl=timedelta(minutes=idle_minutes),
        csrf=session.csrf_hash,
        auth=int(session.signed_in_at.timestamp()),
        gen=session.generation,
    )


def check_csrf(session: BrowserSession, method: str, header_value: str | None) -> None:
    """Refuse a state-changing request whose CSRF header does not match the session."""
    if method.upper() in SAFE_METHODS:
        return
    if not header_value or not hmac.compare_digest(_hash(header_value), session.csrf_hash):
        raise Forbidden(
            "missing or wrong X-CSRF-Token header for a cookie session", code="csrf_failed"
        )
