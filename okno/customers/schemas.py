"""Customer card shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

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
    can_call: bool = Field(
        default=False,
        description="A click-to-call gateway is configured: POST .../call places the call "
        "(the number itself is never shown).",
    )


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


class VerificationIn(Input):
    method: Literal["secret_word", "one_time_code"] = Field(
        description="secret_word: the customer writes their secret word in the chat; "
        "one_time_code: the bank sends them a code, they write it in the chat."
    )
    bank_customer_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Who the customer says they are at the bank. Default: the id the bank "
        "signed for this dialog, or the customer's bank_customer_id attribute.",
    )


class VerificationOut(BaseModel):
    id: int
    conversation_id: int
    method: str
    status: str = Field(description="awaiting_answer, checking, verified, failed or cancelled.")
    verified: bool = Field(description="Verified, and the time has not run out.")
    attempts_left: int
    reason: str | None = Field(
        description="Why it failed (wrong_answer, backend_unavailable, code_not_sent)."
    )
    started_by: int
    started_at: datetime
    verified_until: datetime | None


class VerificationStateOut(BaseModel):
    available: bool = Field(description="The bank's verification service is configured.")
    verified: bool
    may_unmask: bool = Field(
        description="Your role may unmask personal data (once the customer is verified)."
    )
    current: VerificationOut | None


class UnmaskedAttachment(BaseModel):
    id: int
    filename: str


class UnmaskedOut(BaseModel):
    message_id: int
    text: str = Field(description="The message as the customer wrote it.")
    attachments: list[UnmaskedAttachment]


class CallIn(Input):
    conversation_id: int | None = Field(
        default=None, ge=1, le=2**31 - 1, description="The dialog the call is about."
    )


class CallOut(BaseModel):
    status: Literal["calling"] = "calling"
    call_id: str | None = Field(description="The PBX's id of the call, when it gives one.")
