"""Serve one realtime WebSocket: catch up from the database, then go live, with no gap.

The connection registers with the hub *before* reading the catch-up, so an event committed
meanwhile is either in the catch-up or in the live queue; live copies of events the catch-up
already sent are skipped by seq (numbers follow commit order, see events.models.Counter).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import structlog
from fastapi import WebSocket, WebSocketDisconnect

from okno.errors import OknoError
from okno.events.hub import Connection
from okno.events.service import events_after, last_seq
from okno.events.visibility import Viewer
from okno.http import AppState

log = structlog.get_logger("okno.stream")
CATCHUP_PAGE = 500


async def _send_json(websocket: WebSocket, data: dict[str, Any]) -> None:
    await websocket.send_text(json.dumps(data, ensure_ascii=False, default=str))


async def send_error(websocket: WebSocket, code: str, detail: str, close_code: int) -> None:
    with suppress(Exception):
        await _send_json(
            websocket,
            {
                "seq": None,
                "type": "stream.error",
                "conversation_id": None,
                "payload": {"code": code, "detail": detail},
            },
        )
        await websocket.close(code=close_code, reason=code)


ClientHandler = Callable[[dict[str, Any]], Awaitable[None]]


async def serve(
    websocket: WebSocket,
    state: AppState,
    viewer: Viewer,
    *,
    after_seq: int | None,
    kind: str,
    on_client_message: ClientHandler | None = None,
    expires_at: float | None = None,
) -> None:
    """Run the stream for an accepted socket until the client goes away.

    ``on_client_message`` receives what the client sends besides pings (typing signals).
    """
    conn = Connection(viewer, lambda ev: _send_json(websocket, ev))
    conn.expires_at = expires_at
    state.hub.add(conn)
    gauge = state.metrics.ws_connections.labels(kind)
    gauge.inc()
    reader: asyncio.Task[None] | None = None
    try:
        async with state.db.read() as session:
            position = after_seq if after_seq is not None else await last_seq(session)
            while True:
                page = await events_after(
                    session, viewer=viewer, after_seq=position, limit=CATCHUP_PAGE
                )
                for event in page:
                    await _send_json(websocket, event)
                if page:
                    position = page[-1]["seq"]
                if len(page) < CATCHUP_PAGE:
                    break
        # Not the counter's current value: events committed after the catch-up query are
        # only in the live queue and must not be skipped.
        conn.skip_through = position
        await _send_json(
            websocket,
            {
                "seq": None,
                "type": "stream.ready",
                "conversation_id": None,
                "payload": {"last_seq": conn.skip_through},
            },
        )
        reader = asyncio.create_task(_read_client(websocket, on_client_message))
        writer = asyncio.create_task(conn.drain())
        done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        if writer in done and conn.overflowed:
            await send_error(websocket, "too_slow", "reconnect and catch up", 4008)
        elif writer in done and conn.stopped:
            code, close_code = conn.stopped
            await send_error(websocket, code, "sign in again", close_code)
        elif writer in done and conn.resync:
            await send_error(websocket, "resync", "reconnect and catch up", 4012)
        for task in (reader, writer):
            task.cancel()
    except OknoError as exc:
        await send_error(websocket, exc.code, exc.message, 4000 + exc.status)
    except (WebSocketDisconnect, RuntimeError, ConnectionError):
        pass
    finally:
        state.hub.remove(conn)
        gauge.dec()


TYPING_EVERY = 2.0  # seconds: a client typing steadily signals at most this often


async def _read_client(websocket: WebSocket, handler: ClientHandler | None) -> None:
    """Answer pings, pass other messages to ``handler``; return when the client leaves.
    Malformed input is ignored: this channel carries only hints."""
    last_typing = 0.0
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        text = frame.get("text")
        if text is None:
            continue  # binary frames carry nothing for us
        if text == "ping" or text == '{"type":"ping"}':
            await websocket.send_text('{"type":"pong"}')
            continue
        if handler is None or len(text) > 1000:
            continue
        try:
            message = json.loads(text)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        if message.get("type") == "typing":
            now = time.monotonic()
            if now - last_typing < TYPING_EVERY:
                continue
            last_typing = now
        try:
            await handler(message)
        except OknoError:
            continue
