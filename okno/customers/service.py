"""Customers and channel identities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.customers.models import Customer, CustomerIdentity, CustomerNote
from okno.errors import BadRequest

GENERATED_NAME_PREFIX = "Клиент #"


def is_generated_name(name: str) -> bool:
    """Whether the name is the placeholder given to a customer who did not say theirs."""
    rest = name.removeprefix(GENERATED_NAME_PREFIX)
    return rest != name and rest.isdigit()


async def get_identity(
    session: AsyncSession, *, channel_id: int, external_id: str
) -> CustomerIdentity | None:
    return await session.scalar(
        select(CustomerIdentity).where(
            CustomerIdentity.channel_id == channel_id,
            CustomerIdentity.external_id == external_id,
        )
    )


async def get_or_create_identity(
    session: AsyncSession, *, channel_id: int, external_id: str, display_name: str = ""
) -> CustomerIdentity:
    """The identity for this channel id, creating the customer on first contact.

    Two concurrent first contacts collide on the unique (channel, external id): the loser's
    transaction fails with IntegrityError and its retry finds the winner's row.
    """
    identity = await get_identity(session, channel_id=channel_id, external_id=external_id)
    if identity is not None:
        if display_name:
            customer = await session.get(Customer, identity.customer_id)
            if customer is not None and customer.display_name != display_name:
                customer.display_name = display_name
        return identity
    customer = Customer(display_name=display_name)
    session.add(customer)
    await session.flush()
    if not display_name:
        customer.display_name = f"{GENERATED_NAME_PREFIX}{customer.id}"
    identity = CustomerIdentity(
        customer_id=customer.id, channel_id=channel_id, external_id=external_id
    )
    session.add(identity)
    await session.flush()
    return identity


async def get_or_link_identity(
    session: AsyncSession,
    *,
    channel_id: int,
    external_id: str,
    linked_channel_ids: list[int],
    display_name: str = "",
) -> CustomerIdentity:
    """The identity for this channel id; on first contact in this channel it joins the
    customer who already has the same external id in one of ``linked_channel_ids`` (the
    bank vouched for both: ``bank:<id>`` in its widget and in its app), else a new customer.
    So one person keeps one history across the bank's own channels."""
    identity = await get_identity(session, channel_id=channel_id, external_id=external_id)
    if identity is None and linked_channel_ids:
        known = await session.scalar(
            select(CustomerIdentity.customer_id)
            .where(
                CustomerIdentity.external_id == external_id,
                CustomerIdentity.channel_id.in_(linked_channel_ids),
            )
            .order_by(CustomerIdentity.id)
            .limit(1)
        )
        if known is not None:
            identity = CustomerIdentity(
                customer_id=known, channel_id=channel_id, external_id=external_id
            )
            session.add(identity)
            await session.flush()
            return identity
    return await get_or_create_identity(
        session, channel_id=channel_id, external_id=external_id, display_name=display_name
    )


async def get_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.get(Customer, customer_id)


async def identities_of(session: AsyncSession, customer_id: int) -> list[CustomerIdentity]:
    rows = await session.scalars(
        select(CustomerIdentity)
        .where(CustomerIdentity.customer_id == customer_id)
        .order_by(CustomerIdentity.id)
    )
    return list(rows.all())


async def notes_of(session: AsyncSession, customer_id: int) -> list[CustomerNote]:
    rows = await session.scalars(
        select(CustomerNote)
        .where(CustomerNote.customer_id == customer_id)
        .order_by(CustomerNote.id.desc())
    )
    return list(rows.all())


async def add_note(
    session: AsyncSession, *, customer_id: int, author_id: int, text: str
) -> CustomerNote:
    note = CustomerNote(customer_id=customer_id, author_id=author_id, text=text.strip())
    session.add(note)
    await session.flush()
    return note


MAX_ATTRIBUTES = 50


async def update_customer(
    session: AsyncSession,
    customer: Customer,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    attributes: dict[str, Any] | None = None,
) -> Customer:
    """Rename, retag, or merge attributes (a None value removes that attribute)."""
    if name is not None:
        customer.display_name = " ".join(name.split())
    if tags is not None:
        cleaned: list[str] = []
        for tag in tags:
            value = " ".join(tag.split()).lower()[:50]
            if value and value not in cleaned:
                cleaned.append(value)
        customer.tags = cleaned[:20]
    if attributes is not None:
        merged = dict(customer.attributes or {})
        for key, value in attributes.items():
            if not key or len(key) > 50:
                raise BadRequest("attribute names are 1-50 characters", code="invalid_attribute")
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if len(merged) > MAX_ATTRIBUTES:
            raise BadRequest(f"at most {MAX_ATTRIBUTES} attributes", code="too_many_attributes")
        customer.attributes = merged
    await session.flush()
    return customer


def normalise_phone(phone: str) -> str | None:
    """Digits of a phone number in international form (8XXXXXXXXXX -> 7XXXXXXXXXX, Russia's
    trunk prefix); None when it is not a plausible number."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    if len(digits) == 10 and digits.startswith("9"):
        digits = "7" + digits
    return digits if 10 <= len(digits) <= 15 else None


async def link_verified_phone(
    session: AsyncSession, *, customer_id: int, phone: str, signing_key: str
) -> int:
    """Record a phone number a platform or the bank vouches is this customer's own; when
    another customer already has it, the two are one person and are merged (into the older
    one). Returns the customer id the identity ends up with."""
    from okno.security.secrets import keyed_hash

    normal = normalise_phone(phone)
    if normal is None:
        return customer_id
    digest = keyed_hash("phone:" + normal, signing_key)
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return customer_id
    other = await session.scalar(
        select(Customer)
        .where(
            Customer.verified_phone_hash == digest,
            Customer.id != customer_id,
            Customer.merged_into_id.is_(None),
        )
        .order_by(Customer.id)
        .limit(1)
    )
    customer.verified_phone_hash = digest
    if other is None:
        await session.flush()
        return customer_id
    keep, gone = (other, customer) if other.id < customer.id else (customer, other)
    await merge_customers(session, into=keep, source=gone)
    return keep.id


class MergeRefused(Exception):
    """Both customers have an unfinished dialog in the same channel."""

    def __init__(self, channel_id: int) -> None:
        super().__init__(channel_id)
        self.channel_id = channel_id


async def merge_customers(session: AsyncSession, *, into: Customer, source: Customer) -> None:
    """Make ``source`` part of ``into``: its channel identities, dialogs and notes move, its
    tags and attributes join (``into``'s win on a clash), and it is marked merged. The
    operator then sees one history. Refused while both have an open dialog in one channel
    (one of them must be closed first: two open dialogs of one person in one channel would
    split the conversation)."""
    from sqlalchemy import update

    from okno.conversations.models import Conversation

    if into.id == source.id:
        return
    open_rows = await session.execute(
        select(Conversation.channel_id, Conversation.customer_id).where(
            Conversation.customer_id.in_((into.id, source.id)), Conversation.status != "closed"
        )
    )
    seen: dict[int, int] = {}
    for channel_id, owner in open_rows:
        if channel_id in seen and seen[channel_id] != owner:
            raise MergeRefused(channel_id)
        seen[channel_id] = owner
    await session.execute(
        update(CustomerIdentity)
        .where(CustomerIdentity.customer_id == source.id)
        .values(customer_id=into.id)
    )
    await session.execute(
        update(Conversation)
        .where(Conversation.customer_id == source.id)
        .values(customer_id=into.id)
    )
    await session.execute(
        update(CustomerNote)
        .where(CustomerNote.customer_id == source.id)
        .values(customer_id=into.id)
    )
    into.tags = list(dict.fromkeys([*(into.tags or []), *(source.tags or [])]))[:20]
    into.attributes = {**(source.attributes or {}), **(into.attributes or {})}
    if is_generated_name(into.display_name) and not is_generated_name(source.display_name):
        into.display_name = source.display_name
    if into.verified_phone_hash is None:
        into.verified_phone_hash = source.verified_phone_hash
    source.merged_into_id = into.id
    source.verified_phone_hash = None
    await session.flush()


async def current_customer(session: AsyncSession, customer_id: int) -> Customer | None:
    """The customer as they are now: following merges, a customer merged into another is
    that other one (links and tabs opened before a merge keep working)."""
    customer = await session.get(Customer, customer_id)
    seen: set[int] = set()
    while customer is not None and customer.merged_into_id is not None:
        if customer.id in seen:  # a cycle cannot be made by merge_customers; never loop
            break
        seen.add(customer.id)
        customer = await session.get(Customer, customer.merged_into_id)
    return customer


SEARCH_HIDDEN_KINDS = ("widget",)  # a widget visitor id resumes a session: not a search key


async def search_customers(session: AsyncSession, *, query: str, limit: int) -> list[Customer]:
    """Customers (not merged away) whose name contains ``query``, or who have exactly this
    id in some channel (a Telegram chat id, an e-mail address), or ``#id``. Newest first;
    the caller filters by what the viewer may see."""
    from okno.channels.models import Channel

    text = " ".join(query.split())
    if not text:
        return []
    # SQLite's case folding is ASCII-only: try the spellings people type Cyrillic names in.
    variants = {text, text.lower(), text.capitalize(), text.title(), text.upper()}
    by_name = or_(
        *(Customer.display_name.ilike(f"%{_escape_like(v)}%", escape="\\") for v in variants)
    )
    by_identity = Customer.id.in_(
        select(CustomerIdentity.customer_id)
        .join(Channel, Channel.id == CustomerIdentity.channel_id)
        .where(
            CustomerIdentity.external_id.in_([text, text.lower()]),
            Channel.kind.not_in(SEARCH_HIDDEN_KINDS),
        )
    )
    conditions = [by_name, by_identity]
    number = text.removeprefix("#")
    if number.isdigit() and len(number) < 10:
        conditions.append(Customer.id == int(number))
    rows = await session.scalars(
        select(Customer)
        .where(or_(*conditions), Customer.merged_into_id.is_(None))
        .order_by(Customer.id.desc())
        .limit(limit)
    )
    return list(rows.all())


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
