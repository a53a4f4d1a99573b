"""What staff do to a conversation: reply, take, transfer, close, reopen.

Every action locks the dialog row first (PostgreSQL), checks the team rule, changes it and
records its event, all in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import service
from okno.conversations.attachments import StoredFile
from okno.conversations.messaging import add_message, record_conversation_event, record_read
from okno.conversations.models import Conversation, Message
from okno.db.base import utcnow
from okno.errors import BadRequest, Conflict, Forbidden, NotFound
from okno.events.service import last_seq
from okno.operators import service as operators
from okno.operators.models import User
from okno.routing import service as routing
from okno.routing.triggers import request_dispatch
from okno.security.permissions import has

# Taking a colleague's dialog, assigning to others, transferring or closing what someone
# else serves: senior operators, supervisors, admins.
REASSIGN = "conversations.reassign"



async def post_message(
    session: AsyncSession,
    *,
    conversation_id: int,
    actor: User,
    text: str,
    client_msg_id: str,
    internal: bool = False,
    files: list[StoredFile] | None = None,
) -> tuple[Message, bool]:
    """Send a reply (or an internal note) as ``actor``; returns (message, created).

    Replying to a waiting dialog takes it. Only the assignee replies to an assigned dialog;
    supervisors may add internal notes (whispers) to any dialog they can see.
    """
    key = f"u:{actor.id}:{client_msg_id}"
    earlier = await service.find_by_dedup_key(session, key)
    if earlier is not None:
        return earlier, False
    conversation = await service.access_conversation(session, conversation_id, actor, lock=True)
    if conversation.status == "closed" and not internal:
        raise Conflict("the dialog is closed", code="conversation_closed")
    if not internal:
        if conversation.assignee_id is None:
            await _assign(session, conversation, actor, reason="reply")
            await routing.log_manual(
                session, conversation, user_id=actor.id, actor_id=actor.id, kind="take"
            )
        elif conversation.assignee_id != actor.id:
            raise Forbidden(
                "another operator is serving this dialog; transfer it first",
                code="not_assignee",
            )
        if conversation.first_response_at is None:
            conversation.first_response_at = utcnow()
    message = await add_message(
        session,
        conversation,
        author_kind="operator",
        author_user_id=actor.id,
        author_name=actor.display_name,
        text=text,
        internal=internal,
        client_msg_id=client_msg_id,
        dedup_key=key,
        files=files,
    )
    return message, True


async def _assign(
    session: AsyncSession, conversation: Conversation, user: User, *, reason: str
) -> None:
    previous = conversation.assignee_id
    conversation.assignee_id = user.id
    conversation.status = "assigned"
    if user.team_id is not None:
        conversation.team_id = user.team_id
    await record_conversation_event(
        session,
        conversation,
        "conversation.assigned",
        customer_visible=True,
        # the operator it was taken from must learn it too
        also_user_id=previous if previous != user.id else None,
        reason=reason,
    )


async def assign(
    session: AsyncSession, *, conversation_id: int, actor: User, user_id: int | None
) -> Conversation:
    """Give a waiting dialog to ``user_id`` (default: the actor takes it)."""
    conversation = await service.access_conversation(session, conversation_id, actor, lock=True)
    if conversation.status == "closed":
        raise Conflict("the dialog is closed", code="conversation_closed")
    target = actor if user_id is None or user_id == actor.id else None
    if target is None:
        if not has(actor, REASSIGN):
            raise Forbidden(
                "only senior operators and supervisors assign dialogs to others",
                code="forbidden_role",
                permission=REASSIGN,
            )
        target = await operators.get_user_or_raise(session, user_id or 0)
    if conversation.assignee_id == target.id:
        return conversation
    if conversation.assignee_id is not None and not has(actor, REASSIGN):
        raise Conflict("another operator already took this dialog", code="already_assigned")
    previous = conversation.assignee_id
    kind = "manual" if user_id else "take"
    await _assign(session, conversation, target, reason=kind)
    await routing.log_manual(session, conversation, user_id=target.id, actor_id=actor.id, kind=kind)
    if previous is not None:
        await request_dispatch(session)
    return conversation


async def transfer(
    session: AsyncSession,
    *,
    conversation_id: int,
    actor: User,
    to_user_id: int | None,
    to_team_id: int | None,
    comment: str | None,
    topic: str | None = None,
) -> Conversation:
    """Hand the dialog to another operator or back to a team's queue, with a comment."""
    conversation = await service.access_conversation(session, conversation_id, actor, lock=True)
    if conversation.status == "closed":
        raise Conflict("the dialog is closed", code="conversation_closed")
    if (
        not has(actor, REASSIGN)
        and conversation.assignee_id is not None
        and conversation.assignee_id != actor.id
    ):
        raise Forbidden(
            "only the assignee, a senior operator or a supervisor can transfer",
            code="not_assignee",
        )
    if topic is not None:
        conversation.topic = topic.strip() or None
    previous = conversation.assignee_id
    if to_user_id is not None:
        target = await operators.get_user_or_raise(session, to_user_id)
        if target.id == previous:
            raise BadRequest("the dialog is already with this operator", code="same_assignee")
        conversation.assignee_id = target.id
        conversation.status = "assigned"
        if target.team_id is not None:
            # a team-less target (a supervisor) keeps the dialog in its team: clearing it
            # would open the dialog, notes included, to every team
            conversation.team_id = target.team_id
        target_name = target.display_name
    else:
        team = await operators.get_team(session, to_team_id or 0)
        if team is None:
            raise NotFound(f"team {to_team_id} does not exist", code="team_not_found")
        conversation.assignee_id = None
        conversation.status = "waiting"
        conversation.team_id = team.id
        conversation.queued_at = None  # routing places it again, with the topic now set
        target_name = f"команда «{team.name}»"
    note = f"{actor.display_name} передал(а) диалог: {target_name}"
    if comment and comment.strip():
        note += f". Комментарий: {comment.strip()}"
    await add_message(session, conversation, author_kind="system", text=note, internal=True)
    await record_conversation_event(
        session,
        conversation,
        "conversation.transferred",
        customer_visible=False,
        also_user_id=previous,
        from_user_id=previous,
    )
    await routing.log_manual(
        session, conversation, user_id=conversation.assignee_id, actor_id=actor.id, kind="transfer"
    )
    await request_dispatch(session)
    return conversation


async def close(
    session: AsyncSession, *, conversation_id: int, actor: User | None, resolution: str
) -> Conversation:
    """Close the dialog with a resolution; closing a closed dialog changes nothing."""
    if actor is not None:
        conversation = await service.access_conversation(session, conversation_id, actor, lock=True)
        if not has(actor, REASSIGN) and conversation.assignee_id not in (None, actor.id):
            raise Forbidden(
                "only the assignee, a senior operator or a supervisor can close",
                code="not_assignee",
            )
    else:
        found = await service.get_conversation(session, conversation_id)
        if found is None:
            raise NotFound(f"conversation {conversation_id} does not exist", code="not_found")
        conversation = found
    if conversation.status == "closed":
        return conversation
    conversation.status = "closed"
    conversation.awaiting_since = None
    await request_dispatch(session)  # a place is free
    conversation.closed_at = utcnow()
    conversation.resolution = resolution
    await record_conversation_event(
        session, conversation, "conversation.closed", customer_visible=True
    )
    return conversation


async def reopen(session: AsyncSession, *, conversation_id: int, actor: User) -> Conversation:
    """Reopen a closed dialog and take it (e.g. the customer answered by phone)."""
    conversation = await service.access_conversation(session, conversation_id, actor, lock=True)
    if conversation.status != "closed":
        return conversation
    other = await service.open_conversation_of(
        session, customer_id=conversation.customer_id, channel_id=conversation.channel_id
    )
    if other is not None:
        raise Conflict(
            f"the customer already has an open dialog {other.id} in this channel",
            code="customer_has_open_dialog",
            conversation_id=other.id,
        )
    conversation.status = "assigned"
    conversation.assignee_id = actor.id
    if actor.team_id is not None:
        conversation.team_id = actor.team_id
    conversation.closed_at = None
    conversation.resolution = None
    await record_conversation_event(
        session, conversation, "conversation.reopened", customer_visible=False
    )
    await routing.log_manual(
        session, conversation, user_id=actor.id, actor_id=actor.id, kind="take"
    )
    return conversation


# ------------------------------------------------------------------ for routing


async def route_to(session: AsyncSession, conversation: Conversation, user_id: int) -> None:
    """Routing gives a waiting dialog to an operator (the decision is routing's)."""
    user = await operators.get_user_or_raise(session, user_id)
    await _assign(session, conversation, user, reason="auto")


async def requeue(session: AsyncSession, conversation: Conversation) -> None:
    """Take a dialog back from an operator who left; it waits again (routing puts it first)."""
    previous = conversation.assignee_id
    conversation.assignee_id = None
    conversation.status = "waiting"
    await add_message(
        session,
        conversation,
        author_kind="system",
        text="Оператор недоступен — диалог возвращён в очередь",
        internal=True,
    )
    await record_conversation_event(
        session,
        conversation,
        "conversation.requeued",
        customer_visible=False,
        also_user_id=previous,
    )


async def tell_out_of_hours(
    session: AsyncSession, conversation: Conversation, message: str, opens_at: datetime
) -> None:
    """The queue is closed: the customer learns when an answer will come; the dialog waits."""
    zone = opens_at.tzname() or ""
    when = opens_at.strftime("%d.%m в %H:%M") + (f" (время {zone})" if zone else "")
    text = (message.strip() + " " if message.strip() else "Сейчас мы не работаем. ") + (
        f"Ответим {when}."
    )
    await add_message(session, conversation, author_kind="system", text=text)


def clean_tags(tags: list[str]) -> list[str]:
    """Tags as stored: trimmed, lower case, unique, in the order given (at most 20)."""
    seen: list[str] = []
    for tag in tags:
        value = " ".join(tag.split()).lower()[:50]
        if value and value not in seen:
            seen.append(value)
    if len(seen) > 20:
        raise BadRequest("at most 20 tags", code="too_many_tags")
    return seen


async def update(
    session: AsyncSession,
    *,
    conversation_id: int,
    actor: User,
    topic: str | None = None,
    tags: list[str] | None = None,
) -> Conversation:
    """Set the dialog's topic and tags (what analytics and routing group by)."""
    conversation = await service.access_conversation(session, conversation_id, actor, lock=True)
    if topic is not None:
        conversation.topic = topic.strip() or None
    if tags is not None:
        conversation.tags = clean_tags(tags)
    await record_conversation_event(
        session, conversation, "conversation.updated", customer_visible=False
    )
    return conversation


async def mark_read_by_staff(
    session: AsyncSession, *, conversation_id: int, actor: User, up_to_seq: int
) -> Conversation:
    """The operator has seen the dialog up to ``up_to_seq``: clear the unread counter and
    tell the customer their messages were read."""
    conversation = await service.access_conversation(session, conversation_id, actor, lock=True)
    up_to_seq = min(up_to_seq, await last_seq(session))  # no mark beyond what exists
    if up_to_seq <= (conversation.staff_read_seq or 0):
        return conversation
    conversation.staff_read_seq = up_to_seq
    conversation.unread_count = await service.count_customer_messages_after(
        session, conversation_id=conversation.id, after_seq=up_to_seq
    )
    await record_read(session, conversation, reader="staff", up_to_seq=up_to_seq)
    return conversation


# ------------------------------------------------------------------ for the bot


async def bot_says(
    session: AsyncSession,
    conversation: Conversation,
    *,
    text: str,
    meta: dict[str, Any] | None = None,
) -> Message:
    """The bot answers the customer (the dialog stays with the bot)."""
    return await add_message(session, conversation, author_kind="bot", text=text, meta=meta)


async def hand_off(
    session: AsyncSession,
    conversation: Conversation,
    *,
    topic: str | None,
    reason: str,
    note: str = "Передаю ваш вопрос специалисту — он ответит здесь же.",
) -> None:
    """From the bot to a person: the dialog waits for routing, with the topic the bot
    recognised (unless one was set already), and the customer is told."""
    if conversation.status != "bot":
        return
    conversation.status = "waiting"
    if topic and not conversation.topic:
        conversation.topic = topic
    conversation.awaiting_since = conversation.awaiting_since or utcnow()
    await add_message(session, conversation, author_kind="system", text=note)
    await record_conversation_event(
        session, conversation, "conversation.handed_off", customer_visible=True, reason=reason
    )
    await request_dispatch(session)
