"""Record events inside a transaction, number them at commit, read them back by ``seq``.

``record_event`` only queues the event on the session. Right before commit ``seal`` takes
a block of numbers from the counter row (the row lock is held to commit, so numbers follow
commit order), stamps linked messages with their ``seq``, inserts the rows, and leaves the
sealed events for the transaction to publish after commit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from okno.conversations.models import Message
from okno.db.base import utcnow
from okno.db.session import after_commit, before_commit
from okno.errors import Gone
from okno.events.models import Counter, Event
from okno.events.visibility import CustomerViewer, StaffViewer, Viewer, visible_clause
from okno.security import masking


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
    name), never internal fields such as team, topic, priority or resolution. Staff get
    the payload with personal data masked (the stored payload keeps the original text,
    which the customer's own screen shows). No viewer: the stored shape, for the caller
    to finish.
    """
    payload = row["payload"]
    message = payload.get("message")
    if message is not None and message.get("seq") != row["seq"]:
        payload = {**payload, "message": {**message, "seq": row["seq"]}}
    if isinstance(viewer, CustomerViewer):
        payload = customer_payload(payload)
    elif isinstance(viewer, StaffViewer):
        payload = masking.staff_payload(payload)
    return {
        "seq": row["seq"],
        "type": row["type"],
        "conversation_id": row["conversation_id"],
        "payload": payload,
    }


def without_threat_names(message: dict[str, Any]) -> dict[str, Any]:
    """A shaped message (or an ``attachment.scanned`` payload) for the customer's eyes:
    the threat an antivirus named in a blocked file is for staff only. A copy when it
    changes anything."""
    atts = message.get("attachments")
    if not isinstance(atts, list) or not any(
        isinstance(a, dict) and a.get("scan_signature") for a in atts
    ):
        return message
    return {
        **message,
        "attachments": [{**a, "scan_signature": None} if isinstance(a, dict) else a for a in atts],
    }


def customer_payload(payload: dict[str, Any]) -> dict[str, Any]:
    slim = {
        k: v
        for k, v in without_threat_names(payload).items()
        # message_id + attachments: an antivirus verdict on a file the customer sent
        if k in ("message", "reader", "up_to_seq", "who", "widget", "message_id", "attachments")
    }
    if isinstance(slim.get("message"), dict):
        slim["message"] = without_threat_names(slim["message"])
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
    """Number and insert the queued events (call with nothing else left to write).

    Everything else is flushed first, so the counter row is locked only for the last
    statement and the commit. On PostgreSQL numbering, inserting the events and stamping
    the messages is one statement: the lock is then held for one round trip plus the
    commit, which is what bounds how many dialogs can commit per second.
    """
    pending: list[PendingEvent] = session.info.pop("pending_events", [])
    if not pending:
        return
    await session.flush()
    now = utcnow()
    rows = [
        {
            "type": ev.type,
            "conversation_id": ev.conversation_id,
            "customer_id": ev.customer_id,
            "customer_visible": ev.customer_visible,
            "team_id": ev.team_id,
            "assignee_id": ev.assignee_id,
            "also_user_id": ev.also_user_id,
            "assignee_only": ev.assignee_only,
            "payload": ev.payload,
            "created_at": now,
        }
        for ev in pending
    ]
    if session.get_bind().dialect.name == "postgresql":
        first = await _seal_postgres(session, pending, rows, now)
    else:
        first = await _seal_portable(session, pending, rows)
    for offset, (ev, row) in enumerate(zip(pending, rows, strict=True)):
        row["seq"] = first + offset
        if ev.message is not None:
            # The row was stamped in the database; keep the loaded object in step.
            set_committed_value(ev.message, "seq", row["seq"])
    sealed = session.info.setdefault("sealed_events", [])
    if not sealed:
        publish = session.info.get("publish")
        if publish is not None:
            after_commit(session, lambda: publish(session.info["sealed_events"]))
    sealed.extend(rows)


async def _seal_portable(
    session: AsyncSession, pending: list[PendingEvent], rows: list[dict[str, Any]]
) -> int:
    result = await session.execute(
        update(Counter)
        .where(Counter.name == "events")
        .values(value=Counter.value + len(pending))
        .returning(Counter.value)
    )
    first = int(result.scalar_one()) - len(pending) + 1
    await session.execute(insert(Event), [{**row, "seq": first + i} for i, row in enumerate(rows)])
    for i, ev in enumerate(pending):
        if ev.message is not None:
            await session.execute(
                update(Message).where(Message.id == ev.message.id).values(seq=first + i)
            )
    return first


_SEAL_PG = text(
    """
    WITH c AS (
        UPDATE counters SET value = value + :n WHERE name = 'events' RETURNING value - :n AS base
    ), ins AS (
        INSERT INTO events (seq, type, conversation_id, customer_id, customer_visible, team_id,
                            assignee_id, also_user_id, assignee_only, payload, created_at)
        SELECT c.base + r.ord, r.type, r.conversation_id, r.customer_id, r.customer_visible,
               r.team_id, r.assignee_id, r.also_user_id, r.assignee_only, r.payload, :now
        FROM c, jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            ord int, type text, conversation_id int, customer_id int, customer_visible bool,
            team_id int, assignee_id int, also_user_id int, assignee_only bool, payload jsonb)
    ), stamp AS (
        UPDATE messages m SET seq = c.base + x.ord
        FROM c, jsonb_to_recordset(CAST(:stamps AS jsonb)) AS x(ord int, id int)
        WHERE m.id = x.id
    )
    SELECT base + 1 FROM c
    """
)


async def _seal_postgres(
    session: AsyncSession, pending: list[PendingEvent], rows: list[dict[str, Any]], now: Any
) -> int:
    packed = [
        {**{k: v for k, v in row.items() if k != "created_at"}, "ord": i + 1}
        for i, row in enumerate(rows)
    ]
    stamps = [{"ord": i + 1, "id": ev.message.id} for i, ev in enumerate(pending) if ev.message]
    result = await session.execute(
        _SEAL_PG,
        {
            "n": len(pending),
            "rows": json.dumps(packed, ensure_ascii=False, default=str),
            "stamps": json.dumps(stamps),
            "now": now,
        },
    )
    return int(result.scalar_one())


def ephemeral(
    *,
    type: str,
    conversation_id: int,
    payload: dict[str, Any],
    customer_id: int,
    customer_visible: bool,
    team_id: int | None,
    assignee_id: int | None,
) -> dict[str, Any]:
    """An event that is only delivered live, never stored or numbered (typing): a client
    that missed it has lost nothing worth catching up on."""
    return {
        "seq": None,
        "type": type,
        "conversation_id": conversation_id,
        "payload": payload,
        "customer_id": customer_id,
        "customer_visible": customer_visible,
        "team_id": team_id,
        "assignee_id": assignee_id,
        "also_user_id": None,
        "assignee_only": assignee_id is not None,
    }


async def events_after(
    session: AsyncSession, *, viewer: Viewer, after_seq: int, limit: int = 500
) -> list[dict[str, Any]]:
    """Events visible to ``viewer`` with seq > after_seq, oldest first.

    Raises Gone (code ``events_pruned``) when events after ``after_seq`` were pruned:
    the client must reload its state instead of living with a gap.
    """
    await _check_not_pruned(session, after_seq)
    rows = await session.execute(
        select(Event)
        .where(Event.seq > after_seq, visible_clause(viewer))
        .order_by(Event.seq)
        .limit(limit)
    )
    events = [envelope(_as_dict(e), viewer) for e in rows.scalars()]
    # Again after reading: a prune that committed between the two statements (PostgreSQL
    # reads each statement afresh) would otherwise look like a quiet stretch.
    await _check_not_pruned(session, after_seq)
    return events


async def _check_not_pruned(session: AsyncSession, after_seq: int) -> None:
    pruned = await session.scalar(
        select(Counter.value).where(Counter.name == "events_pruned_through")
    )
    if pruned and after_seq < pruned:
        raise Gone(
            "events this old were pruned; reload the state and continue from the newest seq",
            code="events_pruned",
            pruned_through=pruned,
        )


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
