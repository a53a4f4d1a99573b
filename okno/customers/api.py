"""The customer card: who the customer is, in every channel, and every dialog before."""

from __future__ import annotations

from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.conversations import service as conversations
from okno.conversations.messaging import ATTACHMENT_URL, record_conversation_event
from okno.conversations.views import messages_out
from okno.customers import service
from okno.customers.models import Customer, CustomerIdentity
from okno.customers.schemas import (
    CustomerBrief,
    CustomerCard,
    CustomerPatch,
    CustomerSearchOut,
    DialogOut,
    IdentityOut,
    MergeIn,
    NoteIn,
    NoteOut,
    TimelineMessage,
    TimelineOut,
)
from okno.customers.service import MergeRefused
from okno.errors import BadRequest, Conflict, Forbidden, NotFound
from okno.http import CurrentUser, State, write
from okno.inputs import IdPath, OptionalSeqQuery
from okno.operators.models import User

log = structlog.get_logger("okno.customers")
router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
SECRET_ID_KINDS = ("widget",)  # a widget visitor id resumes the session: never shown


async def _access(session: AsyncSession, customer_id: IdPath, user: User) -> Customer:
    """The customer if the user may serve one of their dialogs (team rule); a customer
    merged into another is that other one."""
    customer = await service.current_customer(session, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist", code="not_found")
    if not await _may_see(session, customer, user):
        log.warning("access.denied", user_id=user.id, customer_id=customer_id)
        raise Forbidden("this customer is served by another team", code="forbidden_team")
    return customer


async def _may_see(session: AsyncSession, customer: Customer, user: User) -> bool:
    if user.role == "admin" or (user.role == "supervisor" and user.team_id is None):
        return True
    dialogs = await conversations.customer_dialogs(session, customer_id=customer.id)
    return any(conversations.staff_may_access(d, user) for d in dialogs)


def _mask(kind: str, external_id: str) -> str:
    if kind in SECRET_ID_KINDS:
        return "•••" + external_id[-4:] if len(external_id) > 8 else "•••"
    return external_id


def _identity_out(identity: CustomerIdentity, channel_rows: dict[int, Any]) -> IdentityOut:
    channel = channel_rows[identity.channel_id]
    return IdentityOut(
        channel_id=identity.channel_id,
        channel_kind=channel.kind,
        channel_name=channel.name,
        external_id=_mask(channel.kind, identity.external_id),
    )


async def _card(session: AsyncSession, customer: Customer, user: User) -> CustomerCard:
    identities = await service.identities_of(session, customer.id)
    notes = await service.notes_of(session, customer.id)
    dialogs = [
        d
        for d in await conversations.customer_dialogs(session, customer_id=customer.id)
        if conversations.staff_may_access(d, user)
    ]
    channel_rows = {c.id: c for c in await channels.list_channels(session)}
    author_ids = {n.author_id for n in notes}
    authors = {
        row[0]: row[1]
        for row in await session.execute(
            select(User.id, User.display_name).where(User.id.in_(author_ids))
        )
    }
    return CustomerCard(
        id=customer.id,
        name=customer.display_name,
        tags=list(customer.tags or []),
        attributes=dict(customer.attributes or {}),
        identities=[_identity_out(i, channel_rows) for i in identities],
        notes=[
            NoteOut(
                id=n.id,
                author_id=n.author_id,
                author_name=authors.get(n.author_id, ""),
                text=n.text,
                created_at=n.created_at,
            )
            for n in notes
        ],
        dialogs=[
            DialogOut(
                id=d.id,
                channel_kind=channel_rows[d.channel_id].kind,
                channel_name=channel_rows[d.channel_id].name,
                status=d.status,
                topic=d.topic,
                tags=list(d.tags or []),
                resolution=d.resolution,
                rating=d.rating,
                created_at=d.created_at,
                closed_at=d.closed_at,
                last_message_preview=d.last_message_preview or "",
            )
            for d in dialogs
        ],
        created_at=customer.created_at,
    )


@router.get("", response_model=CustomerSearchOut)
async def search(
    user: CurrentUser,
    state: State,
    q: Annotated[str, Query(min_length=2, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> CustomerSearchOut:
    """Customers you may see whose name contains ``q``, or with exactly this id in a
    channel (a Telegram chat id, an e-mail address), or ``#<customer id>``: to find the
    other half of a person who wrote in two channels."""
    found: list[CustomerBrief] = []
    async with state.db.read() as session:
        rows = await service.search_customers(session, query=q, limit=limit * 3)
        channel_rows = {c.id: c for c in await channels.list_channels(session)}
        for customer in rows:
            if len(found) >= limit:
                break
            dialogs = [
                d
                for d in await conversations.customer_dialogs(session, customer_id=customer.id)
                if conversations.staff_may_access(d, user)
            ]
            if not dialogs and not await _may_see(session, customer, user):
                continue
            identities = await service.identities_of(session, customer.id)
            found.append(
                CustomerBrief(
                    id=customer.id,
                    name=customer.display_name,
                    identities=[_identity_out(i, channel_rows) for i in identities],
                    dialogs=len(dialogs),
                    created_at=customer.created_at,
                )
            )
    return CustomerSearchOut(customers=found)


@router.get("/{customer_id}", response_model=CustomerCard)
async def card(customer_id: IdPath, user: CurrentUser, state: State) -> CustomerCard:
    """The customer card: identities in every channel, tags, attributes, notes, and
    every dialog (newest first) the viewer may see."""
    async with state.db.read() as session:
        customer = await _access(session, customer_id, user)
        return await _card(session, customer, user)


@router.get("/{customer_id}/timeline", response_model=TimelineOut)
async def timeline(
    customer_id: IdPath,
    user: CurrentUser,
    state: State,
    before_seq: OptionalSeqQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TimelineOut:
    """The customer's whole history in every channel on one timeline: the newest ``limit``
    messages (internal notes included) before ``before_seq`` of every dialog you may see,
    oldest first; page back with the first item's seq while ``has_more``."""
    async with state.db.read() as session:
        customer = await _access(session, customer_id, user)
        found = await conversations.customer_timeline(
            session, customer_id=customer.id, viewer=user, before_seq=before_seq, limit=limit
        )
        shaped = await messages_out(
            session,
            found.messages,
            url_prefix=ATTACHMENT_URL,
            customer_names={d.id: customer.display_name for d in found.dialogs},
        )
        channel_rows = {c.id: c for c in await channels.list_channels(session)}
    channel_of = {d.id: channel_rows[d.channel_id] for d in found.dialogs}
    return TimelineOut(
        items=[
            TimelineMessage(
                **m.model_dump(),
                channel_kind=channel_of[m.conversation_id].kind,
                channel_name=channel_of[m.conversation_id].name,
            )
            for m in shaped
        ],
        has_more=found.has_more,
    )


@router.patch("/{customer_id}", response_model=CustomerCard)
async def update(
    customer_id: IdPath, body: CustomerPatch, user: CurrentUser, state: State
) -> CustomerCard:
    """Change the name, tags or attributes (a null attribute value removes it)."""

    async def run(session: AsyncSession) -> CustomerCard:
        customer = await _access(session, customer_id, user)
        await service.update_customer(
            session, customer, name=body.name, tags=body.tags, attributes=body.attributes
        )
        return await _card(session, customer, user)

    return await write(state, run)


@router.post("/{customer_id}/notes", response_model=NoteOut, status_code=201)
async def add_note(customer_id: IdPath, body: NoteIn, user: CurrentUser, state: State) -> NoteOut:
    """A staff note on the card (the customer never sees it)."""

    async def run(session: AsyncSession) -> NoteOut:
        await _access(session, customer_id, user)
        note = await service.add_note(
            session, customer_id=customer_id, author_id=user.id, text=body.text
        )
        return NoteOut(
            id=note.id,
            author_id=user.id,
            author_name=user.display_name,
            text=note.text,
            created_at=note.created_at,
        )

    return await write(state, run)


@router.post("/{customer_id}/merge", response_model=CustomerCard)
async def merge(
    customer_id: IdPath, body: MergeIn, user: CurrentUser, state: State
) -> CustomerCard:
    """Link two customers who are one person (they wrote in Telegram and in the web chat):
    ``other_id``'s channels, dialogs and notes join this customer, whose card then shows one
    history. You must be allowed to see both. 409 ``merge_open_dialogs`` while both have an
    unfinished dialog in the same channel (close one first)."""

    async def run(session: AsyncSession) -> tuple[CustomerCard, int, int]:
        keep = await _access(session, customer_id, user)
        other = await _access(session, body.other_id, user)
        if keep.id == other.id:
            if customer_id == body.other_id:
                raise BadRequest(
                    "a customer cannot be merged with themselves", code="same_customer"
                )
            return await _card(session, keep, user), keep.id, keep.id  # merged already
        try:
            await service.merge_customers(session, into=keep, source=other)
        except MergeRefused as refused:
            channel = await channels.get_channel(session, refused.channel_id)
            where = f"«{channel.name}»" if channel else f"#{refused.channel_id}"
            raise Conflict(
                f"both customers have an open dialog in the channel {where}; close one of "
                "them first",
                code="merge_open_dialogs",
                channel_id=refused.channel_id,
            ) from None
        # Screens showing the moved dialogs learn their new customer at once.
        for dialog in await conversations.customer_dialogs(session, customer_id=keep.id):
            if dialog.status != "closed":
                await record_conversation_event(
                    session, dialog, "conversation.updated", customer_visible=False
                )
        return await _card(session, keep, user), keep.id, other.id

    card, kept, merged = await write(state, run)
    if kept != merged:
        log.info("customer.merged", actor_id=user.id, customer_id=kept, merged_id=merged)
    return card
