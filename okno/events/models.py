"""The durable event log behind every realtime stream, and the counter that numbers it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow


class Counter(Base):
    """Named counters. Taking the next event number locks the row until commit, so event
    numbers are handed out in commit order and a reader of ``seq > N`` never skips one."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Event(Base):
    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(50))
    conversation_id: Mapped[int | None] = mapped_column(Integer)
    # Who may see it, frozen at the time it happened (see okno.events.visibility).
    customer_id: Mapped[int | None] = mapped_column(Integer, index=True)
    customer_visible: Mapped[bool] = mapped_column(Boolean, default=False)
    team_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    also_user_id: Mapped[int | None] = mapped_column(Integer)
    assignee_only: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
