"""Asking the bot to answer a customer's message, importable from the conversation core
(it depends on jobs only)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from okno.jobs import service as jobs

REPLY = "bot.reply"


def enabled(channel_config: dict[str, object] | None) -> bool:
    """A channel's dialogs start with the bot when its config says ``"bot": true``."""
    return bool((channel_config or {}).get("bot"))


async def request_reply(
    session: AsyncSession,
    *,
    message_id: int,
    article_id: str | None = None,
    suggested: bool = False,
    button: str | None = None,
    location: tuple[float, float] | None = None,
) -> None:
    """The bot's turn for this message, after the transaction commits (customer-facing
    priority; one job per message, so a retried send does not answer twice)."""
    await jobs.enqueue(
        session,
        kind=REPLY,
        queue="bot",
        priority=0,
        payload={
            "message_id": message_id,
            "article_id": article_id,
            "suggested": suggested,
            "button": button,
            "location": list(location) if location else None,
        },
        dedup_key=f"{REPLY}:{message_id}",
    )
