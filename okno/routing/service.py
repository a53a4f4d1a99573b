"""The routing engine: place waiting dialogs in queues, give them to operators, take them
back from operators who left.

One *dispatch pass* runs at a time in the whole installation (a PostgreSQL advisory lock;
SQLite has one writer anyway), so two processes can never both fill the last free place of
an operator: capacity holds under any number of concurrent arrivals. A pass:

1. places new waiting dialogs (queue, priority, first-response deadline; tells the customer
   when the queue is closed);
2. loads the operators who may get work now (online, connected, room left) with their load;
3. walks the waiting dialogs most urgent first — priority, then the nearest first-response
   deadline — and gives each to the best eligible operator by its queue's strategy;
4. writes the assignments, each with the reason and the candidates weighed.

Passes are triggered by the events that can change an answer (a dialog waits, a dialog
closes, an operator comes online) through a deduplicated job, and every few seconds by the
watchdog, which also re-queues dialogs of operators gone longer than the grace period.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels.models import Channel
from okno.conversations.models import Conversation
from okno.customers.models import Customer
from okno.db.base import utcnow
from okno.errors import BadRequest, Conflict, NotFound
from okno.operators.models import Presence, Team, User
from okno.operators.presence import CONNECTED_WITHIN
from okno.routing import rules
from okno.routing.models import STRATEGIES, Assignment, Queue
from okno.security.permissions import roles_with

ADVISORY_KEY = 7_270_001  # pg_advisory_xact_lock key of the dispatch pass
MAX_CANDIDATES_LOGGED = 8


# ------------------------------------------------------------------ queues


async def list_queues(session: AsyncSession) -> list[Queue]:
    return list((await session.scalars(select(Queue).order_by(Queue.name))).all())


async def get_queue(session: AsyncSession, queue_id: int) -> Queue:
    queue = await session.get(Queue, queue_id)
    if queue is None:
        raise NotFound(f"queue {queue_id} does not exist", code="queue_not_found")
    return queue


async def save_queue(session: AsyncSession, queue: Queue | None, values: dict[str, Any]) -> Queue:
    """Create (``queue`` None) or change a queue; checks what the admin form cannot."""
    if "strategy" in values and values["strategy"] not in STRATEGIES:
        raise BadRequest(
            f"strategy must be one of {', '.join(STRATEGIES)}",
            code="bad_strategy",
            field="strategy",
        )
    if "hours" in values:
        try:
            values["hours"] = rules.validate_hours(values["hours"])
        except rules.HoursError as exc:
            raise BadRequest(str(exc), code="bad_hours", field="hours") from None
    for key in ("team_id", "overflow_team_id"):
        team_id = values.get(key)
        if team_id is not None and (await session.get(Team, team_id)) is None:
            raise BadRequest(f"team {team_id} does not exist", code="unknown_team", field=key)
    for key, label in (("name", "name"), ("topic", "topic")):
        wanted = values.get(key)
        if wanted is None:
            continue
        clash = await session.scalar(
            select(Queue.id).where(
                getattr(Queue, key) == wanted, Queue.id != (queue.id if queue else 0)
            )
        )
        if clash is not None:
            raise Conflict(f"another queue has this {label}", code=f"{label}_taken", field=key)
    if values.get("is_default"):
        await session.execute(update(Queue).values(is_default=False))
    if queue is None:
        queue = Queue(**values)
        session.add(queue)
    else:
        if values.get("is_active") is False and queue.is_active:
            # its waiting dialogs are placed again (default queue), not stranded in it
            await session.execute(
                update(Conversation)
                .where(Conversation.queue_id == queue.id, Conversation.status == "waiting")
                .values(queue_id=None, queued_at=None)
            )
        for key, value in values.items():
            setattr(queue, key, value)
    await session.flush()
    return queue


# ------------------------------------------------------------------ placing


@dataclass
class Placed:
    queue: Queue | None
    out_of_hours_until: datetime | None


async def _queue_for(session: AsyncSession, topic: str | None, queues: list[Queue]) -> Queue | None:
    active = [q for q in queues if q.is_active]
    if topic:
        for q in active:
            if q.topic == topic:
                return q
    return next((q for q in active if q.is_default), None)


def _is_vip(customer: Customer | None) -> bool:
    if customer is None:
        return False
    tags = {str(t).lower() for t in customer.tags or []}
    return "vip" in tags or bool((customer.attributes or {}).get("vip"))


async def place(
    session: AsyncSession,
    conversation: Conversation,
    *,
    queues: list[Queue],
    channel: Channel,
    now: datetime,
) -> Placed:
    """Put a waiting dialog in its queue: priority, first-response deadline, team."""
    if not conversation.topic and (channel.config or {}).get("topic"):
        conversation.topic = str(channel.config["topic"])  # the entry point's topic
    queue = await _queue_for(session, conversation.topic, queues)
    customer = await session.get(Customer, conversation.customer_id)
    rule = rules.channel_rule(channel.kind, channel.config)
    waiting_since = conversation.awaiting_since or conversation.created_at or now
    conversation.queue_id = queue.id if queue else None
    conversation.queued_at = now
    conversation.sla_due_at = waiting_since + timedelta(seconds=rule.first_response_seconds)
    conversation.priority = (queue.priority if queue else 0) + (
        rules.VIP_BONUS if _is_vip(customer) else 0
    )
    if queue is not None and queue.team_id is not None and conversation.team_id is None:
        conversation.team_id = queue.team_id  # the queue's team sees it waiting
    opens = rules.next_opening(queue.hours, now) if queue is not None else None
    return Placed(queue=queue, out_of_hours_until=opens)


# ------------------------------------------------------------------ candidates


@dataclass
class Candidate:
    user_id: int
    name: str
    team_id: int | None
    capacity: float
    load: float
    skills: dict[str, int]
    last_assigned_at: datetime | None
    assigned: list[int] = field(default_factory=list)

    def idle_seconds(self, now: datetime) -> float:
        return (now - self.last_assigned_at).total_seconds() if self.last_assigned_at else 1e9


async def available_operators(session: AsyncSession, now: datetime) -> list[Candidate]:
    """Operators who may get work now: active, online, connected, with their current load
    (sum of the channel weights of their unfinished dialogs)."""
    # plain columns, not ORM objects: this runs on every pass, for hundreds of operators
    rows = (
        await session.execute(
            select(
                User.id,
                User.display_name,
                User.team_id,
                User.capacity,
                User.skills,
                Presence.last_assigned_at,
            )
            .join(Presence, Presence.user_id == User.id)
            .where(
                User.is_active.is_(True),
                User.role.in_(roles_with("conversations.receive")),
                Presence.status == "online",
                Presence.last_seen_at > now - CONNECTED_WITHIN,
            )
        )
    ).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    loads: dict[int, float] = {i: 0.0 for i in ids}
    channel_cfg = await _channels(session)
    for assignee_id, channel_id, n in (
        await session.execute(
            select(Conversation.assignee_id, Conversation.channel_id, func.count())
            .where(Conversation.status == "assigned", Conversation.assignee_id.in_(ids))
            .group_by(Conversation.assignee_id, Conversation.channel_id)
        )
    ).all():
        kind, cfg = channel_cfg.get(channel_id, ("", {}))
        if assignee_id is not None:
            loads[assignee_id] += rules.channel_rule(kind, cfg).weight * n
    return [
        Candidate(
            user_id=row.id,
            name=row.display_name,
            team_id=row.team_id,
            capacity=float(row.capacity),
            load=loads[row.id],
            skills={str(k): int(v) for k, v in (row.skills or {}).items()},
            last_assigned_at=_aware(row.last_assigned_at),
        )
        for row in rows
    ]


def _aware(value: datetime | None) -> datetime | None:
    """Column reads outside the ORM skip the UTC type on some drivers: make it aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


async def _channels(session: AsyncSession) -> dict[int, tuple[str, dict[str, Any]]]:
    return {
        c.id: (c.kind, dict(c.config or {})) for c in (await session.scalars(select(Channel))).all()
    }


@dataclass
class Decision:
    conversation_id: int
    user_id: int
    queue_id: int | None
    rule: str
    strategy: str
    candidates: list[dict[str, Any]]
    waited_seconds: float
    decided_ms: float


def choose(
    dialog: Conversation,
    *,
    queue: Queue | None,
    weight: float,
    operators: list[Candidate],
    now: datetime,
) -> tuple[Candidate | None, str, list[Candidate]]:
    """The operator who should get ``dialog`` now, the rule that allowed them, and the
    eligible candidates in order (best first). Pure: the simulation calls it too."""
    waited = (now - (dialog.awaiting_since or dialog.created_at or now)).total_seconds()
    rule = f"queue:{queue.name}" if queue else "no queue"
    home = {dialog.team_id} if dialog.team_id is not None else None  # None: any team
    teams = home
    overflowing = (
        home is not None
        and queue is not None
        and queue.overflow_team_id is not None
        and queue.overflow_after_seconds is not None
        and waited >= queue.overflow_after_seconds
    )
    if overflowing and home is not None and queue is not None and queue.overflow_team_id:
        teams = home | {queue.overflow_team_id}
    skill = queue.skill if queue else None
    level = queue.min_skill_level if queue else 1
    eligible = [
        op
        for op in operators
        if op.load + weight <= op.capacity + 1e-9
        and (teams is None or op.team_id in teams)
        and (skill is None or op.skills.get(skill, 0) >= level)
    ]
    strategy = queue.strategy if queue else "least_loaded"

    def key(op: Candidate) -> tuple[float, float, float, int]:
        share = op.load / op.capacity if op.capacity else 1.0
        idle = -op.idle_seconds(now)
        skill_level = -(op.skills.get(skill, 0) if skill else 0)
        if strategy == "longest_idle":
            return (idle, share, skill_level, op.user_id)
        return (share, idle, skill_level, op.user_id)

    eligible.sort(key=key)
    best = eligible[0] if eligible else None
    if best is not None and overflowing and home is not None and best.team_id not in home:
        rule = f"overflow:{queue.name if queue else ''}"
    return best, rule, eligible


def _shape(op: Candidate, now: datetime, skill: str | None) -> dict[str, Any]:
    return {
        "user_id": op.user_id,
        "name": op.name,
        "load": round(op.load, 2),
        "capacity": op.capacity,
        "idle_seconds": round(min(op.idle_seconds(now), 10**7)),
        "skill_level": op.skills.get(skill, 0) if skill else None,
    }


# ------------------------------------------------------------------ the pass


async def _lock(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ADVISORY_KEY})


async def dispatch(
    session: AsyncSession, *, now: datetime | None = None, batch: int = 500
) -> list[Decision]:
    """One pass (see the module docstring); returns what it decided."""
    from okno.conversations import actions  # actions reach routing only through jobs

    await _lock(session)
    now = now or utcnow()
    queues = await list_queues(session)
    by_id = {q.id: q for q in queues}
    channel_rows = {c.id: c for c in (await session.scalars(select(Channel))).all()}

    # 1. place new waiting dialogs
    fresh = (
        await session.scalars(
            select(Conversation)
            .where(Conversation.status == "waiting", Conversation.queued_at.is_(None))
            .order_by(Conversation.id)
            .limit(batch)
        )
    ).all()
    for conv in fresh:
        placed = await place(
            session, conv, queues=queues, channel=channel_rows[conv.channel_id], now=now
        )
        if placed.out_of_hours_until is not None and placed.queue is not None:
            await actions.tell_out_of_hours(
                session, conv, placed.queue.out_of_hours_message, placed.out_of_hours_until
            )

    # 2. who may get work
    operators = await available_operators(session, now)
    if not operators:
        return []
    open_queue_ids = [q.id for q in queues if q.is_active and rules.is_open(q.hours, now)]

    # 3. most urgent first; as many as the free places could take, with room for the
    # ones the free operators may not take (skills, teams), not the whole queue
    min_weight = min(
        (rules.channel_rule(c.kind, c.config).weight for c in channel_rows.values()), default=1.0
    )
    room = sum(max(0.0, op.capacity - op.load) for op in operators) / max(min_weight, 0.01)
    window = min(batch, 50 + int(room * 4))
    waiting = (
        await session.scalars(
            select(Conversation)
            .where(
                Conversation.status == "waiting",
                Conversation.queued_at.is_not(None),
                or_(Conversation.queue_id.is_(None), Conversation.queue_id.in_(open_queue_ids)),
            )
            .order_by(Conversation.priority.desc(), Conversation.sla_due_at, Conversation.id)
            .limit(window)
            # a take or close in flight keeps its dialog (next pass); one that committed
            # after this read began is re-checked, never overwritten (PostgreSQL)
            .with_for_update(skip_locked=True)
        )
    ).all()
    decisions: list[Decision] = []
    for conv in waiting:
        if all(op.load + min_weight > op.capacity + 1e-9 for op in operators):
            break  # everybody is full
        started = time.perf_counter()
        channel = channel_rows[conv.channel_id]
        weight = rules.channel_rule(channel.kind, channel.config).weight
        queue = by_id.get(conv.queue_id) if conv.queue_id else None
        best, rule, eligible = choose(
            conv, queue=queue, weight=weight, operators=operators, now=now
        )
        if best is None:
            continue
        skill = queue.skill if queue else None
        decision = Decision(
            conversation_id=conv.id,
            user_id=best.user_id,
            queue_id=queue.id if queue else None,
            rule=rule,
            strategy=queue.strategy if queue else "least_loaded",
            candidates=[_shape(op, now, skill) for op in eligible[:MAX_CANDIDATES_LOGGED]],
            waited_seconds=(now - (conv.awaiting_since or conv.created_at)).total_seconds(),
            decided_ms=(time.perf_counter() - started) * 1000,
        )
        best.load += weight
        best.last_assigned_at = now
        decisions.append(decision)
        await actions.route_to(session, conv, best.user_id)

    # 4. the log, and the operators' idle clocks
    for d in decisions:
        session.add(
            Assignment(
                conversation_id=d.conversation_id,
                user_id=d.user_id,
                kind="auto",
                queue_id=d.queue_id,
                rule=d.rule,
                strategy=d.strategy,
                candidates=d.candidates,
                waited_seconds=d.waited_seconds,
                decided_ms=d.decided_ms,
                at=now,
            )
        )
    if decisions:
        await session.execute(
            update(Presence)
            .where(Presence.user_id.in_({d.user_id for d in decisions}))
            .values(last_assigned_at=now)
        )
    return decisions


async def log_manual(
    session: AsyncSession,
    conversation: Conversation,
    *,
    user_id: int | None,
    actor_id: int,
    kind: str,
) -> None:
    """Record a take, a supervisor's assignment or a transfer beside the automatic ones."""
    session.add(
        Assignment(
            conversation_id=conversation.id,
            user_id=user_id,
            actor_id=actor_id,
            kind=kind,
            queue_id=conversation.queue_id,
            rule="by hand",
            at=utcnow(),
        )
    )
    if user_id is not None:
        await session.execute(
            update(Presence).where(Presence.user_id == user_id).values(last_assigned_at=utcnow())
        )


# ------------------------------------------------------------------ grace period


async def requeue_abandoned(
    session: AsyncSession, *, grace_seconds: int, now: datetime | None = None
) -> list[int]:
    """Dialogs of operators away (break, offline, or not connected) for longer than the
    grace period go back to the queue, in front of everyone."""
    from okno.conversations import actions

    now = now or utcnow()
    limit = now - timedelta(seconds=grace_seconds)
    # Operators without a presence row never opened a workspace (API integrations, a
    # supervisor's assignment to someone not yet in): nothing to wait for, nothing to undo.
    gone = or_(
        and_(Presence.status != "online", Presence.since < limit),
        Presence.last_seen_at < limit - CONNECTED_WITHIN,
    )
    rows = (
        await session.scalars(
            select(Conversation)
            .join(User, User.id == Conversation.assignee_id)
            .join(Presence, Presence.user_id == User.id)
            .where(
                Conversation.status == "assigned",
                User.role.in_(roles_with("conversations.receive")),
                gone,
            )
        )
    ).all()
    for conv in rows:
        previous = conv.assignee_id
        await actions.requeue(session, conv)
        conv.priority = (conv.priority or 0) + rules.FRONT_BONUS
        queue = await session.get(Queue, conv.queue_id) if conv.queue_id else None
        if queue is not None and (queue.team_id is None or conv.team_id == queue.overflow_team_id):
            # back to the queue's own team (an overflow team may still help later), or to
            # anybody for a queue without a team: not only the team of who served it first
            conv.team_id = queue.team_id
        session.add(
            Assignment(
                conversation_id=conv.id,
                user_id=None,
                kind="requeue",
                queue_id=conv.queue_id,
                rule=f"operator {previous} away over {grace_seconds} s",
                at=now,
            )
        )
    return [c.id for c in rows]


# ------------------------------------------------------------------ the customer's view


@dataclass
class QueueInfo:
    position: int | None
    expected_wait_seconds: int | None
    opens_at: datetime | None


async def queue_info(
    session: AsyncSession, conversation: Conversation, *, now: datetime | None = None
) -> QueueInfo:
    """Where a waiting dialog stands: its place in its queue and a wait estimate from how
    fast that queue was served in the last half hour."""
    now = now or utcnow()
    if conversation.status != "waiting" or conversation.queued_at is None:
        return QueueInfo(None, None, None)
    same_queue = (
        Conversation.queue_id.is_(None)
        if conversation.queue_id is None
        else Conversation.queue_id == conversation.queue_id
    )
    ahead = await session.scalar(
        select(func.count()).where(
            Conversation.status == "waiting",
            same_queue,
            or_(
                Conversation.priority > conversation.priority,
                and_(
                    Conversation.priority == conversation.priority,
                    or_(
                        Conversation.sla_due_at < conversation.sla_due_at,
                        and_(
                            Conversation.sla_due_at == conversation.sla_due_at,
                            Conversation.id < conversation.id,
                        ),
                    ),
                ),
            ),
        )
    )
    position = int(ahead or 0) + 1
    since = now - timedelta(minutes=30)
    served = await session.scalar(
        select(func.count()).where(
            Assignment.kind.in_(("auto", "take", "manual")),
            Assignment.at > since,
            Assignment.queue_id.is_(None)
            if conversation.queue_id is None
            else Assignment.queue_id == conversation.queue_id,
        )
    )
    expected = int(position * 1800 / served) if served else None
    queue = await session.get(Queue, conversation.queue_id) if conversation.queue_id else None
    opens = rules.next_opening(queue.hours, now) if queue is not None else None
    return QueueInfo(position=position, expected_wait_seconds=expected, opens_at=opens)


async def assignments_of(session: AsyncSession, conversation_id: int) -> list[Assignment]:
    return list(
        (
            await session.scalars(
                select(Assignment)
                .where(Assignment.conversation_id == conversation_id)
                .order_by(Assignment.id)
            )
        ).all()
    )
