"""Reading conversations and messages, with the access rule staff are held to.

Write paths live beside this module: ``inbound.py`` (what customers send) and
``actions.py`` (what staff do). All of them return rows; ``views.py`` shapes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations.models import Attachment, Conversation, Message
from okno.customers.models import Customer, CustomerIdentity
from okno.errors import BadRequest, Forbidden, NotFound
from okno.events.service import last_seq
from okno.inputs import MAX_SEQ
from okno.operators.models import User
from okno.security import permissions

OPEN_STATUSES = ("waiting", "assigned")  # what staff serve
UNFINISHED = ("bot", *OPEN_STATUSES)  # what the customer is still in


def staff_may_access(conversation: Conversation, user: User) -> bool:
    """The team rule: those who see all teams (admins, team-less supervisors, integrations
    with ``conversations.read_all``) see all; others with ``conversations.read_team`` their
    team's dialogs, dialogs not yet given a team, and dialogs assigned to them; anyone else
    (a security officer, an auditor) none."""
    if permissions.sees_all_teams(user):
        return True
    if not permissions.has(user, "conversations.read_team"):
        return False
    if conversation.assignee_id == user.id:
        return True
    return conversation.team_id is None or conversation.team_id == user.team_id


def _scope_clause(user: User) -> ColumnElement[bool] | None:
    """The team rule as SQL (None: the user sees everything); agrees with staff_may_access."""
    if permissions.sees_all_teams(user):
        return None
    if not permissions.has(user, "conversations.read_team"):
        return false()
    return or_(
        Conversation.assignee_id == user.id,
        Conversation.team_id.is_(None),
        Conversation.team_id == user.team_id,
    )


def _scope(query: Select[Any], user: User) -> Select[Any]:
    clause = _scope_clause(user)
    return query if clause is None else query.where(clause)


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
    elif status in ("bot", "waiting", "assigned", "closed"):
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
    after_seq: int = 0,
    before_seq: int | None = None,
    limit: int,
    include_internal: bool,
) -> list[Message]:
    """Messages of these conversations in seq order: the first ``limit`` with
    seq > after_seq, or with ``before_seq`` the newest ``limit`` with seq < before_seq
    (fetched newest first so a long dialog is read from its end, returned oldest first)."""
    if not conversation_ids:
        return []
    query = select(Message).where(Message.conversation_id.in_(conversation_ids))
    if not include_internal:
        query = query.where(Message.internal.is_(False))
    if before_seq is None:
        query = query.where(Message.seq > after_seq).order_by(Message.seq).limit(limit)
        return list((await session.scalars(query)).all())
    query = query.where(Message.seq < before_seq).order_by(Message.seq.desc()).limit(limit)
    rows = list((await session.scalars(query)).all())
    rows.reverse()
    return rows


@dataclass(frozen=True)
class MessagePage:
    """One page of a dialog: its messages (oldest first), whether more lie beyond the page
    in the direction it was read, and the forward cursor ``last_seq``."""

    messages: list[Message]
    has_more: bool
    last_seq: int


async def page_messages(
    session: AsyncSession,
    *,
    conversation_id: int,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int,
    include_internal: bool = True,
) -> MessagePage:
    """A page of one dialog, read forward from ``after_seq`` (default 0) or backward from
    ``before_seq`` — how the workspace opens a dialog of thousands of messages at its end
    and loads earlier ones on demand.

    ``has_more``: forward, newer messages follow the page; backward, older ones precede it.
    ``last_seq`` is the forward cursor either way: together with the pages before it the
    page holds every message up to ``last_seq``, so the client continues with
    ``after_seq=last_seq`` (or the event stream after it) and misses nothing. It never
    passes what was committed when the page was read (the events counter, read first),
    nor ``before_seq - 1`` on a backward page.
    """
    if after_seq is not None and before_seq is not None:
        raise BadRequest(
            "give after_seq (read forward) or before_seq (read backward), not both",
            code="conflicting_cursors",
        )
    covered = await last_seq(session)  # first: every event up to it is committed
    ids = [conversation_id]
    if before_seq is None:
        start = after_seq or 0
        rows = await list_messages(
            session,
            conversation_ids=ids,
            after_seq=start,
            limit=limit + 1,
            include_internal=include_internal,
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        newest = (rows[-1].seq or 0) if has_more else max(covered, start)
        return MessagePage(messages=rows, has_more=has_more, last_seq=newest)
    rows = await list_messages(
        session,
        conversation_ids=ids,
        before_seq=before_seq,
        limit=limit + 1,
        include_internal=include_internal,
    )
    has_more = len(rows) > limit
    if has_more:
        rows = rows[1:]  # the extra row only told us that older ones exist
    return MessagePage(
        messages=rows, has_more=has_more, last_seq=max(0, min(before_seq - 1, covered))
    )


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
    session: AsyncSession, *, customer_id: int, channel_id: int, verified_as: str | None = None
) -> list[int]:
    """The customer's dialogs in this channel, and with ``verified_as`` also those in other
    channels verified as the same bank customer (the widget and the app share a history)."""
    where = Conversation.channel_id == channel_id
    if verified_as:
        where = or_(where, Conversation.verified_as == verified_as)
    rows = await session.scalars(
        select(Conversation.id).where(Conversation.customer_id == customer_id, where)
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
            Conversation.status.in_(UNFINISHED),
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
                    Conversation.status.in_(UNFINISHED),
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


@dataclass(frozen=True)
class Timeline:
    """A customer's history across channels: messages oldest first, the dialogs they come
    from (those the viewer may access), and whether older messages exist."""

    messages: list[Message]
    dialogs: list[Conversation]
    has_more: bool


async def customer_timeline(
    session: AsyncSession,
    *,
    customer_id: int,
    viewer: User,
    before_seq: int | None = None,
    limit: int,
) -> Timeline:
    """The newest ``limit`` messages before ``before_seq`` (default: the newest of all) of
    every dialog of the customer the viewer may access, in every channel, oldest first.

    Internal notes are included: the timeline is for staff only. One query over the
    customer's dialogs, so the card shows one cross-channel history and pages back from
    its end like a dialog does.
    """
    dialogs = [
        d
        for d in await customer_dialogs(session, customer_id=customer_id)
        if staff_may_access(d, viewer)
    ]
    rows = await list_messages(
        session,
        conversation_ids=[d.id for d in dialogs],
        before_seq=MAX_SEQ + 1 if before_seq is None else before_seq,
        limit=limit + 1,
        include_internal=True,
    )
    has_more = len(rows) > limit
    return Timeline(messages=rows[1:] if has_more else rows, dialogs=dialogs, has_more=has_more)


@dataclass(frozen=True)
class OpenGroup:
    """Unfinished dialogs sharing topic, channel, team and status: how many, and since when
    the longest-waiting of them has waited (``awaiting_since``, the customer's oldest
    unanswered message, or else its creation)."""

    topic: str | None
    channel_id: int
    team_id: int | None
    status: str
    count: int
    waiting_since: datetime


async def open_dialog_groups(session: AsyncSession, *, viewer: User) -> list[OpenGroup]:
    """Unfinished dialogs the viewer may see, counted per (topic, channel, team, status).

    One GROUP BY in the database feeds every breakdown of the supervisor board: there are
    thousands of open dialogs and every supervisor polls it, so rows never reach Python;
    the groups (topics x channels x teams x 2) are few.
    """
    query = (
        select(
            Conversation.topic,
            Conversation.channel_id,
            Conversation.team_id,
            Conversation.status,
            func.count(),
            func.min(func.coalesce(Conversation.awaiting_since, Conversation.created_at)),
        )
        .where(Conversation.status.in_(OPEN_STATUSES))
        .group_by(
            Conversation.topic,
            Conversation.channel_id,
            Conversation.team_id,
            Conversation.status,
        )
    )
    # Counts carry no content: an auditor (reports.read, no dialog access) sees the whole
    # centre's figures; everyone else the dialogs their team rule lets them see.
    aggregate_only = not permissions.has(viewer, "conversations.read_team")
    clause = None if aggregate_only else _scope_clause(viewer)
    rows = await session.execute(query if clause is None else query.where(clause))
    return [
        OpenGroup(
            topic=row[0],
            channel_id=int(row[1]),
            team_id=row[2],
            status=str(row[3]),
            count=int(row[4]),
            waiting_since=row[5],
        )
        for row in rows
    ]


async def open_dialogs_per_assignee(session: AsyncSession, user_ids: list[int]) -> dict[int, int]:
    """How many unfinished dialogs each of these users is serving (their current load)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(Conversation.assignee_id, func.count())
        .where(Conversation.status.in_(OPEN_STATUSES), Conversation.assignee_id.in_(user_ids))
        .group_by(Conversation.assignee_id)
    )
    return {row[0]: int(row[1]) for row in rows if row[0] is not None}
