"""Conversation and message shapes for the staff API, the widget and event payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from okno.inputs import MAX_ID, MAX_SEQ, Input


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    url: str
    scan_status: Literal["none", "clean", "pending", "blocked", "failed"] = Field(
        default="none",
        description="The antivirus verdict: none (no antivirus configured), clean, pending "
        "(held until the antivirus answers; downloads answer 409), blocked (a threat was "
        "found: quarantined, downloads answer 403 attachment_blocked) or failed (the "
        "antivirus did not answer for as long as okno retried: blocked unscanned, "
        "downloads answer 403 attachment_scan_failed).",
    )
    scan_signature: str | None = Field(
        default=None,
        description="For a blocked file, staff only: the threat the antivirus named "
        "(always null in the widget and mobile API).",
    )


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    seq: int | None
    author_kind: str
    author_name: str
    text: str
    internal: bool
    client_msg_id: str | None
    created_at: datetime
    attachments: list[AttachmentOut] = []
    meta: dict[str, Any] | None = Field(
        default=None,
        description="Bot buttons ({buttons: [{label, payload}]}), places found near the "
        "customer ({places: [...]}), a shared location ({location: {lat, lon}}), a pressed "
        "button ({button})",
    )
    delivery: str | None = Field(
        default=None,
        description="For a message to a messenger customer: queued, sending, sent, "
        "delivered, read or failed; waiting: held until the customer writes again (a "
        "platform's reply window, WhatsApp's 24 hours) (null elsewhere).",
    )
    masked: bool = Field(
        default=False,
        description="Staff view only: personal data (card, phone, passport, INN, SNILS, "
        "account numbers, e-mails) in the text or file names is hidden. Those allowed get "
        "the original from POST .../messages/{id}/unmask after verifying the customer.",
    )


class MessagePosted(BaseModel):
    message: MessageOut
    duplicate: bool = Field(description="True when this client_msg_id was stored before.")


class MessagesOut(BaseModel):
    messages: list[MessageOut]
    last_seq: int


class MessagePageOut(MessagesOut):
    has_more: bool = Field(
        description="after_seq: newer messages follow this page; "
        "before_seq: older messages precede it."
    )


class Ref(BaseModel):
    id: int
    name: str


class ChannelRef(BaseModel):
    id: int
    kind: str
    name: str


class ConversationOut(BaseModel):
    id: int
    status: str
    channel: ChannelRef
    customer: Ref
    assignee: Ref | None
    team_id: int | None
    topic: str | None
    priority: int
    resolution: str | None
    rating: int | None
    created_at: datetime
    first_response_at: datetime | None
    closed_at: datetime | None
    last_message_at: datetime | None
    last_message_preview: str
    tags: list[str] = []
    waiting_since: datetime | None = Field(
        default=None,
        description="When the customer's oldest unanswered message came; null once answered.",
    )
    unread: int = Field(default=0, description="Customer messages no staff member has read.")
    customer_read_seq: int = Field(default=0, description="The customer has seen up to here.")


class ConversationPatch(Input):
    topic: str | None = Field(default=None, max_length=100)
    tags: list[str] | None = Field(default=None, max_length=50)


class ConversationsOut(BaseModel):
    conversations: list[ConversationOut]


class SendMessage(Input):
    client_msg_id: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1)
    internal: bool = False
    suggestion_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="The reply suggestion this text came from: recorded as accepted (sent as "
        "suggested) or edited.",
    )


class CloseRequest(Input):
    resolution: Literal["resolved", "refused", "callback", "spam"] = "resolved"


class AssignRequest(Input):
    user_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Omit to take the dialog yourself."
    )


class TransferRequest(Input):
    to_user_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    to_team_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    comment: str | None = Field(default=None, max_length=2000)
    topic: str | None = Field(
        default=None, max_length=100, description="Set the topic too (routing uses it)."
    )

    @model_validator(mode="after")
    def _one_target(self) -> TransferRequest:
        if (self.to_user_id is None) == (self.to_team_id is None):
            raise ValueError("give exactly one of to_user_id or to_team_id")
        return self


class RatingRequest(Input):
    conversation_id: int = Field(ge=1, le=MAX_ID)
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=2000)


class ReadRequest(Input):
    up_to_seq: int = Field(ge=0, le=MAX_SEQ)
