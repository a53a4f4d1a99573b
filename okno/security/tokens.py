"""Signed bearer tokens for staff and for widget sessions (HS256 JWTs).

The two kinds carry a ``typ`` claim so a widget token can never act as a staff token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt

from okno.db.base import utcnow
from okno.errors import Unauthorized

STAFF = "staff"
WIDGET = "widget"
SESSION = "session"  # a staff browser session cookie (okno.security.sessions)


def issue(key: str, *, typ: str, subject: str, ttl: timedelta, **claims: Any) -> str:
    now = utcnow()
    body = {"typ": typ, "sub": subject, "iat": now, "exp": now + ttl, **claims}
    return jwt.encode(body, key, algorithm="HS256")


def verify(key: str, token: str, *, typ: str) -> dict[str, Any]:
    """The claims of a valid token of kind ``typ``; raises Unauthorized saying why not."""
    if not token:
        raise Unauthorized("a bearer token is required", code="token_missing")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=["HS256"], options={"require": ["exp", "sub", "typ"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the token has expired; sign in again", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("the token is not valid", code="token_invalid") from None
    if claims.get("typ") != typ:
        raise Unauthorized("the token is not valid here", code="token_invalid")
    return claims
