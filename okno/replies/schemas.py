"""Saved reply shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from okno.inputs import MAX_ID, Input


class SavedReplyIn(Input):
    scope: Literal["personal", "team", "shared"] = "personal"
    team_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="For team replies; default: yours."
    )
    shortcut: str = Field(min_length=1, max_length=50, pattern=r"^[\w\-]+$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)


class SavedReplyPatch(Input):
    shortcut: str | None = Field(default=None, min_length=1, max_length=50, pattern=r"^[\w\-]+$")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    body: str | None = Field(default=None, min_length=1, max_length=4000)


class SavedReplyOut(BaseModel):
    id: int
    scope: str
    team_id: int | None
    owner_id: int | None
    shortcut: str
    title: str
    body: str
    updated_at: datetime


class SavedRepliesOut(BaseModel):
    saved_replies: list[SavedReplyOut]


class RenderRequest(Input):
    conversation_id: int = Field(ge=1, le=MAX_ID)


class Rendered(BaseModel):
    text: str
