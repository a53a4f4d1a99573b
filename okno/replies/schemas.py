"""Saved reply shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SavedReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: Literal["personal", "team", "shared"] = "personal"
    team_id: int | None = Field(default=None, description="For team replies; default: yours.")
    shortcut: str = Field(min_length=1, max_length=50, pattern=r"^[\w\-]+$")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=4000)


class SavedReplyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
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


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversation_id: int


class Rendered(BaseModel):
    text: str
