"""Staff conversation handlers: list, open, reply, take, transfer, close; attachments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import assist
from okno.channels.widget import service as widget_service
from okno.conversations import actions, scanning, service, transcript
from okno.conversations.attachments import INLINE_TYPES, path_of
from okno.conversations.messaging import ATTACHMENT_URL, clean_text
from okno.conversations.models import Conversation, Message
from okno.conversations.posting import post_and_shape
from okno.conversations.schemas import (
    AssignRequest,
    CloseRequest,
    ConversationOut,
    ConversationPatch,
    ConversationsOut,
    MessagePageOut,
    MessagePosted,
    ReadRequest,
    SendMessage,
    TransferRequest,
)
from okno.conversations.views import conversation_out, conversations_out, messages_out
from okno.errors import Forbidden, Gone, NotFound, OknoError
from okno.http import (
    CurrentUser,
    State,
    api_token_principal,
    bearer_token,
    client_ip,
    require,
    write,
)
from okno.inputs import IdPath, IdQuery, OptionalSeqQuery
from okno.operators import api_tokens
from okno.operators.models import User
from okno.operators.service import user_from_token
from okno.security import audit, permissions

log = structlog.get_logger("okno.conversations")
router = APIRouter(prefix="/api/v1", tags=["conversations"])
# What each handler needs (okno.security.permissions; the team rule comes on top).
Reader = Annotated[User, require("conversations.read_team")]
Replier = Annotated[User, require("conversations.reply")]
Transferrer = Annotated[User, require("conversations.transfer")]
Exporter = Annotated[User, require("exports.create")]


@router.get("/conversations", response_model=ConversationsOut)
async def list_conversations(
    user: Reader,
    state: State,
    status: str = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: IdQuery = None,
) -> ConversationsOut:
    """Dialogs you may see: status open (default), mine, waiting, assigned, closed or all."""
    async with state.db.read() as session:
        rows = await service.list_conversations(
            session, user=user, status=status, limit=limit, before_id=before_id
        )
        return ConversationsOut(conversations=await conversations_out(session, rows, masked=True))


async def _access(state: State, conversation_id: IdPath, user: CurrentUser) -> None:
    async with state.db.read() as session:
        try:
            await service.access_conversation(session, conversation_id, user)
        except Forbidden:
            log.warning("access.denied", user_id=user.id, conversation_id=conversation_id)
            raise


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def get_conversation(conversation_id: IdPath, user: Reader, state: State) -> ConversationOut:
    await _access(state, conversation_id, user)
    async with state.db.read() as session:
        row = await service.access_conversation(session, conversation_id, user)
        return await conversation_out(session, row, masked=True)


@router.get("/conversations/{conversation_id}/messages", response_model=MessagePageOut)
async def get_messages(
    conversation_id: IdPath,
    user: Reader,
    state: State,
    after_seq: OptionalSeqQuery = None,
    before_seq: OptionalSeqQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> MessagePageOut:
    """The dialog's messages (internal notes included), oldest first: the first ``limit``
    after ``after_seq`` (default 0), or with ``before_seq`` the newest ``limit`` before it
    (open a long dialog at its end with ``before_seq=9007199254740991``, then page back
    with the first seq you hold). Not both: 400 ``conflicting_cursors``.

    ``has_more``: more messages beyond the page in the direction read. ``last_seq``: the
    forward cursor; every message up to it (from the oldest page held) has been returned,
    so continue with ``after_seq=last_seq`` or the event stream after it.
    """
    await _access(state, conversation_id, user)
    async with state.db.read() as session:
        page = await service.page_messages(
            session,
            conversation_id=conversation_id,
            after_seq=after_seq,
            before_seq=before_seq,
            limit=limit,
        )
        shaped = await messages_out(session, page.messages, url_prefix=ATTACHMENT_URL, masked=True)
    return MessagePageOut(messages=shaped, last_seq=page.last_seq, has_more=page.has_more)


@router.get(
    "/conversations/{conversation_id}/transcript",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "the transcript"}},
)
async def get_transcript(
    conversation_id: IdPath, user: Exporter, request: Request, state: State
) -> Response:
    """Download the dialog as plain text (``dialog-<id>.txt``): one line per message with
    its time (UTC), author and text, internal notes marked, personal data masked as on
    the staff screens. Needs ``exports.create`` and the team rule of reading the
    messages; recorded in the audit log (``export``) before the file is sent."""
    await _access(state, conversation_id, user)
    async with state.db.read() as session:
        await service.access_conversation(session, conversation_id, user)
        built = await transcript.build(session, conversation_id)
    await audit.record_separately(
        state.db,
        action=audit.EXPORT,
        actor=audit.actor_of(user, request),
        object_type="conversation",
        object_id=conversation_id,
        details={"kind": "transcript", "messages": built.messages},
    )
    return Response(
        built.text,
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="dialog-{conversation_id}.txt"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=MessagePosted,
    status_code=201,
    responses={200: {"model": MessagePosted, "description": "Already stored (a retry)."}},
)
async def post_message(
    conversation_id: IdPath, body: SendMessage, user: Replier, state: State
) -> JSONResponse:
    """Reply to the customer, or add an internal note with ``internal: true``. With
    ``suggestion_id`` the reply came from that reply suggestion: it is recorded as accepted
    or edited in the same transaction (a refused suggestion sends nothing)."""
    text = clean_text(body.text, max_chars=state.settings.max_text_chars)
    await _access(state, conversation_id, user)

    async def send(session: AsyncSession) -> tuple[Message, bool]:
        message, created = await actions.post_message(
            session,
            conversation_id=conversation_id,
            actor=user,
            text=text,
            client_msg_id=body.client_msg_id,
            internal=body.internal,
        )
        if created and body.suggestion_id is not None:
            await assist.record_sent(
                session, suggestion_id=body.suggestion_id, message=message, actor=user
            )
        return message, created

    response, created = await post_and_shape(state, send, masked=True)
    if created and not body.internal:
        state.metrics.messages_out.labels("staff").inc()
    return response


@router.post(
    "/conversations/{conversation_id}/attachments",
    response_model=MessagePosted,
    status_code=201,
)
async def post_attachment(
    conversation_id: IdPath,
    user: Replier,
    state: State,
    request: Request,
    file: Annotated[UploadFile, File()],
    client_msg_id: Annotated[str, Form(min_length=1, max_length=100)],
    text: Annotated[str, Form()] = "",
    internal: Annotated[bool, Form()] = False,
) -> JSONResponse:
    """Send a picture, a PDF, a voice message or a video (with optional text) to the
    customer, or as an internal note. With an antivirus configured the file is scanned
    first: 422 ``attachment_infected`` when it finds a threat (earlier copies of the same
    file are blocked too), 503 ``scanner_unavailable`` when it does not answer (nothing is
    sent)."""
    caption = clean_text(text, max_chars=state.settings.max_text_chars, allow_empty=True)
    await _access(state, conversation_id, user)
    data = await file.read(state.settings.largest_attachment_bytes + 1)
    stored = await scanning.accept_staff_file(
        data,
        file.filename or "",
        settings=state.settings,
        db=state.db,
        actor=audit.actor_of(user, request),
        conversation_id=conversation_id,
    )
    response, created = await post_and_shape(
        state,
        lambda s: actions.post_message(
            s,
            conversation_id=conversation_id,
            actor=user,
            text=caption,
            client_msg_id=client_msg_id,
            internal=internal,
            files=[stored],
        ),
        masked=True,
    )
    if created and not internal:
        state.metrics.messages_out.labels("staff").inc()
    return response


async def _act(
    state: State,
    conversation_id: IdPath,
    user: CurrentUser,
    act: Callable[[AsyncSession], Awaitable[Conversation]],
) -> ConversationOut:
    """Check access (logging a refusal), run one action in a transaction, shape the dialog."""
    await _access(state, conversation_id, user)

    async def run(session: AsyncSession) -> ConversationOut:
        return await conversation_out(session, await act(session), masked=True)

    return await write(state, run)


@router.post("/conversations/{conversation_id}/assign", response_model=ConversationOut)
async def assign(
    conversation_id: IdPath, body: AssignRequest, user: Replier, state: State
) -> ConversationOut:
    """Take a waiting dialog yourself, or (supervisors) give it to ``user_id``."""
    return await _act(
        state,
        conversation_id,
        user,
        lambda s: actions.assign(
            s, conversation_id=conversation_id, actor=user, user_id=body.user_id
        ),
    )


@router.post("/conversations/{conversation_id}/transfer", response_model=ConversationOut)
async def transfer(
    conversation_id: IdPath, body: TransferRequest, user: Transferrer, state: State
) -> ConversationOut:
    """Hand the dialog to another operator or to a team's queue, with a comment."""
    return await _act(
        state,
        conversation_id,
        user,
        lambda s: actions.transfer(
            s,
            conversation_id=conversation_id,
            actor=user,
            to_user_id=body.to_user_id,
            to_team_id=body.to_team_id,
            comment=body.comment,
            topic=body.topic,
        ),
    )


@router.post("/conversations/{conversation_id}/close", response_model=ConversationOut)
async def close(
    conversation_id: IdPath, user: Replier, state: State, body: CloseRequest | None = None
) -> ConversationOut:
    """Close with a resolution (resolved, refused, callback, spam); a repeat is a no-op."""
    resolution = body.resolution if body else "resolved"
    return await _act(
        state,
        conversation_id,
        user,
        lambda s: actions.close(
            s, conversation_id=conversation_id, actor=user, resolution=resolution
        ),
    )


@router.post("/conversations/{conversation_id}/reopen", response_model=ConversationOut)
async def reopen(conversation_id: IdPath, user: Replier, state: State) -> ConversationOut:
    """Reopen a closed dialog and take it; 409 if the customer has another open one."""
    return await _act(
        state,
        conversation_id,
        user,
        lambda s: actions.reopen(s, conversation_id=conversation_id, actor=user),
    )


@router.patch("/conversations/{conversation_id}", response_model=ConversationOut)
async def update(
    conversation_id: IdPath, body: ConversationPatch, user: Replier, state: State
) -> ConversationOut:
    """Set the topic and/or tags."""
    return await _act(
        state,
        conversation_id,
        user,
        lambda s: actions.update(
            s, conversation_id=conversation_id, actor=user, topic=body.topic, tags=body.tags
        ),
    )


@router.post("/conversations/{conversation_id}/read", response_model=ConversationOut)
async def mark_read(
    conversation_id: IdPath, body: ReadRequest, user: Replier, state: State
) -> ConversationOut:
    """You have seen the dialog up to ``up_to_seq``: clears unread; the customer sees "read"."""
    return await _act(
        state,
        conversation_id,
        user,
        lambda s: actions.mark_read_by_staff(
            s, conversation_id=conversation_id, actor=user, up_to_seq=body.up_to_seq
        ),
    )


async def _staff_or_visitor(state: State, token: str, ip: str) -> User | None:
    """The staff principal behind ``token`` (checked for ``conversations.read_team``), or
    None when it is a customer's widget session token; 401 when it is neither."""
    if api_tokens.is_api_token(token):
        user = await api_token_principal(state, token, ip=ip)
    else:
        async with state.db.read() as session:
            try:
                user = await user_from_token(session, key=state.signing_key, token=token)
            except OknoError:
                widget_service.verify_session(state.signing_key, token)
                return None
    permissions.check(user, "conversations.read_team", "download attachments of dialogs")
    return user


@router.get("/attachments/{attachment_id}", response_class=FileResponse)
@permissions.declare("conversations.read_team")
async def download(attachment_id: IdPath, request: Request, state: State) -> FileResponse:
    """Download an attachment with a staff token (``conversations.read_team``) or the
    customer's widget session token."""
    token = bearer_token(request)
    user = await _staff_or_visitor(state, token, client_ip(request))
    async with state.db.read() as session:
        attachment = await service.get_attachment(session, attachment_id)
        if attachment is None:
            raise NotFound("no such attachment", code="not_found")
        if user is None:
            customer = widget_service.verify_session(state.signing_key, token)
            conversation = await service.get_conversation(session, attachment.conversation_id)
            message = await session.get(service.Message, attachment.message_id)
            if (
                conversation is None
                or conversation.customer_id != customer.customer_id
                or message is None
                or message.internal
            ):
                raise NotFound("no such attachment", code="not_found")
        else:
            await service.access_conversation(session, attachment.conversation_id, user)
    if not attachment.storage_path:
        raise Gone("the file was removed under the retention policy", code="attachment_removed")
    scanning.refuse_unless_served(attachment, staff=user is not None)
    if user is not None:  # committed before a byte of the file leaves
        await audit.record_separately(
            state.db,
            action=audit.ATTACHMENT_DOWNLOADED,
            actor=audit.actor_of(user, request),
            object_type="attachment",
            object_id=attachment.id,
            details={"conversation_id": attachment.conversation_id, "size": attachment.size},
        )
    path = path_of(state.settings.data_dir, attachment.storage_path, attachment.scan_status)
    if not path.exists():
        raise NotFound("the file is missing from storage", code="file_missing")
    disposition = "inline" if attachment.content_type in INLINE_TYPES else "attachment"
    return FileResponse(
        path,
        media_type=attachment.content_type,
        filename=attachment.filename,
        content_disposition_type=disposition,
        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"},
    )
