"""Reading conversations and messages, with the access rule staff are held to.

Write paths live beside this module: ``inbound.py`` (what customers send) and
``actions.py`` (what staff do). All of them return rows; ``views.py`` shapes them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations.models import Attachment, Conversation, Message
from okno.customers.models import Customer, CustomerIdentity
from okno.errors import BadRequest, Forbidden, NotFound
from okno.operators.models import User

OPEN_STATUSES = ("waiting", "assigned")


def staff_may_access(conversation: Conversation, user: User) -> bool:
    """The team rule: admins and team-less supervisors see all; others their team's dialogs,
    dialogs not yet given a team, and dialogs assigned to them."""
    if user.role == "admin" or (user.role == "supervisor" and user.team_id is None):
        return True
    if conversation.assignee_id == user.id:
        return True
    return conversation.team_id is None or conversation.team_id == user.team_id


def _scope(query: Select[Any], user: User) -> Select[Any]:
    if user.role == "admin" or (user.role == "supervisor" and user.team_id is None):
        return query
    return query.where(
        or_(
            Conversation.assignee_id == user.id,
            Conversation.team_id.is_(None),
            Conversation.team_id == user.team_id,
        )
    )


async def get_conversation(session: AsyncSession, conversation_id: int) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


async def access_conversation(
    session: AsyncSession, conversation_id: int, user: User, *, lock: bool = False
) -> Conversation:
    """The conversation if ``user`` may work with it; NotFound / Forbidden otherwise.

    With ``lock`` the row is locked for update (PostgreSQL) so concurrent actions on one
    dialog apply one after the other.
    """
    conversation = await session.get(Conversation, conversation_id, with_for_update=lock)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} does not exist", code="not_found")
    if not staff_may_access(conversation, user):
        raise Forbidden(
            "this dialog belongs to another team",
            code="forbidden_team",
            conversation_id=conversation_id,
        )
    return conversation


async def list_conversations(
    session: AsyncSession,
    *,
    user: User,
    status: str,
    limit: int = 100,
    before_id: int | None = None,
) -> list[Conversation]:
    """Dialogs the user may see, newest activity first. ``status``: waiting, assigned,
    closed, open (waiting + assigned), mine (open and assigned to the user), or all."""
    query = select(Conversation)
    if status == "open":
        query = query.where(Conversation.status.in_(OPEN_STATUSES))
    elif status == "mine":
        query = query.where(
            and_(Conversation.status.in_(OPEN_STATUSES), Conversation.assignee_id == user.id)
        )
    elif status in ("waiting", "assigned", "closed"):
        query = query.where(Conversation.status == status)
    elif status != "all":
        raise BadRequest(
            "status must be open, mine, waiting, assigned, closed or all", code="invalid_status"
        )
    if before_id is not None:
        query = query.where(Conversation.id < before_id)
    query = _scope(query, user).order_by(Conversation.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def list_messages(
    session: AsyncSession,
    *,
    conversation_ids: list[int],
    after_seq: int,
    limit: int,
    include_internal: bool,
) -> list[Message]:
    """Messages of these conversations with seq > after_seq, in seq order."""
    if not conversation_ids:
        return []
    query = select(Message).where(
        Message.conversation_id.in_(conversation_ids), Message.seq > after_seq
    )
    if not include_internal:
        query = query.where(Message.internal.is_(False))
    query = query.order_by(Message.seq).limit(limit)
    return list((await session.scalars(query)).all())


async def attachments_of(session: AsyncSession, message_ids: list[int]) -> list[Attachment]:
    if not message_ids:
        return []
    rows = await session.scalars(
        select(Attachment).where(Attachment.message_id.in_(message_ids)).order_by(Attachment.id)
    )
    return list(rows.all())


async def get_attachment(session: AsyncSession, attachment_id: int) -> Attachment | None:
    return await session.get(Attachment, attachment_id)


async def customer_conversation_ids(
    session: AsyncSession, *, customer_id: int, channel_id: int
) -> list[int]:
    rows = await session.scalars(
        select(Conversation.id).where(
            Conversation.customer_id == customer_id, Conversation.channel_id == channel_id
        )
    )
    return list(rows.all())


async def open_conversation_of(
    session: AsyncSession, *, customer_id: int, channel_id: int
) -> Conversation | None:
    """The customer's unfinished dialog in this channel, if any (there is at most one)."""
    return await session.scalar(
        select(Conversation).where(
            Conversation.customer_id == customer_id,
            Conversation.channel_id == channel_id,
            Conversation.status.in_(OPEN_STATUSES),
        )
    )


async def customer_and_open_dialog(
    session: AsyncSession, *, channel_id: int, external_id: str
) -> tuple[int, str, Conversation | None] | None:
    """(customer id, name, unfinished dialog or None) for a channel identity, in one query;
    None when this identity has never written. The hot path of every inbound message."""
    row = (
        await session.execute(
            select(CustomerIdentity.customer_id, Customer.display_name, Conversation)
            .join(Customer, Customer.id == CustomerIdentity.customer_id)
            .outerjoin(
                Conversation,
                and_(
                    Conversation.customer_id == CustomerIdentity.customer_id,
                    Conversation.channel_id == CustomerIdentity.channel_id,
                    Conversation.status.in_(OPEN_STATUSES),
                ),
            )
            .where(
                CustomerIdentity.channel_id == channel_id,
                CustomerIdentity.external_id == external_id,
            )
        )
    ).first()
    if row is None:
        return None
    return int(row[0]), str(row[1]), row[2]


async def find_by_dedup_key(session: AsyncSession, dedup_key: str) -> Message | None:
    return await session.scalar(select(Message).where(Message.dedup_key == dedup_key))


async def customer_dialogs(session: AsyncSession, *, customer_id: int) -> list[Conversation]:
    """All dialogs of a customer in every channel, newest first."""
    rows = await session.scalars(
        select(Conversation)
        .where(Conversation.customer_id == customer_id)
        .order_by(Conversation.id.desc())
    )
    return list(rows.all())


async def count_customer_messages_after(
    session: AsyncSession, *, conversation_id: int, after_seq: int
) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                Message.conversation_id == conversation_id,
                Message.author_kind == "customer",
                Message.seq > after_seq,
            )
        )
        or 0
    )
