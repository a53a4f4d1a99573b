"""Shapes of the bank's mobile-app API (the channel kind ``api``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from okno.inputs import Input


class MobileSessionRequest(Input):
    channel_id: int = Field(ge=1, le=2**31 - 1, description="The app channel's id in okno.")
    customer_token: str = Field(
        min_length=1,
        max_length=4000,
        description="A JWT the bank's server signed for the signed-in customer: HS256 with "
        "the channel's identity secret, sub = the bank's customer id, exp (at most 24 hours "
        "after iat).",
    )
    name: str | None = Field(
        default=None, max_length=200, description="The customer's name as operators see it."
    )


class MobileSessionResponse(BaseModel):
    session_token: str = Field(
        description="Bearer token for the message, history, realtime and bot endpoints."
    )
    conversation_id: int | None = Field(
        description="The customer's unfinished dialog in the app; null until the first message."
    )
    expires_at: datetime = Field(
        description="When the session ends (never later than the bank's token): sign in again."
    )
