"""Routing shapes: queues (admin), assignment explanations, the customer's place in line."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from okno.inputs import MAX_ID, Input

Strategy = Literal["least_loaded", "longest_idle"]
SKILL_PATTERN = r"^[\w-]+$"  # as operators' skill names (okno.operators.skills)


class QueueIn(Input):
    name: str = Field(min_length=1, max_length=100)
    topic: str | None = Field(default=None, max_length=100)
    is_default: bool = False
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    skill: str | None = Field(
        default=None,
        max_length=50,
        pattern=SKILL_PATTERN,
        description="Operators need this skill (as in a user's skills) at min_skill_level.",
    )
    min_skill_level: int = Field(default=1, ge=1, le=5)
    priority: int = Field(default=0, ge=-1000, le=1000)
    strategy: Strategy = "least_loaded"
    overflow_team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    overflow_after_seconds: int | None = Field(default=None, ge=0, le=7 * 86400)
    hours: dict[str, Any] | None = Field(
        default=None,
        description='{"timezone": "Europe/Moscow", "weekly": {"mon": ["09:00-18:00"]}, '
        '"holidays": ["2026-12-31"]}; null: around the clock',
    )
    out_of_hours_message: str = Field(default="", max_length=1000)
    is_active: bool = True


class QueuePatch(Input):
    """Fields to change; omitted ones stay (null clears team, skill, overflow, hours)."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    topic: str | None = Field(default=None, max_length=100)
    is_default: bool | None = None
    team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    skill: str | None = Field(default=None, max_length=50, pattern=SKILL_PATTERN)
    min_skill_level: int | None = Field(default=None, ge=1, le=5)
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    strategy: Strategy | None = None
    overflow_team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    overflow_after_seconds: int | None = Field(default=None, ge=0, le=7 * 86400)
    hours: dict[str, Any] | None = None
    out_of_hours_message: str | None = Field(default=None, max_length=1000)
    is_active: bool | None = None

    @field_validator(
        "name",
        "is_default",
        "min_skill_level",
        "priority",
        "strategy",
        "out_of_hours_message",
        "is_active",
    )
    @classmethod
    def _not_null(cls, value: object) -> object:
        # null clears only what may be empty (team, skill, overflow, hours, topic)
        if value is None:
            raise ValueError("may not be null; leave the field out to keep it")
        return value


class QueueOut(BaseModel):
    id: int
    name: str
    topic: str | None
    is_default: bool
    team_id: int | None
    skill: str | None
    min_skill_level: int
    priority: int
    strategy: str
    overflow_team_id: int | None
    overflow_after_seconds: int | None
    hours: dict[str, Any] | None
    out_of_hours_message: str
    is_active: bool
    open_now: bool


class QueuesOut(BaseModel):
    queues: list[QueueOut]


class AssignmentOut(BaseModel):
    id: int
    kind: str = Field(description="auto, take, manual, transfer or requeue")
    user_id: int | None
    actor_id: int | None
    queue_id: int | None
    rule: str
    strategy: str
    candidates: list[dict[str, Any]]
    waited_seconds: float
    decided_ms: float
    at: datetime


class AssignmentsOut(BaseModel):
    assignments: list[AssignmentOut]


class QueuePosition(BaseModel):
    position: int | None = Field(description="1 = next; null when not waiting in a queue.")
    expected_wait_seconds: int | None = Field(
        description="From how fast this queue was served in the last 30 min; null: no data."
    )
    opens_at: datetime | None = Field(description="When a closed queue opens again.")
