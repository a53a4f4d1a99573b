"""Turn rows into the public shapes, loading the names they mention in one query each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import outbound
from okno.channels.models import Channel
from okno.conversations.models import Attachment, Conversation, Message
from okno.conversations.schemas import (
    AttachmentOut,
    ChannelRef,
    ConversationOut,
    MessageOut,
    Ref,
)
from okno.conversations.service import attachments_of
from okno.customers.models import Customer
from okno.operators.models import User
from okno.security import masking

BOT_NAME = "Бот"
SYSTEM_NAME = "okno"


async def _names(session: AsyncSession, model: type, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    column = model.display_name  # type: ignore[attr-defined]
    rows = await session.execute(select(model.id, column).where(model.id.in_(wanted)))  # type: ignore[attr-defined]
    return {row[0]: row[1] for row in rows}


def attachment_out(att: Attachment, url_prefix: str) -> AttachmentOut:
    return AttachmentOut(
        id=att.id,
        filename=att.filename,
        content_type=att.content_type,
        size=att.size,
        url=f"{url_prefix}/{att.id}",
        scan_status=att.scan_status or "none",  # type: ignore[arg-type]
        scan_signature=att.scan_signature,
    )


async def messages_out(
    session: AsyncSession,
    messages: list[Message],
    *,
    url_prefix: str,
    attachments: list[Attachment] | None = None,
    customer_names: dict[int, str] | None = None,
    user_names: dict[int, str] | None = None,
    masked: bool,
    for_customer: bool = False,
) -> list[MessageOut]:
    """Shape messages; ``url_prefix`` is where this audience downloads attachments.
    ``for_customer``: the customer's own screen, which is not told the threat an
    antivirus named in a blocked file.
    Names the caller already knows (``customer_names`` by conversation id, ``user_names``
    by user id) are not looked up again. ``masked``: for staff eyes, personal data in
    the text and file names hidden (the stored text stays whole); a customer's own view
    and the stored event payloads are unmasked."""
    if not messages:
        return []
    users = user_names or {}
    missing = {m.author_user_id for m in messages if m.author_user_id not in users}
    if missing - {None}:
        users = {**users, **await _names(session, User, missing)}
    if customer_names is None and any(m.author_kind == "customer" for m in messages):
        conv_ids = {m.conversation_id for m in messages}
        rows = await session.execute(
            select(Conversation.id, Customer.display_name)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.id.in_(conv_ids))
        )
        customer_names = {row[0]: row[1] for row in rows}
    customer_names = customer_names or {}
    if attachments is None:
        attachments = await attachments_of(session, [m.id for m in messages])
    by_message: dict[int, list[Attachment]] = defaultdict(list)
    for att in attachments:
        by_message[att.message_id].append(att)
    outgoing = [m.id for m in messages if m.author_kind != "customer" and not m.internal]
    delivery = await outbound.delivery_statuses(session, outgoing) if outgoing else {}
    out = []
    for m in messages:
        if m.author_kind == "customer":
            name = customer_names.get(m.conversation_id, "")
        elif m.author_kind == "operator":
            name = users.get(m.author_user_id or 0, "")
        elif m.author_kind == "bot":
            name = BOT_NAME
        else:
            name = SYSTEM_NAME
        out.append(
            MessageOut(
                id=m.id,
                conversation_id=m.conversation_id,
                seq=m.seq,
                author_kind=m.author_kind,
                author_name=name,
                text=m.text,
                internal=m.internal,
                client_msg_id=m.client_msg_id,
                created_at=m.created_at,
                attachments=[attachment_out(a, url_prefix) for a in by_message.get(m.id, [])],
                meta=m.meta,
                delivery=delivery.get(m.id),
            )
        )
    if for_customer:
        for shaped in out:
            for file in shaped.attachments:
                file.scan_signature = None
    if masked:
        return [MessageOut.model_validate(masking.message(m.model_dump())) for m in out]
    return out


async def conversations_out(
    session: AsyncSession, conversations: list[Conversation], *, masked: bool
) -> list[ConversationOut]:
    """Shape dialogs; ``masked`` (staff screens): the preview and customer name hidden
    where they hold personal data. Event payloads are stored unmasked and masked per
    viewer when sent."""
    if not conversations:
        return []
    users = await _names(session, User, (c.assignee_id for c in conversations))
    customers = await _names(session, Customer, (c.customer_id for c in conversations))
    channel_ids = {c.channel_id for c in conversations}
    channels = {
        ch.id: ch
        for ch in (await session.scalars(select(Channel).where(Channel.id.in_(channel_ids))))
    }
    out = []
    for c in conversations:
        ch = channels[c.channel_id]
        out.append(
            ConversationOut(
                id=c.id,
                status=c.status,
                channel=ChannelRef(id=ch.id, kind=ch.kind, name=ch.name),
                customer=Ref(id=c.customer_id, name=customers.get(c.customer_id, "")),
                assignee=(
                    Ref(id=c.assignee_id, name=users.get(c.assignee_id, ""))
                    if c.assignee_id
                    else None
                ),
                team_id=c.team_id,
                topic=c.topic,
                priority=c.priority,
                resolution=c.resolution,
                rating=c.rating,
                created_at=c.created_at,
                first_response_at=c.first_response_at,
                closed_at=c.closed_at,
                last_message_at=c.last_message_at,
                last_message_preview=c.last_message_preview or "",
                tags=list(c.tags or []),
                waiting_since=c.awaiting_since if c.status != "closed" else None,
                unread=c.unread_count or 0,
                customer_read_seq=c.customer_read_seq or 0,
            )
        )
    if masked:
        return [ConversationOut.model_validate(masking.conversation(c.model_dump())) for c in out]
    return out


async def conversation_out(
    session: AsyncSession, conversation: Conversation, *, masked: bool
) -> ConversationOut:
    return (await conversations_out(session, [conversation], masked=masked))[0]
