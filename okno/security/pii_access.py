"""Who may see personal data unmasked, and the record that they did.

Two conditions, both required: the staff member's role carries the ``pii.unmask``
permission, and the customer was verified in this very dialog within the last
OKNO_VERIFICATION_MINUTES (okno.customers.verification). Every unmasking is written to
the audit log.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from okno.operators.models import User
from okno.security import audit, permissions

UNMASK = "pii.unmask"

log = structlog.get_logger("okno.security.pii")


def may_unmask(user: User) -> bool:
    """Whether ``user``'s role (narrowed by an API token's scopes) carries ``pii.unmask``:
    the permission matrix in okno.security.permissions decides."""
    return permissions.has(user, UNMASK)


async def record_unmask(
    session: AsyncSession,
    *,
    actor: audit.Actor,
    conversation_id: int,
    customer_id: int | None,
    message_id: int,
    verification_id: int | None,
    outcome: str = "success",
) -> None:
    """Write an unmasking (or a refused attempt, ``outcome="denied"``) to the audit log in
    the caller's transaction, and a log line naming ids only."""
    details: dict[str, Any] = {
        "conversation_id": conversation_id,
        "customer_id": customer_id,
        "verification_id": verification_id,
    }
    log.info(
        "pii.unmask", actor_id=actor.user_id, message_id=message_id, outcome=outcome, **details
    )
    await audit.record(
        session,
        action=audit.PII_UNMASKED,
        actor=actor,
        object_type="message",
        object_id=message_id,
        outcome=outcome,
        details=details,
    )
