"""Channel administration: list channels, change a widget's texts and settings.

Admins change everything; supervisors read the list and change a widget's greeting and
info message (what customers are told during an outage or a busy hour).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import checks, kinds, outbound, service
from okno.channels.models import Channel
from okno.channels.schemas import (
    ChannelCheckOut,
    ChannelErrorOut,
    ChannelErrorsOut,
    ChannelOut,
    ChannelsOut,
    WidgetUpdate,
)
from okno.errors import Forbidden, NotFound
from okno.http import CurrentUser, State, write
from okno.inputs import IdPath

log = structlog.get_logger("okno.admin")
router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


def channel_out(channel: Channel, role: str = "admin") -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        kind=channel.kind,
        name=channel.name,
        key=channel.key,
        is_active=channel.is_active,
        config=service.config_for(channel, role),
    )


@router.get("", response_model=ChannelsOut)
async def list_channels(user: CurrentUser, state: State) -> ChannelsOut:
    """Every channel (admins and supervisors)."""
    service.check_channel_reader(user.role)
    async with state.db.read() as session:
        rows = await service.list_channels(session)
    return ChannelsOut(channels=[channel_out(c, user.role) for c in rows])


@router.patch("/{channel_id}", response_model=ChannelOut)
async def update_widget(
    channel_id: IdPath, body: WidgetUpdate, user: CurrentUser, state: State
) -> ChannelOut:
    """Change a widget's name, key, greeting, info message, colour, allowed sites or on/off
    (admins); supervisors change only the greeting and the info message."""
    sent = set(body.model_fields_set)
    service.check_widget_edit(user.role, sent)

    async def run(session: AsyncSession) -> tuple[ChannelOut, ChannelOut]:
        channel = await service.get_channel(session, channel_id)
        if channel is None or channel.kind != "widget":
            raise NotFound(f"widget channel {channel_id} does not exist", code="not_found")
        updated = await service.update_widget(
            session, channel, **body.model_dump(exclude_none=True)
        )
        return channel_out(updated), channel_out(updated, user.role)

    result, shown = await write(state, run)
    log.info("admin.channel_updated", actor_id=user.id, channel_id=channel_id, fields=sorted(sent))
    state.channels.forget(channel_id)  # after commit, so nobody re-caches the old row
    # Open widgets show the new greeting or info message at once (live only: a widget that
    # connects later reads the settings anyway).
    await state.bus.publish([widget_updated(result)])
    return shown


def widget_updated(channel: ChannelOut) -> dict[str, Any]:
    cfg = channel.config
    return {
        "seq": None,
        "type": "widget.updated",
        "conversation_id": None,
        "payload": {
            "widget": {
                "name": channel.name,
                "greeting": cfg.get("greeting", ""),
                "info_message": cfg.get("info_message", ""),
                "color": cfg.get("color", ""),
            }
        },
        "broadcast_channel_id": channel.id,
        "customer_id": None,
        "customer_visible": True,
        "team_id": None,
        "assignee_id": None,
        "also_user_id": None,
        "assignee_only": False,
    }


def _admin_only(role: str) -> None:
    if role != "admin":
        raise Forbidden("only admins manage messenger channels", code="forbidden_role")


@router.get("/{channel_id}/errors", response_model=ChannelErrorsOut)
async def channel_errors(channel_id: IdPath, user: CurrentUser, state: State) -> ChannelErrorsOut:
    """The channel's recent problems, newest first: refused webhooks, sends the platform
    rejected, failed checks and polls (admins)."""
    _admin_only(user.role)
    async with state.db.read() as session:
        if await service.get_channel(session, channel_id) is None:
            raise NotFound(f"channel {channel_id} does not exist", code="not_found")
        rows = await outbound.recent_errors(session, channel_id)
    return ChannelErrorsOut(
        errors=[
            ChannelErrorOut(kind=r.kind, message=r.message, created_at=r.created_at) for r in rows
        ]
    )


@router.post("/{channel_id}/check", response_model=ChannelCheckOut)
async def check_channel(channel_id: IdPath, user: CurrentUser, state: State) -> ChannelCheckOut:
    """Ask the platform whether the stored credentials work (Telegram's getMe, ...)."""
    _admin_only(user.role)
    async with state.db.read() as session:
        channel = await service.get_channel(session, channel_id)
    if channel is None or not kinds.is_messenger(channel.kind):
        raise NotFound(f"messenger channel {channel_id} does not exist", code="not_found")
    result = await checks.check(state.settings, channel)
    if not result.ok:
        async with state.db.transaction() as session:
            await outbound.note_error(session, channel_id, "check", result.detail)
    return result
