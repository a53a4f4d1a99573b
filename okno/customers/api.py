"""The customer card: who the customer is, in every channel, and every dialog before."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.conversations import service as conversations
from okno.conversations.messaging import ATTACHMENT_URL
from okno.conversations.views import messages_out
from okno.customers import service
from okno.customers.models import Customer
from okno.customers.schemas import (
    CustomerCard,
    CustomerPatch,
    DialogOut,
    IdentityOut,
    NoteIn,
    NoteOut,
    TimelineMessage,
    TimelineOut,
)
from okno.errors import Forbidden, NotFound
from okno.http import CurrentUser, State, write
from okno.inputs import IdPath, OptionalSeqQuery
from okno.operators.models import User

log = structlog.get_logger("okno.customers")
router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
SECRET_ID_KINDS = ("widget",)  # a widget visitor id resumes the session: never shown


async def _access(session: AsyncSession, customer_id: IdPath, user: User) -> Customer:
    """The customer if the user may serve one of their dialogs (team rule)."""
    customer = await service.get_customer(session, customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} does not exist", code="not_found")
    dialogs = await conversations.customer_dialogs(session, customer_id=customer_id)
    if not any(conversations.staff_may_access(d, user) for d in dialogs) and not (
        user.role == "admin" or (user.role == "supervisor" and user.team_id is None)
    ):
        log.warning("access.denied", user_id=user.id, customer_id=customer_id)
        raise Forbidden("this customer is served by another team", code="forbidden_team")
    return customer


def _mask(kind: str, external_id: str) -> str:
    if kind in SECRET_ID_KINDS:
        return "•••" + external_id[-4:] if len(external_id) > 8 else "•••"
    return external_id


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
        identities=[
            IdentityOut(
                channel_id=i.channel_id,
                channel_kind=channel_rows[i.channel_id].kind,
                channel_name=channel_rows[i.channel_id].name,
                external_id=_mask(channel_rows[i.channel_id].kind, i.external_id),
            )
            for i in identities
        ],
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
