"""Record events inside a transaction, number them at commit, read them back by ``seq``.

``record_event`` only queues the event on the session. Right before commit ``seal`` takes
a block of numbers from the counter row (the row lock is held to commit, so numbers follow
commit order), stamps linked messages with their ``seq``, inserts the rows, and leaves the
sealed events for the transaction to publish after commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.db.base import utcnow
from okno.db.session import after_commit, before_commit
from okno.errors import Gone
from okno.events.models import Counter, Event
from okno.events.visibility import CustomerViewer, Viewer, visible_clause


@dataclass
class PendingEvent:
    type: str
    conversation_id: int | None
    payload: dict[str, Any]
    customer_id: int | None = None
    customer_visible: bool = False
    team_id: int | None = None
    assignee_id: int | None = None
    also_user_id: int | None = None
    assignee_only: bool = False
    message: Any = None  # a Message row to stamp with this event's seq
    extra: dict[str, Any] = field(default_factory=dict)


def record_event(session: AsyncSession, event: PendingEvent) -> None:
    """Queue ``event`` to be numbered, stored and published with this transaction."""
    session.info.setdefault("pending_events", []).append(event)
    before_commit(session, "events.seal", seal)


def envelope(row: dict[str, Any], viewer: Viewer | None = None) -> dict[str, Any]:
    """The public shape of an event: what sockets and the catch-up API send.

    A customer gets a slimmed payload: the dialog's id, status and who serves it (by
    name), never internal fields such as team, topic, priority or resolution.
    """
    payload = row["payload"]
    if isinstance(viewer, CustomerViewer):
        payload = customer_payload(payload)
    return {
        "seq": row["seq"],
        "type": row["type"],
        "conversation_id": row["conversation_id"],
        "payload": payload,
    }


def customer_payload(payload: dict[str, Any]) -> dict[str, Any]:
    slim = {k: v for k, v in payload.items() if k == "message"}
    conversation = payload.get("conversation")
    if conversation is not None:
        assignee = conversation.get("assignee")
        slim["conversation"] = {
            "id": conversation["id"],
            "status": conversation["status"],
            "assignee": {"name": assignee["name"]} if assignee else None,
        }
    return slim


async def seal(session: AsyncSession) -> None:
    """Number and insert the queued events (call with nothing else left to write)."""
    pending: list[PendingEvent] = session.info.pop("pending_events", [])
    if not pending:
        return
    result = await session.execute(
        update(Counter)
        .where(Counter.name == "events")
        .values(value=Counter.value + len(pending))
        .returning(Counter.value)
    )
    last = result.scalar_one()
    first = last - len(pending) + 1
    now = utcnow()
    rows = []
    for offset, ev in enumerate(pending):
        seq = first + offset
        payload = dict(ev.payload)
        if ev.message is not None:
            ev.message.seq = seq
            if "message" in payload:
                payload["message"] = {**payload["message"], "seq": seq}
        rows.append(
            {
                "seq": seq,
                "type": ev.type,
                "conversation_id": ev.conversation_id,
                "customer_id": ev.customer_id,
                "customer_visible": ev.customer_visible,
                "team_id": ev.team_id,
                "assignee_id": ev.assignee_id,
                "also_user_id": ev.also_user_id,
                "assignee_only": ev.assignee_only,
                "payload": payload,
                "created_at": now,
            }
        )
    await session.flush()
    await session.execute(insert(Event), rows)
    sealed = session.info.setdefault("sealed_events", [])
    if not sealed:
        publish = session.info.get("publish")
        if publish is not None:
            after_commit(session, lambda: publish(session.info["sealed_events"]))
    sealed.extend(rows)


async def events_after(
    session: AsyncSession, *, viewer: Viewer, after_seq: int, limit: int = 500
) -> list[dict[str, Any]]:
    """Events visible to ``viewer`` with seq > after_seq, oldest first.

    Raises Gone (code ``events_pruned``) when events after ``after_seq`` were pruned:
    the client must reload its state instead of living with a gap.
    """
    pruned = await session.scalar(
        select(Counter.value).where(Counter.name == "events_pruned_through")
    )
    if pruned and after_seq < pruned:
        raise Gone(
            "events this old were pruned; reload the state and continue from the newest seq",
            code="events_pruned",
            pruned_through=pruned,
        )
    rows = await session.execute(
        select(Event)
        .where(Event.seq > after_seq, visible_clause(viewer))
        .order_by(Event.seq)
        .limit(limit)
    )
    return [envelope(_as_dict(e), viewer) for e in rows.scalars()]


async def last_seq(session: AsyncSession) -> int:
    """The newest event number handed out."""
    return int(await session.scalar(select(Counter.value).where(Counter.name == "events")) or 0)


async def prune_events(session: AsyncSession, *, older_than_days: int) -> int:
    """Delete events older than the retention; remember up to which seq they are gone."""
    cutoff = utcnow() - timedelta(days=older_than_days)
    newest_old = await session.scalar(select(func.max(Event.seq)).where(Event.created_at < cutoff))
    if newest_old is None:
        return 0
    result = await session.execute(delete(Event).where(Event.seq <= newest_old))
    await session.execute(
        update(Counter)
        .where(Counter.name == "events_pruned_through", Counter.value < newest_old)
        .values(value=newest_old)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _as_dict(event: Event) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "type": event.type,
        "conversation_id": event.conversation_id,
        "payload": event.payload,
    }
