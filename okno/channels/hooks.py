"""Messenger webhooks: ``POST /hooks/{kind}/{channel_id}`` (and the GET some platforms use
to verify the address). Thin: the adapter verifies and parses, `receiving` stores."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from okno.channels import kinds, receiving
from okno.channels.adapter import Adapter, HookRequest
from okno.channels.models import Channel
from okno.errors import NotFound, OknoError, PayloadTooLarge
from okno.http import State
from okno.inputs import IdPath
from okno.security.secrets import SecretUnreadable

log = structlog.get_logger("okno.channels")
router = APIRouter(prefix="/hooks", tags=["webhooks"])
MAX_BODY = 2 * 1024 * 1024


async def _hook_request(request: Request) -> HookRequest:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise PayloadTooLarge("the webhook body is too large", code="body_too_large")
    return HookRequest(
        method=request.method,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
    )


async def _channel(
    state: State, kind: str, channel_id: int
) -> tuple[Channel, Adapter, dict[str, Any]]:
    async with state.db.read() as session:
        channel = await state.channels.get(session, channel_id)
    if channel is None or channel.kind != kind or not channel.is_active:
        raise NotFound("no such channel", code="unknown_channel")
    try:
        config = kinds.readable_config(channel, state.signing_key)
    except SecretUnreadable:
        raise NotFound("the channel's credentials cannot be read", code="channel_broken") from None
    return channel, kinds.adapter_for(kind), config


@router.post("/{kind}/{channel_id}", include_in_schema=True)
async def webhook(kind: str, channel_id: IdPath, request: Request, state: State) -> Response:
    """A platform delivers updates. Answered 200 only once everything in it is stored;
    forged or malformed calls get 403/400 and nothing is stored."""
    channel, adapter, config = await _channel(state, kind, channel_id)
    hook = await _hook_request(request)
    try:
        adapter.verify(config, hook)
        result = adapter.parse(config, hook)
    except OknoError as exc:
        log.warning("channel.webhook_refused", channel_id=channel_id, kind=kind, code=exc.code)
        await receiving.note_rejected(state.db, channel_id, f"{exc.code}: {exc}")
        raise
    stored = await receiving.store(state.db, state.settings, channel, adapter, config, result)
    if stored.messages or stored.statuses:
        log.info(
            "channel.webhook",
            channel_id=channel_id,
            kind=kind,
            messages=stored.messages,
            duplicates=stored.duplicates,
            statuses=stored.statuses,
        )
    if result.reply_text is not None:
        return Response(result.reply_text, media_type=result.reply_media_type)
    return JSONResponse({"ok": True})


@router.get("/{kind}/{channel_id}", include_in_schema=True)
async def handshake(kind: str, channel_id: IdPath, request: Request, state: State) -> Response:
    """A platform checks the address before it sends (Meta's hub.challenge)."""
    _, adapter, config = await _channel(state, kind, channel_id)
    hook = await _hook_request(request)
    try:
        answer = adapter.handshake(config, hook)
    except OknoError as exc:
        await receiving.note_rejected(state.db, channel_id, f"{exc.code}: {exc}")
        raise
    if answer is None:
        raise NotFound("this channel has no verification handshake", code="not_found")
    return PlainTextResponse(answer)
