"""Customers and channel identities."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
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
