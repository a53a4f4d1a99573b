"""The customer card: who the customer is, in every channel, and every dialog before."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.conversations import service as conversations
from okno.conversations.messaging import ATTACHMENT_URL, record_conversation_event
from okno.conversations.views import messages_out
from okno.customers import service
from okno.customers.models import Customer, CustomerIdentity
from okno.customers.schemas import (
    CallIn,
    CallOut,
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
from okno.errors import BadGateway, BadRequest, Conflict, Forbidden, NotFound
from okno.http import AppState, State, require, write
from okno.inputs import IdPath, OptionalSeqQuery
from okno.operators.models import User
from okno.security import audit, masking, permissions
from okno.telephony import pbx

log = structlog.get_logger("okno.customers")
router = APIRouter(prefix="/api/v1/customers", tags=["customers"])
T = TypeVar("T")
Reader = Annotated[User, require("customers.read")]
Editor = Annotated[User, require("customers.edit")]
Caller = Annotated[User, require("conversations.reply")]  # contacting the customer
Merger = Annotated[User, require("customers.merge")]


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
    if permissions.sees_all_teams(user):
        return True
    dialogs = await conversations.customer_dialogs(session, customer_id=customer.id)
    return any(conversations.staff_may_access(d, user) for d in dialogs)


def _identity_out(identity: CustomerIdentity, channel_rows: dict[int, Any]) -> IdentityOut:
    channel = channel_rows[identity.channel_id]
    return IdentityOut(
        channel_id=identity.channel_id,
        channel_kind=channel.kind,
        channel_name=channel.name,
        external_id=masking.identity(channel.kind, identity.external_id),
    )


async def _card(
    session: AsyncSession, customer: Customer, user: User, state: AppState
) -> CustomerCard:
    """The card as staff see it: personal data in names, notes, attributes and previews
    masked, phone-number identities never shown."""
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
        name=masking.text(customer.display_name),
        tags=list(customer.tags or []),
        attributes=masking.value(dict(customer.attributes or {})),
        identities=[_identity_out(i, channel_rows) for i in identities],
        notes=[
            NoteOut(
                id=n.id,
                author_id=n.author_id,
                author_name=authors.get(n.author_id, ""),
                text=masking.text(n.text),
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
                last_message_preview=masking.text(d.last_message_preview or ""),
            )
            for d in dialogs
        ],
        created_at=customer.created_at,
        can_call=bool(state.settings.click_to_call_url),
    )


@router.get("", response_model=CustomerSearchOut)
async def search(
    user: Reader,
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
                    name=masking.text(customer.display_name),
                    identities=[_identity_out(i, channel_rows) for i in identities],
                    dialogs=len(dialogs),
                    created_at=customer.created_at,
                )
            )
    return CustomerSearchOut(customers=found)


@router.get("/{customer_id}", response_model=CustomerCard)
async def card(customer_id: IdPath, user: Reader, state: State, request: Request) -> CustomerCard:
    """The customer card: identities in every channel, tags, attributes, notes, and
    every dialog (newest first) the viewer may see. Every view is in the audit log."""

    async def run(session: AsyncSession) -> CustomerCard:
        customer = await _access(session, customer_id, user)
        await audit.record(
            session,
            action=audit.CUSTOMER_VIEWED,
            actor=audit.actor_of(user, request),
            object_type="customer",
            object_id=customer.id,
        )
        return await _card(session, customer, user, state)

    return await _audited_read(state, run, audit.CUSTOMER_VIEWED, customer_id, user, request)


async def _audited_read(
    state: AppState,
    run: Callable[[AsyncSession], Awaitable[T]],
    action: str,
    customer_id: int,
    user: User,
    request: Request,
) -> T:
    """Run a read of personal data in a write transaction, so that its audit entry commits
    with it; a refused read is recorded as denied."""
    try:
        return await write(state, run)
    except Forbidden:
        await audit.record_separately(
            state.db,
            action=action,
            actor=audit.actor_of(user, request),
            object_type="customer",
            object_id=customer_id,
            outcome="denied",
        )
        raise


@router.get("/{customer_id}/timeline", response_model=TimelineOut)
async def timeline(
    customer_id: IdPath,
    user: Reader,
    state: State,
    request: Request,
    before_seq: OptionalSeqQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TimelineOut:
    """The customer's whole history in every channel on one timeline: the newest ``limit``
    messages (internal notes included) before ``before_seq`` of every dialog you may see,
    oldest first; page back with the first item's seq while ``has_more``. Every read is in
    the audit log."""

    async def run(session: AsyncSession) -> tuple[Any, list[Any], dict[int, Any]]:
        customer = await _access(session, customer_id, user)
        found = await conversations.customer_timeline(
            session, customer_id=customer.id, viewer=user, before_seq=before_seq, limit=limit
        )
        shaped = await messages_out(
            session,
            found.messages,
            url_prefix=ATTACHMENT_URL,
            customer_names={d.id: customer.display_name for d in found.dialogs},
            masked=True,
        )
        await audit.record(
            session,
            action=audit.CUSTOMER_HISTORY_VIEWED,
            actor=audit.actor_of(user, request),
            object_type="customer",
            object_id=customer.id,
            details={"messages": len(shaped), "before_seq": before_seq},
        )
        return found, shaped, {c.id: c for c in await channels.list_channels(session)}

    found, shaped, channel_rows = await _audited_read(
        state, run, audit.CUSTOMER_HISTORY_VIEWED, customer_id, user, request
    )
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
    customer_id: IdPath, body: CustomerPatch, user: Editor, state: State
) -> CustomerCard:
    """Change the name, tags or attributes (a null attribute value removes it)."""

    async def run(session: AsyncSession) -> CustomerCard:
        customer = await _access(session, customer_id, user)
        await service.update_customer(
            session, customer, name=body.name, tags=body.tags, attributes=body.attributes
        )
        return await _card(session, customer, user, state)

    return await write(state, run)


@router.post("/{customer_id}/notes", response_model=NoteOut, status_code=201)
async def add_note(customer_id: IdPath, body: NoteIn, user: Editor, state: State) -> NoteOut:
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
async def merge(customer_id: IdPath, body: MergeIn, user: Merger, state: State) -> CustomerCard:
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
            return await _card(session, keep, user, state), keep.id, keep.id  # merged already
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
        return await _card(session, keep, user, state), keep.id, other.id

    card, kept, merged = await write(state, run)
    if kept != merged:
        log.info("customer.merged", actor_id=user.id, customer_id=kept, merged_id=merged)
    return card


@router.post("/{customer_id}/call", response_model=CallOut)
async def call(
    customer_id: IdPath, user: Caller, state: State, body: CallIn | None = None
) -> CallOut:
    """Call the customer through the bank's PBX ("Позвонить"): okno sends the PBX the
    customer's ids and the number it knows; the number never reaches the browser.
    409 ``click_to_call_not_configured`` without OKNO_CLICK_TO_CALL_URL, 409 ``no_phone``
    when neither a number nor the bank's id of the customer is known, 502
    ``pbx_unavailable`` when the PBX refuses or does not answer."""
    if not state.settings.click_to_call_url:
        raise Conflict(
            "click-to-call is not configured (OKNO_CLICK_TO_CALL_URL)",
            code="click_to_call_not_configured",
        )
    conversation_id = body.conversation_id if body else None
    async with state.db.read() as session:
        customer = await _access(session, customer_id, user)
        identities = await service.identities_of(session, customer.id)
        channel_rows = {c.id: c for c in await channels.list_channels(session)}
        dialogs = await conversations.customer_dialogs(session, customer_id=customer.id)
    if conversation_id is not None and conversation_id not in {d.id for d in dialogs}:
        raise NotFound(f"conversation {conversation_id} is not this customer's", code="not_found")
    phone = _phone_of(customer, identities, channel_rows)
    bank_id = next((d.verified_as for d in dialogs if d.verified_as), None) or _attr(
        customer, "bank_customer_id"
    )
    if phone is None and bank_id is None:
        raise Conflict("okno knows no number for this customer", code="no_phone")
    try:
        call_id = await pbx.click_to_call(
            state.settings,
            {
                "customer_id": customer.id,
                "bank_customer_id": bank_id,
                "phone": phone,
                "conversation_id": conversation_id,
                "operator": {"id": user.id, "login": user.login},
            },
        )
    except pbx.CallFailed as exc:
        log.warning("call.failed", actor_id=user.id, customer_id=customer.id, reason=exc.reason)
        raise BadGateway(exc.reason, code="pbx_unavailable") from None
    log.info("call.placed", actor_id=user.id, customer_id=customer.id, call_id=call_id)
    return CallOut(call_id=call_id)


def _attr(customer: Customer, name: str) -> str | None:
    value = (customer.attributes or {}).get(name)
    return str(value).strip() if isinstance(value, str | int) and str(value).strip() else None


def _phone_of(
    customer: Customer, identities: list[CustomerIdentity], channel_rows: dict[int, Any]
) -> str | None:
    """The number to dial: a phone-number identity (WhatsApp's wa_id), else the
    customer's ``phone`` attribute."""
    for identity in identities:
        channel = channel_rows.get(identity.channel_id)
        if channel is not None and channel.kind in masking.PHONE_ID_KINDS:
            digits = "".join(ch for ch in identity.external_id if ch.isdigit())
            if digits:
                return "+" + digits
    return _attr(customer, "phone")
