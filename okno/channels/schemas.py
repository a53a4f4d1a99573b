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
    webhook_path: str | None = Field(
        default=None, description="Messengers: where the platform posts (/hooks/{kind}/{id})."
    )
    webhook_url: str | None = Field(
        default=None, description="The full webhook address, when OKNO_PUBLIC_URL is set."
    )


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


class ChannelSettingOut(BaseModel):
    """One setting a channel kind takes (what the admin form and the CLI flags are built
    from)."""

    name: str
    help: str
    required: bool
    secret: bool = Field(
        description="Stored encrypted and never shown again; admins see `<name>_set: true` instead."
    )
    default: str | None = None


class ChannelKindOut(BaseModel):
    kind: str
    title: str
    settings: list[ChannelSettingOut]
    has_buttons: bool = Field(description="Buttons are sent as buttons (else numbered options).")
    sets_webhook: bool = Field(
        description="okno can register its webhook address with the platform itself "
        "(POST /api/v1/channels/{id}/webhook)."
    )


class ChannelKindsOut(BaseModel):
    kinds: list[ChannelKindOut]


class MessengerCreate(Input):
    """A new messenger, e-mail or app channel; ``settings`` are the kind's settings by name
    (see GET /api/v1/channels/kinds)."""

    kind: str = Field(min_length=1, max_length=20)
    name: str | None = Field(default=None, max_length=200)
    settings: dict[str, str | None] = Field(default_factory=dict, max_length=50)
    bot: bool | None = Field(default=None, description="The bot answers new dialogs first.")


class MessengerUpdate(Input):
    """Settings to change; omitted ones stay. A secret is replaced by sending a new value;
    "" removes an optional setting."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: dict[str, str | None] | None = Field(default=None, max_length=50)
    is_active: bool | None = None
    bot: bool | None = None


class WebhookSetOut(BaseModel):
    ok: bool
    url: str = Field(description="The address the platform now posts updates to.")
    detail: str
