"""Run a message-storing action and answer with the stored message, as every channel does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations.messaging import ATTACHMENT_URL
from okno.conversations.models import Message
from okno.conversations.schemas import MessagePosted
from okno.conversations.views import messages_out
from okno.events.service import envelope, without_threat_names
from okno.http import AppState, write
from okno.security import masking

Action = Callable[[AsyncSession], Awaitable[tuple[Message, bool]]]


async def post_and_shape(
    state: AppState, action: Action, *, masked: bool
) -> tuple[JSONResponse, bool]:
    """Store via ``action`` (retrying lost races) and answer with the stored message:
    201 for a new one, 200 with ``duplicate: true`` for a retry of an earlier one.
    ``masked``: the answer goes to staff (personal data hidden), not to the customer
    (who is not told the threat an antivirus named).

    A new message is shaped from its committed event (it carries the seq, and skipping a
    second validation matters on this hot path); a duplicate is re-read, so a retrying
    client gets exactly what the first attempt got. Returns (response, created).
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
            payload = envelope(event)["payload"].get("message")
            if event["type"] == "message.created" and payload and payload["id"] == message.id:
                if masked:
                    payload = masking.message(payload)
                else:  # the customer's own screen: no threat names
                    payload = without_threat_names(payload)
                return JSONResponse({"message": payload, "duplicate": False}, status_code=201), True
    async with state.db.read() as session:
        fresh = await session.get(Message, message.id)
        assert fresh is not None
        (shaped,) = await messages_out(
            session, [fresh], url_prefix=ATTACHMENT_URL, masked=masked, for_customer=not masked
        )
    body = MessagePosted(message=shaped, duplicate=not created).model_dump(mode="json")
    return JSONResponse(body, status_code=201 if created else 200), created
