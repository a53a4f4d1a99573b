"""Staff: teams and users with a role."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow

ROLES = ("operator", "supervisor", "admin")


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
