"""Run a message-storing action and answer with the stored message, as every channel does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations.messaging import ATTACHMENT_URL
from okno.conversations.models import Message
from okno.conversations.schemas import MessageOut, MessagePosted
from okno.conversations.views import messages_out
from okno.http import AppState, write

Action = Callable[[AsyncSession], Awaitable[tuple[Message, bool]]]


async def post_and_shape(state: AppState, action: Action) -> tuple[MessagePosted, Message]:
    """Store via ``action`` (retrying lost races) and shape the result.

    A new message is shaped from its committed event (it carries the seq); a duplicate is
    re-read, so a retrying client gets exactly what the first attempt got.
    """
    info: dict[str, Any] = {}

    async def run(session: AsyncSession) -> tuple[Message, bool]:
        info.clear()
        result = await action(session)
        info["session_info"] = session.info
        return result

    message, created = await write(state, run)
    if created:
        for event in info["session_info"].get("sealed_events", []):
            payload = event["payload"].get("message")
            if event["type"] == "message.created" and payload and payload["id"] == message.id:
                return MessagePosted(message=MessageOut(**payload), duplicate=False), message
    async with state.db.read() as session:
        fresh = await session.get(Message, message.id)
        assert fresh is not None
        (shaped,) = await messages_out(session, [fresh], url_prefix=ATTACHMENT_URL)
    return MessagePosted(message=shaped, duplicate=not created), message
