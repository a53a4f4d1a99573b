"""Storing a message and telling everyone who may see it: shared by inbound and staff paths."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import outbound
from okno.conversations import scanning
from okno.conversations.attachments import SCAN_BLOCKED, StoredFile
from okno.conversations.models import Attachment, Conversation, Message
from okno.conversations.scanning import record_scanned
from okno.conversations.views import conversation_out, messages_out
from okno.db.base import utcnow
from okno.errors import BadRequest, Unprocessable
from okno.events.service import PendingEvent, record_event
from okno.security import masking

ATTACHMENT_URL = "/api/v1/attachments"
FILE_REFUSED_TEXT = (
    "Файл «{names}» не принят: антивирус обнаружил в нём угрозу. Пожалуйста, проверьте "
    "своё устройство антивирусом и пришлите файл ещё раз."
)
FILE_UNCHECKED_TEXT = (
    "Файл «{names}» не удалось проверить антивирусом, поэтому мы не смогли его принять. "
    "Пожалуйста, пришлите файл ещё раз. Приносим извинения за неудобство."
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str | None, *, max_chars: int, allow_empty: bool = False) -> str:
    """Text as stored: control characters removed, ends trimmed, length-checked."""
    text = _CONTROL.sub("", text or "").strip()
    if not text and not allow_empty:
        raise BadRequest("the message is empty", code="empty_message")
    if len(text) > max_chars:
        raise Unprocessable(
            f"the message is longer than {max_chars} characters",
            code="text_too_long",
            max_chars=max_chars,
            length=len(text),
        )
    return text


def preview(text: str, files: list[StoredFile]) -> str:
    """The inbox line of a dialog, masked before it is cut: a card number cut in half by
    the 200-character limit would slip past the masking on the way out."""
    if text:
        return masking.text(text)[:200]
    return masking.text(f"📎 {files[0].filename}")[:200] if files else ""


async def add_message(
    session: AsyncSession,
    conversation: Conversation,
    *,
    author_kind: str,
    text: str,
    author_user_id: int | None = None,
    internal: bool = False,
    client_msg_id: str | None = None,
    external_id: str | None = None,
    dedup_key: str | None = None,
    files: list[StoredFile] | None = None,
    author_name: str | None = None,
    meta: dict[str, Any] | None = None,
) -> Message:
    """Insert a message with its attachments, update the dialog, record ``message.created``.

    ``author_name``, when the caller knows it, saves looking it up.
    """
    files = files or []
    now = utcnow()
    message = Message(
        conversation_id=conversation.id,
        author_kind=author_kind,
        author_user_id=author_user_id,
        text=text,
        internal=internal,
        client_msg_id=client_msg_id,
        external_id=external_id,
        dedup_key=dedup_key,
        created_at=now,
        meta=meta or None,
    )
    session.add(message)
    await session.flush()
    attachments = [
        Attachment(
            message_id=message.id,
            conversation_id=conversation.id,
            filename=f.filename,
            content_type=f.content_type,
            size=f.size,
            sha256=f.sha256,
            storage_path=f.storage_path,
            created_at=now,
            scan_status=f.scan_status,
            scan_signature=f.scan_signature,
        )
        for f in files
    ]
    session.add_all(attachments)
    if not internal:
        conversation.last_message_at = now
        conversation.last_author_kind = author_kind
        if author_kind == "customer":
            conversation.awaiting_since = conversation.awaiting_since or now
        elif author_kind in ("operator", "bot"):
            conversation.awaiting_since = None
        conversation.last_message_preview = preview(text, files)
    conversation.message_count = (conversation.message_count or 0) + 1
    if author_kind == "customer":
        conversation.unread_count = (conversation.unread_count or 0) + 1
    await session.flush()
    # held files get their retry job; infected content is blocked wherever else it is
    others_blocked = await scanning.after_insert(session, attachments)
    known: dict[str, dict[int, str]] = {}
    if author_name is not None:
        if author_kind == "customer":
            known["customer_names"] = {conversation.id: author_name}
        elif author_user_id is not None:
            known["user_names"] = {author_user_id: author_name}
    if not internal and author_kind != "customer":
        # a messenger's customer gets it through the delivery jobs (the widget reads events)
        await outbound.request_send(session, conversation, message)
    # stored unmasked: the customer's own screen gets it as is; staff get it masked
    (shaped,) = await messages_out(
        session,
        [message],
        url_prefix=ATTACHMENT_URL,
        attachments=attachments,
        masked=False,
        customer_names=known.get("customer_names"),
        user_names=known.get("user_names"),
    )
    record_event(
        session,
        PendingEvent(
            type="message.created",
            conversation_id=conversation.id,
            payload={"message": shaped.model_dump(mode="json")},
            customer_id=conversation.customer_id,
            customer_visible=not internal,
            team_id=conversation.team_id,
            assignee_id=conversation.assignee_id,
            assignee_only=conversation.assignee_id is not None,
            message=message,
        ),
    )
    await record_scanned(session, {a.message_id for a in others_blocked})
    refused = [f.filename for f in files if f.scan_status == SCAN_BLOCKED]
    if refused and author_kind == "customer":
        await tell_file_refused(session, conversation, refused)
    return message


async def tell_file_refused(
    session: AsyncSession, conversation: Conversation, filenames: list[str]
) -> None:
    """Tell the customer (in their widget or messenger) that their files were blocked."""
    names = ", ".join(filenames)[:300]
    await add_message(
        session, conversation, author_kind="system", text=FILE_REFUSED_TEXT.format(names=names)
    )


async def tell_file_unchecked(
    session: AsyncSession, conversation: Conversation, filenames: list[str]
) -> None:
    """Tell the customer their files could not be checked (the antivirus stayed down for
    as long as okno retried) and ask them to send the files again."""
    names = ", ".join(filenames)[:300]
    await add_message(
        session, conversation, author_kind="system", text=FILE_UNCHECKED_TEXT.format(names=names)
    )


async def record_conversation_event(
    session: AsyncSession,
    conversation: Conversation,
    event_type: str,
    *,
    customer_visible: bool,
    also_user_id: int | None = None,
    **extra: object,
) -> None:
    """Record a ``conversation.*`` event carrying the dialog's current shape."""
    await session.flush()
    shaped = await conversation_out(session, conversation, masked=False)
    record_event(
        session,
        PendingEvent(
            type=event_type,
            conversation_id=conversation.id,
            payload={"conversation": shaped.model_dump(mode="json"), **extra},
            customer_id=conversation.customer_id,
            customer_visible=customer_visible,
            team_id=conversation.team_id,
            assignee_id=conversation.assignee_id,
            also_user_id=also_user_id,
        ),
    )


async def record_read(
    session: AsyncSession, conversation: Conversation, *, reader: str, up_to_seq: int
) -> None:
    """Record ``conversation.read``: the staff's reads reach the customer (their messages
    show as read) and every staff screen (unread counters); the customer's reach staff."""
    record_event(
        session,
        PendingEvent(
            type="conversation.read",
            conversation_id=conversation.id,
            payload={
                "reader": reader,
                "up_to_seq": up_to_seq,
                "unread": conversation.unread_count,
            },
            customer_id=conversation.customer_id,
            customer_visible=reader == "staff",
            team_id=conversation.team_id,
            assignee_id=conversation.assignee_id,
            assignee_only=conversation.assignee_id is not None,
        ),
    )
