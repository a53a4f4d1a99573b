"""Staff: teams and users with a role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow
from okno.security.permissions import ROLES

__all__ = ["ROLES", "ApiToken", "Presence", "Team", "User"]


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    login: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    # {"cards": 3, "credits": 1}: skill -> level 1..5 (routing matches queues' skills)
    skills: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    # Not a column: set on the request's copy when it signed in with an API token, whose
    # scopes then narrow the role's permissions (okno.security.permissions.permissions_of).
    token_scopes: frozenset[str] | None = None
    __allow_unmapped__ = True


PRESENCE_STATUSES = ("online", "break", "offline")


class Presence(Base):
    """What an operator chose (online, break, offline) and when a socket of theirs was last
    seen by any app process; connected = seen within the last minute."""

    __tablename__ = "presence"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="offline")
    since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # when routing (or a take) last gave them a dialog: "longest idle" and fairness
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """An integrator's API token. Only the SHA-256 of the secret is kept (the secret is 32
    random bytes, so a fast hash is enough and lookups stay one index probe); the secret is
    shown once, at creation. The token acts as its own integration account (``user_id``,
    role ``integration``), so what it does is attributed to it like to any colleague."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # the first characters of the secret ("okno_AbC1"), to recognise a token in lists/logs
    prefix: Mapped[str] = mapped_column(String(20))
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # addresses/networks (CIDR) the token may be used from; empty: anywhere (issue 8, B)
    ip_allowlist: Mapped[list[str]] = mapped_column(JSONType, default=list)
