"""Customers and channel identities."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.customers.models import Customer, CustomerIdentity

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
