"""When the bot is unsure in a messenger, it asks once before handing off.

The widget shows likely questions while the customer types; a messenger cannot. So where
the bot would hand a messenger dialog to a person only because it is unsure, and some
articles match well enough to be worth offering, it asks once: "Возможно, вы об этом?"
with up to three of them as buttons and a button for a person. A pick answers at once; the
person button, a second unsure question or anything off the list hands off as before.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot.service import BotDecision
from okno.channels import kinds
from okno.conversations import actions
from okno.conversations.models import Conversation, Message

ARTICLE_PREFIX = "kb:"
PERSON = "person"
PERSON_LABEL = "👤 Позвать оператора"
QUESTION = "Уточните, пожалуйста: возможно, вы спрашиваете об этом?"
MAX_OFFERED = 3
# An article is worth offering when its match is at least this good (retrieval score) and
# the message looks like a question for the knowledge base at all.
MIN_SCORE = 0.2
MIN_IN_DOMAIN = 0.5


async def offer(
    session: AsyncSession,
    conversation: Conversation,
    decision: BotDecision,
    *,
    channel_kind: str | None,
    now: datetime,
) -> bool:
    """Ask the customer to pick among likely articles instead of handing off; False when
    this is not the place (not a messenger, not merely unsure, asked already, nothing
    good enough to offer)."""
    if decision.reason != "unsure" or not channel_kind or not kinds.is_messenger(channel_kind):
        return False
    hits = [h for h in decision.suggestions if h.score >= MIN_SCORE][:MAX_OFFERED]
    top = decision.suggestions[0] if decision.suggestions else None
    if not hits or (
        top is not None and top.in_domain is not None and top.in_domain < MIN_IN_DOMAIN
    ):
        return False
    asked = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.author_kind == "bot",
            Message.text == QUESTION,
        )
    )
    if asked:
        return False
    buttons = [{"label": h.title, "payload": ARTICLE_PREFIX + h.article_id} for h in hits]
    buttons.append({"label": PERSON_LABEL, "payload": PERSON})
    await actions.bot_says(session, conversation, text=QUESTION, meta={"buttons": buttons})
    return True


async def typed_choice(session: AsyncSession, conversation: Conversation, text: str) -> str | None:
    """The option a customer typed by number ("2") after the question, on channels that show
    the options as a numbered list (e-mail) or when they type instead of pressing."""
    typed = text.strip().rstrip(".)")
    if not typed.isdigit():
        return None
    last = await session.scalar(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.author_kind == "bot")
        .order_by(Message.id.desc())
        .limit(1)
    )
    if last is None or last.text != QUESTION:
        return None
    buttons = (last.meta or {}).get("buttons") or []
    index = int(typed) - 1
    return str(buttons[index]["payload"]) if 0 <= index < len(buttons) else None
