"""The bank's mobile app API: ``POST /api/v1/mobile/sessions`` with a customer token the
bank signed, then the web widget's own endpoints under ``/api/v1/mobile/`` (send, attach,
history, realtime, read, rate, queue, handoff).

The message endpoints are the widget's handlers themselves, mounted a second time: a
mobile session is a verified widget session of an ``api`` channel, so one implementation
serves both and they cannot drift apart. The bot's ``/api/v1/bot/ask`` and
``/api/v1/bot/suggest`` and attachment downloads take the same session token.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.routing import APIRoute, APIWebSocketRoute
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels.mobile import service
from okno.channels.mobile.schemas import MobileSessionRequest, MobileSessionResponse
from okno.channels.widget import api as widget_api
from okno.http import State, write

router = APIRouter(prefix="/api/v1/mobile", tags=["mobile"])
# The widget endpoints the app uses as they are; /config and /sessions are the widget's own.
SHARED_PATHS = ("/messages", "/attachments", "/rating", "/queue", "/handoff", "/read", "/ws")


@router.post("/sessions", response_model=MobileSessionResponse)
async def create_session(body: MobileSessionRequest, state: State) -> MobileSessionResponse:
    """Start a session for the customer the bank's token names (401 ``customer_token_invalid``
    or ``customer_token_expired`` otherwise). Call again with a fresh bank token when it ends."""
    name = " ".join((body.name or "").split())

    async def run(session: AsyncSession) -> MobileSessionResponse:
        token, current, expires_at = await service.start_session(
            session,
            channel_id=body.channel_id,
            customer_token=body.customer_token,
            name=name,
            signing_key=state.signing_key,
        )
        return MobileSessionResponse(
            session_token=token, conversation_id=current, expires_at=expires_at
        )

    return await write(state, run)


def _mount_widget_endpoints() -> None:
    """Serve the widget's session-token endpoints under /api/v1/mobile as well."""
    for route in widget_api.router.routes:
        path = route.path.removeprefix(widget_api.router.prefix)  # type: ignore[attr-defined]
        if path not in SHARED_PATHS:
            continue
        if isinstance(route, APIRoute):
            router.add_api_route(
                path,
                route.endpoint,
                methods=sorted(route.methods or ()),
                response_model=route.response_model,
                status_code=route.status_code,
                responses=route.responses,
                summary=route.summary,
                description=route.description,
                name=f"mobile_{route.name}",
            )
        elif isinstance(route, APIWebSocketRoute):
            router.add_api_websocket_route(path, route.endpoint, name=f"mobile_{route.name}")


_mount_widget_endpoints()
