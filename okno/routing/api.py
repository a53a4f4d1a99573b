"""Routing handlers: queues for admins (read by supervisors), why a dialog went to whom."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import service as conversations
from okno.db.base import utcnow
from okno.http import State, require, write
from okno.inputs import IdPath
from okno.operators.models import User
from okno.routing import rules, service
from okno.routing.models import Queue
from okno.routing.schemas import (
    AssignmentOut,
    AssignmentsOut,
    QueueIn,
    QueueOut,
    QueuePatch,
    QueuesOut,
)

log = structlog.get_logger("okno.routing")
router = APIRouter(prefix="/api/v1", tags=["routing"])
Reader = Annotated[User, require("routing.read")]
Manager = Annotated[User, require("routing.manage")]
DialogReader = Annotated[User, require("conversations.read_team")]


def queue_out(q: Queue, now: datetime) -> QueueOut:
    return QueueOut(
        id=q.id,
        name=q.name,
        topic=q.topic,
        is_default=q.is_default,
        team_id=q.team_id,
        skill=q.skill,
        min_skill_level=q.min_skill_level,
        priority=q.priority,
        strategy=q.strategy,
        overflow_team_id=q.overflow_team_id,
        overflow_after_seconds=q.overflow_after_seconds,
        hours=q.hours,
        out_of_hours_message=q.out_of_hours_message or "",
        is_active=q.is_active,
        open_now=rules.is_open(q.hours, now),
    )


@router.get("/routing/queues", response_model=QueuesOut)
async def list_queues(user: Reader, state: State) -> QueuesOut:
    """Every queue with its rules and whether it is open now (supervisors and admins)."""
    async with state.db.read() as session:
        rows = await service.list_queues(session)
    now = utcnow()
    return QueuesOut(queues=[queue_out(q, now) for q in rows])


@router.post("/routing/queues", response_model=QueueOut, status_code=201)
async def create_queue(body: QueueIn, user: Manager, state: State) -> QueueOut:
    async def run(session: AsyncSession) -> QueueOut:
        queue = await service.save_queue(session, None, body.model_dump())
        return queue_out(queue, utcnow())

    out = await write(state, run)
    log.info("admin.queue_created", actor_id=user.id, queue_id=out.id)
    return out


@router.patch("/routing/queues/{queue_id}", response_model=QueueOut)
async def update_queue(queue_id: IdPath, body: QueuePatch, user: Manager, state: State) -> QueueOut:
    async def run(session: AsyncSession) -> QueueOut:
        queue = await service.get_queue(session, queue_id)
        values = body.model_dump(include=body.model_fields_set)
        return queue_out(await service.save_queue(session, queue, values), utcnow())

    out = await write(state, run)
    log.info("admin.queue_updated", actor_id=user.id, queue_id=queue_id)
    return out


@router.get("/conversations/{conversation_id}/assignments", response_model=AssignmentsOut)
async def explain(conversation_id: IdPath, user: DialogReader, state: State) -> AssignmentsOut:
    """Every assignment of the dialog, oldest first: who got it, by which rule and
    strategy, and which candidates were weighed (best first)."""
    async with state.db.read() as session:
        await conversations.access_conversation(session, conversation_id, user)
        rows = await service.assignments_of(session, conversation_id)
    return AssignmentsOut(
        assignments=[
            AssignmentOut(
                id=a.id,
                kind=a.kind,
                user_id=a.user_id,
                actor_id=a.actor_id,
                queue_id=a.queue_id,
                rule=a.rule,
                strategy=a.strategy,
                candidates=list(a.candidates or []),
                waited_seconds=a.waited_seconds,
                decided_ms=a.decided_ms,
                at=a.at,
            )
            for a in rows
        ]
    )
