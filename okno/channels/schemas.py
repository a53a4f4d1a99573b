"""Channel administration shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from okno.inputs import Input


class ChannelOut(BaseModel):
    id: int
    kind: str
    name: str
    key: str | None
    is_active: bool
    config: dict[str, Any]


class ChannelsOut(BaseModel):
    channels: list[ChannelOut]


class WidgetUpdate(Input):
    """Fields to change; omitted ones stay as they are."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    greeting: str | None = Field(default=None, max_length=1000)
    info_message: str | None = Field(default=None, max_length=1000)
    color: str | None = None
    allowed_origins: list[str] | None = None
    is_active: bool | None = None
    # The routing topic of dialogs started here (a queue with this topic takes them); ""
    # removes it. The bot or an operator may still set another topic later.
    topic: str | None = Field(default=None, max_length=100)
    # The public key the bank's <script> tag names; pages still using the old one stop
    # working, so changing it is an admin's decision.
    key: str | None = Field(default=None, min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    # The secret the bank's site signs customer tokens with (docs/flows.md); write-only,
    # "" removes it (the widget then takes anonymous visitors only).
    identity_secret: str | None = Field(default=None, max_length=200)


class ChannelErrorOut(BaseModel):
    kind: str = Field(description="webhook, send, check or poll")
    message: str
    created_at: datetime


class ChannelErrorsOut(BaseModel):
    errors: list[ChannelErrorOut]


class ChannelCheckOut(BaseModel):
    ok: bool
    detail: str = Field(description="What the platform said: the bot's name, or the reason")
