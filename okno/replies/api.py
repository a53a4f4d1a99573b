"""Saved reply handlers: search (the composer's ``/``), save, change, delete, fill in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import service as conversations
from okno.customers import service as customers
from okno.http import State, require, write
from okno.inputs import IdPath
from okno.operators.models import User
from okno.replies import service
from okno.replies.models import SavedReply
from okno.replies.schemas import (
    Rendered,
    RenderRequest,
    SavedRepliesOut,
    SavedReplyIn,
    SavedReplyOut,
    SavedReplyPatch,
)

router = APIRouter(prefix="/api/v1/saved-replies", tags=["saved replies"])
# Everyone who serves customers uses saved replies; who may change which is the
# service's rule (templates.manage_team, templates.manage_all).
Member = Annotated[User, require("templates.use")]


def reply_out(r: SavedReply) -> SavedReplyOut:
    return SavedReplyOut(
        id=r.id,
        scope=r.scope,
        team_id=r.team_id,
        owner_id=r.owner_id,
        shortcut=r.shortcut,
        title=r.title,
        body=r.body,
        updated_at=r.updated_at,
    )


@router.get("", response_model=SavedRepliesOut)
async def search(
    user: Member,
    state: State,
    q: Annotated[str, Query(max_length=100)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SavedRepliesOut:
    """Replies you may use; ``q`` matches the shortcut, then the title, then the text."""
    async with state.db.read() as session:
        rows = await service.search(session, user=user, query=q, limit=limit)
    return SavedRepliesOut(saved_replies=[reply_out(r) for r in rows])


@router.post("", response_model=SavedReplyOut, status_code=201)
async def create(body: SavedReplyIn, user: Member, state: State) -> SavedReplyOut:
    async def run(session: AsyncSession) -> SavedReplyOut:
        return reply_out(await service.create(session, actor=user, **body.model_dump()))

    return await write(state, run)


@router.patch("/{reply_id}", response_model=SavedReplyOut)
async def update(
    reply_id: IdPath, body: SavedReplyPatch, user: Member, state: State
) -> SavedReplyOut:
    async def run(session: AsyncSession) -> SavedReplyOut:
        reply = await service.access(session, reply_id, user, edit=True)
        return reply_out(await service.update(session, reply, **body.model_dump()))

    return await write(state, run)


@router.delete("/{reply_id}", status_code=204)
async def delete(reply_id: IdPath, user: Member, state: State) -> Response:
    async def run(session: AsyncSession) -> None:
        reply = await service.access(session, reply_id, user, edit=True)
        await session.delete(reply)

    await write(state, run)
    return Response(status_code=204)


@router.post("/{reply_id}/render", response_model=Rendered)
async def render(reply_id: IdPath, body: RenderRequest, user: Member, state: State) -> Rendered:
    """The reply's text with the dialog's customer and your name filled in."""
    async with state.db.read() as session:
        reply = await service.access(session, reply_id, user, edit=False)
        conversation = await conversations.access_conversation(session, body.conversation_id, user)
        customer = await customers.get_customer(session, conversation.customer_id)
    name = customer.display_name if customer else ""
    if customers.is_generated_name(name):
        name = ""
    return Rendered(
        text=service.render(reply.body, customer_name=name, operator_name=user.display_name)
    )
