"""Revoking staff credentials at once: every access token and browser session carries its
account's *generation* (claim ``gen``); raising the generation makes all of them invalid on
their next use, in every process, without a list of issued tokens.

Raised when the password changes, when an admin disables the account or presses "sign out
everywhere", and when the user signs out everywhere themselves. Open sockets of the account
are closed by the process that revoked at once and by the others at their next presence
heartbeat (``revoked_since``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.errors import Unauthorized
from okno.operators.auth_models import SignInState


async def state_for(session: AsyncSession, user_id: int) -> SignInState:
    """The account's sign-in row, created on first need (accounts made before 0011 or by
    other paths have none)."""
    row = await session.get(SignInState, user_id)
    if row is None:
        row = SignInState(
            user_id=user_id,
            source="local",
            failed_attempts=0,
            totp_enabled=False,
            token_generation=0,
            must_change_password=False,
        )
        session.add(row)
        await session.flush()
    return row


async def state_of(session: AsyncSession, user_id: int) -> SignInState | None:
    """The account's sign-in row, None when it has none yet (a local account)."""
    return await session.get(SignInState, user_id)


async def generation(session: AsyncSession, user_id: int) -> int:
    """The account's current credential generation (0 when never revoked)."""
    value = await session.scalar(
        select(SignInState.token_generation).where(SignInState.user_id == user_id)
    )
    return int(value or 0)


async def check(session: AsyncSession, user_id: int, token_generation: Any) -> None:
    """Refuse (401 ``token_revoked``) a credential from before the last revocation."""
    try:
        carried = int(token_generation or 0)
    except (TypeError, ValueError):
        carried = -1
    if carried != await generation(session, user_id):
        raise Unauthorized(
            "this sign-in was ended (password changed or signed out everywhere); sign in again",
            code="token_revoked",
        )


async def revoke(session: AsyncSession, user_id: int) -> int:
    """End every token and session of the account; returns the new generation."""
    row = await state_for(session, user_id)
    row.token_generation = (row.token_generation or 0) + 1
    row.sessions_revoked_at = utcnow()
    await session.flush()
    return row.token_generation


async def revoked_since(
    session: AsyncSession, user_ids: Iterable[int], since: datetime
) -> set[int]:
    """Which of these accounts were revoked after ``since`` (for closing sockets)."""
    ids = list(user_ids)
    if not ids:
        return set()
    rows = await session.scalars(
        select(SignInState.user_id).where(
            SignInState.user_id.in_(ids), SignInState.sessions_revoked_at > since
        )
    )
    return set(rows.all())
