"""Customer card shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from okno.conversations.schemas import MessageOut
from okno.inputs import Input


class IdentityOut(BaseModel):
    channel_id: int
    channel_kind: str
    channel_name: str
    external_id: str = Field(description="Masked where it is a secret (widget visitor ids).")


class NoteOut(BaseModel):
    id: int
    author_id: int
    author_name: str
    text: str
    created_at: datetime


class DialogOut(BaseModel):
    id: int
    channel_kind: str
    channel_name: str
    status: str
    topic: str | None
    tags: list[str]
    resolution: str | None
    rating: int | None
    created_at: datetime
    closed_at: datetime | None
    last_message_preview: str


class CustomerCard(BaseModel):
    id: int
    name: str
    tags: list[str]
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    notes: list[NoteOut]
    dialogs: list[DialogOut]
    created_at: datetime


class TimelineMessage(MessageOut):
    channel_kind: str
    channel_name: str


class TimelineOut(BaseModel):
    items: list[TimelineMessage] = Field(description="Oldest first.")
    has_more: bool = Field(description="Older messages exist: ask again with before_seq.")


class CustomerPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=50)
    attributes: dict[str, str | int | float | bool | None] | None = None


class NoteIn(Input):
    text: str = Field(min_length=1, max_length=4000)


class CustomerBrief(BaseModel):
    """A customer found by a search: enough to tell two namesakes apart."""

    id: int
    name: str
    identities: list[IdentityOut]
    dialogs: int = Field(description="How many dialogs of theirs you may see.")
    created_at: datetime


class CustomerSearchOut(BaseModel):
    customers: list[CustomerBrief]


class MergeIn(Input):
    other_id: int = Field(
        ge=1,
        le=2**31 - 1,
        description="The customer to join into this one: their channels, dialogs and notes "
        "move here.",
    )
