"""Sessions of the bank's own mobile app (channel kind ``api``).

The app has no anonymous visitors: its server signs a customer token for the signed-in
customer, and the session (the same token machinery as the web widget's verified sessions)
carries the bank's customer id, so every dialog is verified and the widget and the app
share one history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import kinds
from okno.channels import service as channels
from okno.channels.models import Channel
from okno.channels.widget import service as widget
from okno.conversations import service as conversations
from okno.db.base import utcnow
from okno.errors import BadRequest, NotFound
from okno.security.secrets import SecretUnreadable

KIND = "api"


async def get_app_channel(session: AsyncSession, channel_id: int) -> Channel:
    """The active app channel with this id; NotFound (``unknown_channel``) otherwise."""
    channel = await channels.get_channel(session, channel_id)
    if channel is None or channel.kind != KIND or not channel.is_active:
        raise NotFound("no mobile app channel has this id", code="unknown_channel")
    return channel


def identity_secret(channel: Channel, signing_key: str) -> str:
    """The channel's identity secret, decrypted (BadRequest when it cannot be read)."""
    try:
        config = kinds.readable_config(channel, signing_key)
    except SecretUnreadable:
        raise BadRequest(
            "the channel's identity secret cannot be read; an admin must enter it again",
            code="channel_broken",
        ) from None
    secret = str(config.get("identity_secret") or "")
    if not secret:
        raise BadRequest("the channel has no identity secret", code="channel_broken")
    return secret


async def start_session(
    session: AsyncSession,
    *,
    channel_id: int,
    customer_token: str,
    name: str,
    signing_key: str,
) -> tuple[str, int | None, datetime]:
    """Open a session for the customer the bank's token names: (token, open dialog id,
    expiry). Unauthorized when the token is forged or expired."""
    channel = await get_app_channel(session, channel_id)
    bank = widget.verify_bank_token(identity_secret(channel, signing_key), customer_token)
    identity = await widget.bank_identity(
        session,
        channel_id=channel.id,
        bank_id=bank.bank_id,
        display_name=name,
        phone=bank.phone,
        signing_key=signing_key,
    )
    ws = widget.WidgetSession(
        customer_id=identity.customer_id,
        channel_id=channel.id,
        visitor_id=f"bank:{bank.bank_id}",
        bank_id=bank.bank_id,
    )
    # The session ends when the bank's token does: the app asks its server for a new one.
    token = widget.issue_session_token(signing_key, ws, bank.expires_at - utcnow())
    current = await conversations.open_conversation_of(
        session, customer_id=identity.customer_id, channel_id=channel.id
    )
    return token, current.id if current else None, bank.expires_at
