"""Channel administration: list channels, change a widget's texts and settings.

Admins change everything; supervisors read the list and change a widget's greeting and
info message (what customers are told during an outage or a busy hour).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service
from okno.channels.models import Channel
from okno.channels.schemas import ChannelOut, ChannelsOut, WidgetUpdate
from okno.errors import NotFound
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
