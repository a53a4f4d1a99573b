"""Operator presence: the status an operator chose, and whether their workspace is connected.

An operator is *available* while their status is ``online`` and a socket of theirs was seen
by some app process within ``CONNECTED_WITHIN`` (every process refreshes ``last_seen_at`` of
the users connected to it; a crashed process simply stops refreshing). Routing (issue 5)
reads availability from here; supervisors see it live through
``operator.presence_changed`` events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.errors import BadRequest
from okno.events.service import PendingEvent, record_event
from okno.operators.models import PRESENCE_STATUSES, Presence, User
from okno.routing.triggers import request_dispatch
from okno.security import permissions

CONNECTED_WITHIN = timedelta(seconds=60)
HEARTBEAT_SECONDS = 20


@dataclass(frozen=True)
class PresenceView:
    user_id: int
    name: str
    role: str
    team_id: int | None
    status: str
    since: datetime
    connected: bool

    @property
    def available(self) -> bool:
        return self.status == "online" and self.connected


def _connected(row: Presence | None, now: datetime) -> bool:
    return bool(row and row.last_seen_at and now - row.last_seen_at < CONNECTED_WITHIN)


def view(user: User, row: Presence | None, now: datetime | None = None) -> PresenceView:
    now = now or utcnow()
    return PresenceView(
        user_id=user.id,
        name=user.display_name,
        role=user.role,
        team_id=user.team_id,
        status=row.status if row else "offline",
        since=row.since if row else user.created_at,
        connected=_connected(row, now),
    )


async def _row(session: AsyncSession, user_id: int) -> Presence:
    row = await session.get(Presence, user_id, with_for_update=True)
    if row is None:
        row = Presence(user_id=user_id, status="offline", since=utcnow())
        session.add(row)
        await session.flush()
    return row


def _announce(session: AsyncSession, user: User, row: Presence) -> None:
    shaped = view(user, row)
    record_event(
        session,
        PendingEvent(
            type="operator.presence_changed",
            conversation_id=None,
            payload={
                "operator": {
                    "id": user.id,
                    "name": user.display_name,
                    "team_id": user.team_id,
                    "status": shaped.status,
                    "connected": shaped.connected,
                    "since": shaped.since.isoformat(),
                }
            },
            team_id=user.team_id,
        ),
    )


async def set_status(session: AsyncSession, *, user: User, status: str) -> PresenceView:
    """Change the operator's own status; announces it when it changed."""
    if status not in PRESENCE_STATUSES:
        raise BadRequest(
            f"status must be one of {', '.join(PRESENCE_STATUSES)}", code="invalid_status"
        )
    row = await _row(session, user.id)
    if row.status != status:
        row.status = status
        row.since = utcnow()
        _announce(session, user, row)
        if status == "online":
            await request_dispatch(session)  # back from a break: the queue may go to them
    return view(user, row)


async def connected(session: AsyncSession, *, user: User) -> None:
    """A workspace socket of ``user`` opened: refresh, and coming online from offline."""
    row = await _row(session, user.id)
    was_connected = _connected(row, utcnow())
    row.last_seen_at = utcnow()
    if row.status == "offline":
        row.status = "online"
        row.since = utcnow()
        _announce(session, user, row)
    elif not was_connected:
        _announce(session, user, row)
    if row.status == "online" and not was_connected:
        await request_dispatch(session)


async def heartbeat(session: AsyncSession, *, user_ids: list[int]) -> None:
    """Mark these users' sockets as seen now (called periodically by every app process)."""
    if user_ids:
        await session.execute(
            update(Presence).where(Presence.user_id.in_(user_ids)).values(last_seen_at=utcnow())
        )


async def list_presence(session: AsyncSession, *, viewer: User) -> list[PresenceView]:
    """Staff presence the viewer may see: everyone for those who see all teams (admins,
    team-less supervisors) or no dialogs at all (auditors), otherwise the viewer's team."""
    query = (
        select(User, Presence)
        .outerjoin(Presence, Presence.user_id == User.id)
        .where(User.is_active, User.role.in_(permissions.INTERACTIVE_ROLES))
    )
    if not permissions.sees_all_staff(viewer):
        query = query.where(User.team_id == viewer.team_id)
    now = utcnow()
    rows = await session.execute(query.order_by(User.display_name))
    return [view(user, row, now) for user, row in rows]
