"""Tables of sign-in security: each account's lockout, second factor and session generation;
the staff sign-in IP allow-list; the roles that must use a second factor.

Kept beside ``users`` rather than in it: a sign-in writes these rows (failed attempts, the
last TOTP step) and the account row stays what administrators edit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, UTCDateTime, utcnow

LOCAL = "local"
LDAP = "ldap"
OIDC = "oidc"
SOURCES = (LOCAL, LDAP, OIDC)


class SignInState(Base):
    """Per account: failed attempts and lockout, the TOTP secret, and the generation every
    token and browser session carries (raising it revokes them all at once)."""

    __tablename__ = "sign_in_state"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # where the password is checked: okno itself, the LDAP directory, or an OpenID provider
    source: Mapped[str] = mapped_column(String(10), default=LOCAL)
    # the directory's DN or the provider's ``iss|sub`` of a directory/OpenID account
    external_id: Mapped[str | None] = mapped_column(String(500), unique=True)
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # locked_at set and locked_until empty: locked until an admin unlocks
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # TOTP secrets are stored encrypted (okno.security.secrets) under okno's secret key
    totp_secret: Mapped[str | None] = mapped_column(String(300))
    totp_pending_secret: Mapped[str | None] = mapped_column(String(300))
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # the last 30-second step whose code was accepted: a code is good only once
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    sessions_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffIpAllowEntry(Base):
    """One address or network (CIDR) staff may sign in from; an empty list allows any."""

    __tablename__ = "staff_ip_allowlist"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cidr: Mapped[str] = mapped_column(String(50), unique=True)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TwoFactorRole(Base):
    """A role whose members must sign in with a second factor (TOTP)."""

    __tablename__ = "two_factor_roles"

    role: Mapped[str] = mapped_column(String(30), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
