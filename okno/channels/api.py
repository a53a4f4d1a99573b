"""Channel administration (admins): list channels, change a widget's texts and settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service
from okno.channels.models import Channel
from okno.channels.schemas import ChannelOut, ChannelsOut, WidgetUpdate
from okno.errors import Forbidden, NotFound
from okno.http import CurrentUser, State, write
from okno.inputs import IdPath
from okno.operators.models import User

router = APIRouter(prefix="/api/v1/channels", tags=["channels"])


def _admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only admins manage channels", code="forbidden_role")


def channel_out(channel: Channel) -> ChannelOut:
    return ChannelOut(
        id=channel.id,
        kind=channel.kind,
        name=channel.name,
        key=channel.key,
        is_active=channel.is_active,
        config=dict(channel.config or {}),
    )


@router.get("", response_model=ChannelsOut)
async def list_channels(user: CurrentUser, state: State) -> ChannelsOut:
    _admin(user)
    async with state.db.read() as session:
        rows = await service.list_channels(session)
    return ChannelsOut(channels=[channel_out(c) for c in rows])


@router.patch("/{channel_id}", response_model=ChannelOut)
async def update_widget(
    channel_id: IdPath, body: WidgetUpdate, user: CurrentUser, state: State
) -> ChannelOut:
    """Change a widget's name, greeting, info message, colour, allowed sites or on/off."""
    _admin(user)

    async def run(session: AsyncSession) -> ChannelOut:
        channel = await service.get_channel(session, channel_id)
        if channel is None or channel.kind != "widget":
            raise NotFound(f"widget channel {channel_id} does not exist", code="not_found")
        updated = await service.update_widget(
            session, channel, **body.model_dump(exclude_none=True)
        )
        return channel_out(updated)

    result = await write(state, run)
    state.channels.forget(channel_id)  # after commit, so nobody re-caches the old row
    # Open widgets show the new greeting or info message at once (live only: a widget that
    # connects later reads the settings anyway).
    await state.bus.publish([widget_updated(result)])
    return result


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
