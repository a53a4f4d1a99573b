"""The staff event stream (WebSocket) and its catch-up endpoint."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket
from pydantic import BaseModel

from okno.conversations import service as conversations
from okno.errors import OknoError
from okno.events import stream
from okno.events.hub import staff_viewer
from okno.events.service import ephemeral, events_after, last_seq
from okno.http import State, require, staff_from_socket, ws_state
from okno.inputs import MAX_SEQ, SeqQuery
from okno.operators import presence
from okno.operators.models import User
from okno.security import permissions

router = APIRouter(prefix="/api/v1", tags=["events"])
# Events carry dialogs' messages: the same permission as reading dialogs (team rule on top).
STREAM_PERMISSION = "conversations.read_team"
Reader = Annotated[User, require(STREAM_PERMISSION)]


class EventOut(BaseModel):
    seq: int
    type: str
    conversation_id: int | None
    payload: dict[str, object]


class EventsOut(BaseModel):
    events: list[EventOut]
    last_seq: int


@router.get("/events", response_model=EventsOut)
async def catch_up(
    user: Reader,
    state: State,
    after_seq: SeqQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> EventsOut:
    """Events you may see after ``after_seq``; 410 ``events_pruned`` when too far behind."""
    async with state.db.read() as session:
        # Read the counter first: every event up to it is committed, so the query sees it.
        covered = await last_seq(session)
        events = await events_after(
            session, viewer=staff_viewer(user), after_seq=after_seq, limit=limit
        )
    newest = events[-1]["seq"] if len(events) == limit else max(covered, after_seq)
    return EventsOut(events=[EventOut(**e) for e in events], last_seq=newest)


@router.websocket("/ws")
@permissions.declare(STREAM_PERMISSION)
async def staff_socket(
    websocket: WebSocket,
    token: str = "",
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
) -> None:
    """Live events for staff; pass ``after_seq`` to catch up first."""
    state = ws_state(websocket)
    await websocket.accept()
    try:
        user, expires_at = await staff_from_socket(websocket, state, token)
    except OknoError as exc:
        await stream.send_error(websocket, exc.code, exc.message, 4401)
        return
    try:
        permissions.check(user, STREAM_PERMISSION, "follow dialogs live")
    except OknoError as exc:
        await stream.send_error(websocket, exc.code, exc.message, 4403)
        return
    async with state.db.transaction() as session:
        await presence.connected(session, user=user)

    async def on_message(message: dict[str, Any]) -> None:
        conversation_id = message.get("conversation_id")
        if message.get("type") != "typing" or not isinstance(conversation_id, int):
            return
        async with state.db.read() as session:
            conversation = await conversations.access_conversation(session, conversation_id, user)
        if conversation.status == "closed":
            return
        await state.bus.publish(
            [
                ephemeral(
                    type="typing.started",
                    conversation_id=conversation.id,
                    payload={"who": "operator", "user_id": user.id, "name": user.display_name},
                    customer_id=conversation.customer_id,
                    # a note being written is nobody's business but the staff's
                    customer_visible=not message.get("internal", False),
                    team_id=conversation.team_id,
                    assignee_id=conversation.assignee_id,
                )
            ]
        )

    await stream.serve(
        websocket,
        state,
        staff_viewer(user),
        after_seq=after_seq,
        kind="staff",
        on_client_message=on_message,
        expires_at=expires_at,
    )
