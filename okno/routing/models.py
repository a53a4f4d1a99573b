"""Queues and the assignment log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow

STRATEGIES = ("least_loaded", "longest_idle")
ASSIGNMENT_KINDS = ("auto", "take", "manual", "transfer", "requeue")


class Queue(Base):
    """Where dialogs of one topic wait, who may take them, and when they are served.

    A dialog joins the queue whose ``topic`` equals its own; dialogs with no topic or an
    unknown one join the default queue when there is one, else wait unqueued for anybody.
    """

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    topic: Mapped[str | None] = mapped_column(String(100), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    # operators need this skill at this level or better; null: no skill needed
    skill: Mapped[str | None] = mapped_column(String(100))
    min_skill_level: Mapped[int] = mapped_column(Integer, default=1)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    strategy: Mapped[str] = mapped_column(String(20), default="least_loaded")
    overflow_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    overflow_after_seconds: Mapped[int | None] = mapped_column(Integer)
    # {"timezone": "Europe/Moscow", "weekly": {"mon": ["09:00-18:00"], ...},
    #  "holidays": ["2026-12-31"]}; null: around the clock
    hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    out_of_hours_message: Mapped[str] = mapped_column(Text, default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Assignment(Base):
    """Why a dialog went to whom: the rule, the strategy and the candidates weighed."""

    __tablename__ = "assignments"
    __table_args__ = (Index("ix_assignments_queue_at", "queue_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(20))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    rule: Mapped[str] = mapped_column(String(200), default="")
    strategy: Mapped[str] = mapped_column(String(20), default="")
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    waited_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    decided_ms: Mapped[float] = mapped_column(Float, default=0.0)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
