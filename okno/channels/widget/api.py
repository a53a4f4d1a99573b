"""The web widget's public endpoints (customer side; CORS-open, token-scoped)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile, WebSocket
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.channels.models import Channel
from okno.channels.widget import service
from okno.channels.widget.schemas import (
    Rated,
    SessionRequest,
    SessionResponse,
    WidgetConfig,
    WidgetMessage,
)
from okno.conversations import actions, inbound, scanning
from okno.conversations import service as conversations
from okno.conversations.attachments import StoredFile
from okno.conversations.messaging import ATTACHMENT_URL, clean_text
from okno.conversations.models import Conversation, Message
from okno.conversations.posting import post_and_shape
from okno.conversations.schemas import MessagePosted, MessagesOut, RatingRequest, ReadRequest
from okno.conversations.views import messages_out
from okno.errors import OknoError
from okno.events import stream
from okno.events.service import ephemeral, last_seq
from okno.events.visibility import CustomerViewer
from okno.http import AppState, State, bearer_token, write, ws_state
from okno.inputs import MAX_SEQ, KeyQuery, SeqQuery
from okno.routing import service as routing
from okno.routing.schemas import QueuePosition

router = APIRouter(prefix="/api/v1/widget", tags=["widget"])


async def _session(request: Request, state: State) -> service.WidgetSession:
    ws = service.verify_session(state.signing_key, bearer_token(request))
    return await _current(state, ws)


async def _current(state: AppState, ws: service.WidgetSession) -> service.WidgetSession:
    """The session with the customer as they are now: the token names the customer when
    the session began, and an operator may since have merged them into another."""
    async with state.db.read() as session:
        return await service.follow_merges(session, ws)


@router.get("/config", response_model=WidgetConfig)
async def config(key: KeyQuery, state: State) -> WidgetConfig:
    """What the widget shows before a session exists (name, greeting, info, colour)."""
    async with state.db.read() as session:
        channel = await channels.get_widget(session, key=key)
    return WidgetConfig(**channels.widget_public_config(channel))


@router.post("/sessions", response_model=SessionResponse)
async def create_session(body: SessionRequest, request: Request, state: State) -> SessionResponse:
    """Start or resume a visitor's session for the widget with this key."""
    visitor = body.visitor or None
    name = (visitor.name or "").strip() if visitor else ""

    async def run(session: AsyncSession) -> tuple[str, service.WidgetSession, Channel, int | None]:
        return await service.start_session(
            session,
            widget_key=body.widget_key,
            visitor_id=visitor.id if visitor else None,
            visitor_name=name,
            origin=request.headers.get("origin"),
            signing_key=state.signing_key,
            ttl_days=state.settings.widget_session_days,
            customer_token=body.customer_token,
        )

    token, ws, channel, current = await write(state, run)
    return SessionResponse(
        session_token=token,
        conversation_id=current,
        visitor_id=ws.visitor_id,
        widget=WidgetConfig(**channels.widget_public_config(channel)),
    )


@router.post(
    "/messages",
    response_model=MessagePosted,
    status_code=201,
    responses={200: {"model": MessagePosted, "description": "Already stored (a retry)."}},
)
async def send_message(body: WidgetMessage, request: Request, state: State) -> JSONResponse:
    """Send the customer's message; a retry with the same client_msg_id stores nothing new."""
    ws = await _session(request, state)
    text = clean_text(body.text, max_chars=state.settings.max_text_chars)
    return await _receive(
        state,
        ws,
        text=text,
        client_msg_id=body.client_msg_id,
        files=[],
        bot_input={
            "article_id": body.article_id,
            "suggested": body.suggested,
            "button": body.button,
            "location": (body.location.lat, body.location.lon) if body.location else None,
        },
    )


@router.post("/attachments", response_model=MessagePosted, status_code=201)
async def send_attachment(
    request: Request,
    state: State,
    file: Annotated[UploadFile, File()],
    client_msg_id: Annotated[str, Form(min_length=1, max_length=100)],
    text: Annotated[str, Form()] = "",
) -> JSONResponse:
    """Send a picture, a PDF, a voice message or a video (checked by content,
    size-limited per type, scanned by the antivirus when one is configured), with optional
    text. An infected file is not accepted: the message is stored with the file marked
    ``blocked`` (the threat's name is for staff only) and the customer is told; while the
    antivirus is down the file is held (``pending``) until it is scanned."""
    ws = await _session(request, state)
    caption = clean_text(text, max_chars=state.settings.max_text_chars, allow_empty=True)
    data = await file.read(state.settings.largest_attachment_bytes + 1)
    stored = await scanning.accept_customer_file(data, file.filename or "", settings=state.settings)

    return await _receive(state, ws, text=caption, client_msg_id=client_msg_id, files=[stored])


async def _receive(
    state: AppState,
    ws: service.WidgetSession,
    *,
    text: str,
    client_msg_id: str,
    files: list[StoredFile],
    bot_input: dict[str, Any] | None = None,
) -> JSONResponse:
    """Store what the visitor sent through the channel-neutral inbound path."""

    async def action(session: AsyncSession) -> tuple[Message, bool]:
        channel = await service.channel_of(session, ws, state.channels)
        return await inbound.receive(
            session,
            inbound.Inbound(
                channel=channel,
                external_customer_id=ws.external_id,
                verified_as=ws.bank_id,
                text=text,
                client_msg_id=client_msg_id,
                files=files,
                **(bot_input or {}),
            ),
        )

    response, created = await post_and_shape(state, action, masked=False)
    if created:  # the bank's app ("api") shares these handlers
        cached = state.channels.peek(ws.channel_id)
        state.metrics.messages_in.labels(cached.kind if cached else "widget").inc()
    return response


@router.get("/messages", response_model=MessagesOut)
async def history(
    request: Request,
    state: State,
    after_seq: SeqQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> MessagesOut:
    """The visitor's messages in this widget across all their dialogs, oldest first (for a
    customer the bank verified, also their dialogs in the bank's app and other widgets)."""
    ws = await _session(request, state)
    async with state.db.read() as session:
        covered = await last_seq(session)  # first: all up to it is committed
        ids = await conversations.customer_conversation_ids(
            session, customer_id=ws.customer_id, channel_id=ws.channel_id, verified_as=ws.bank_id
        )
        rows = await conversations.list_messages(
            session,
            conversation_ids=ids,
            after_seq=after_seq,
            limit=limit,
            include_internal=False,
        )
        shaped = await messages_out(
            session, rows, url_prefix=ATTACHMENT_URL, masked=False, for_customer=True
        )
    newest = (rows[-1].seq or 0) if len(rows) == limit else max(covered, after_seq)
    return MessagesOut(messages=shaped, last_seq=newest)


@router.post("/rating", response_model=Rated)
async def rate(body: RatingRequest, request: Request, state: State) -> Rated:
    """Rate a closed dialog 1-5 (once)."""
    ws = await _session(request, state)

    async def run(session: AsyncSession) -> Conversation:
        return await inbound.rate(
            session,
            customer_id=ws.customer_id,
            channel_id=ws.channel_id,
            conversation_id=body.conversation_id,
            score=body.score,
            comment=body.comment,
        )

    conversation = await write(state, run)
    return Rated(conversation_id=conversation.id, rating=conversation.rating or body.score)


@router.get("/queue", response_model=QueuePosition)
async def queue_position(request: Request, state: State) -> QueuePosition:
    """The visitor's place in line while their dialog waits for an operator, an expected
    wait, and when a closed queue opens (all null when nobody is waiting)."""
    ws = await _session(request, state)
    async with state.db.read() as session:
        conversation = await conversations.open_conversation_of(
            session, customer_id=ws.customer_id, channel_id=ws.channel_id
        )
        if conversation is None:
            return QueuePosition(position=None, expected_wait_seconds=None, opens_at=None)
        info = await routing.queue_info(session, conversation)
    return QueuePosition(
        position=info.position,
        expected_wait_seconds=info.expected_wait_seconds,
        opens_at=info.opens_at,
    )


@router.post("/handoff", status_code=204)
async def ask_for_a_person(request: Request, state: State) -> Response:
    """The visitor pressed "talk to a person": the dialog leaves the bot for routing at
    once (nothing happens when a person has it already)."""
    ws = await _session(request, state)

    async def run(session: AsyncSession) -> None:
        conversation = await conversations.open_conversation_of(
            session, customer_id=ws.customer_id, channel_id=ws.channel_id
        )
        if conversation is not None and conversation.status == "bot":
            # the topic of what they asked, so routing picks the right queue
            last = await session.scalar(
                select(Message.text)
                .where(
                    Message.conversation_id == conversation.id,
                    Message.author_kind == "customer",
                )
                .order_by(Message.id.desc())
                .limit(1)
            )
            retriever = await state.kb.current(session)
            hits = retriever.search(last, limit=1) if last else []
            await actions.hand_off(
                session,
                conversation,
                topic=hits[0].topic if hits else None,
                reason="human_requested",
            )

    await write(state, run)
    return Response(status_code=204)


@router.post("/read", status_code=204)
async def mark_read(body: ReadRequest, request: Request, state: State) -> Response:
    """The customer has seen their messages up to ``up_to_seq`` (staff see "read")."""
    ws = await _session(request, state)

    async def run(session: AsyncSession) -> None:
        await inbound.mark_read_by_customer(
            session,
            customer_id=ws.customer_id,
            channel_id=ws.channel_id,
            up_to_seq=body.up_to_seq,
        )

    await write(state, run)
    return Response(status_code=204)


@router.websocket("/ws")
async def widget_socket(
    websocket: WebSocket,
    token: str = "",
    after_seq: Annotated[int | None, Query(ge=0, le=MAX_SEQ)] = None,
) -> None:
    """Live events of this visitor: new messages, dialog assigned/closed."""
    state = ws_state(websocket)
    await websocket.accept()
    try:
        ws = await _current(state, service.verify_session(state.signing_key, token))
    except OknoError as exc:
        await stream.send_error(websocket, exc.code, exc.message, 4401)
        return

    async def on_message(message: dict[str, Any]) -> None:
        if message.get("type") != "typing":
            return
        async with state.db.read() as session:
            conversation = await conversations.open_conversation_of(
                session, customer_id=ws.customer_id, channel_id=ws.channel_id
            )
        if conversation is None:
            return
        await state.bus.publish(
            [
                ephemeral(
                    type="typing.started",
                    conversation_id=conversation.id,
                    payload={"who": "customer"},
                    customer_id=conversation.customer_id,
                    customer_visible=False,
                    team_id=conversation.team_id,
                    assignee_id=conversation.assignee_id,
                )
            ]
        )

    await stream.serve(
        websocket,
        state,
        CustomerViewer(customer_id=ws.customer_id, channel_id=ws.channel_id),
        after_seq=after_seq,
        kind="widget",
        on_client_message=on_message,
    )
