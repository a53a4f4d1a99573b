"""A dialog's transcript as plain text, for staff to download: one line per message with
its time (UTC, to the minute), its author and its text, internal notes marked.

Personal data is masked exactly as on the staff screens (the same
:func:`okno.conversations.views.messages_out` with ``masked=True``): a transcript leaves
okno, so it never carries more than the operator saw. The caller checks access and
records the export in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import service
from okno.conversations.messaging import ATTACHMENT_URL
from okno.conversations.schemas import MessageOut
from okno.conversations.views import messages_out

CUSTOMER = "Клиент"
OPERATOR = "Оператор"
BOT = "Бот"
SYSTEM = "Система"
NOTE_MARK = "[внутренняя заметка]"
_PAGE = 500


@dataclass(frozen=True)
class Transcript:
    text: str
    messages: int


def _minute(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def author_of(message: MessageOut) -> str:
    if message.author_kind == "customer":
        return CUSTOMER
    if message.author_kind == "operator":
        return message.author_name or OPERATOR
    if message.author_kind == "bot":
        return BOT
    return SYSTEM


def line_of(message: MessageOut) -> str:
    """``2026-01-05T10:31Z  Анна [внутренняя заметка]: text``; the text's further lines
    indented, attachments named after it."""
    author = author_of(message)
    if message.internal:
        author = f"{author} {NOTE_MARK}"
    body = (message.text or "").replace("\r\n", "\n").replace("\r", "\n")
    parts = [body] if body else []
    parts += [f"[файл: {a.filename}]" for a in message.attachments]
    text = "\n".join(parts).replace("\n", "\n    ")
    return f"{_minute(message.created_at)}  {author}: {text}".rstrip()


async def build(session: AsyncSession, conversation_id: int) -> Transcript:
    """The whole dialog (internal notes included), oldest first, masked for staff."""
    lines = [f"Диалог {conversation_id}", ""]
    count = 0
    after = 0
    while True:
        rows = await service.list_messages(
            session,
            conversation_ids=[conversation_id],
            after_seq=after,
            limit=_PAGE,
            include_internal=True,
        )
        if not rows:
            break
        shaped = await messages_out(session, rows, url_prefix=ATTACHMENT_URL, masked=True)
        lines += [line_of(m) for m in shaped]
        count += len(rows)
        after = rows[-1].seq or after
        if len(rows) < _PAGE:
            break
    return Transcript(text="\n".join(lines) + "\n", messages=count)
