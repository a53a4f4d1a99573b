"""Channel administration: list channels, add messenger channels, change their settings,
check them, see their recent errors, register their webhook; a widget's texts and settings.

Admins change everything; supervisors read the list and change a widget's greeting and
info message (what customers are told during an outage or a busy hour).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import checks, kinds, outbound, registration, service
from okno.channels.models import Channel
from okno.channels.schemas import (
    ChannelCheckOut,
    ChannelErrorOut,
    ChannelErrorsOut,
    ChannelKindOut,
    ChannelKindsOut,
    ChannelOut,
    ChannelSettingOut,
    ChannelsOut,
    MessengerCreate,
    MessengerUpdate,
    WebhookSetOut,
    WidgetUpdate,
)
from okno.errors import BadRequest, Forbidden, NotFound
from okno.http import AppState, State, require, write
from okno.inputs import IdPath, Input
from okno.operators.models import User
from okno.security import audit
from okno.security.permissions import role_has

log = structlog.get_logger("okno.admin")
InputT = TypeVar("InputT", bound=Input)
router = APIRouter(prefix="/api/v1/channels", tags=["channels"])
Reader = Annotated[User, require("channels.read")]
TextEditor = Annotated[User, require("channels.edit_texts")]  # more is checked per field
Manager = Annotated[User, require("channels.manage")]


def channel_out(channel: Channel, role: str = "admin", public_url: str = "") -> ChannelOut:
    path = service.webhook_path(channel) if kinds.is_messenger(channel.kind) else None
    shown = role_has(role, "channels.manage") and path is not None
    return ChannelOut(
        id=channel.id,
        kind=channel.kind,
        name=channel.name,
        key=channel.key,
        is_active=channel.is_active,
        config=service.config_for(channel, role),
        webhook_path=path if shown else None,
        webhook_url=(public_url.rstrip("/") + path) if shown and path and public_url else None,
    )


@router.get("", response_model=ChannelsOut)
async def list_channels(user: Reader, state: State) -> ChannelsOut:
    """Every channel (admins and supervisors)."""
    async with state.db.read() as session:
        rows = await service.list_channels(session)
    public = state.settings.public_url
    return ChannelsOut(channels=[channel_out(c, user.role, public) for c in rows])


@router.get("/kinds", response_model=ChannelKindsOut)
async def channel_kinds(user: Reader) -> ChannelKindsOut:
    """The messenger, e-mail and app channels this build can add, each with its settings
    (what the admin form and `okno channels add <kind>` are built from)."""
    out = []
    for kind in kinds.available():
        adapter = kinds.adapter_for(kind)
        out.append(
            ChannelKindOut(
                kind=kind,
                title=adapter.title,
                has_buttons=adapter.has_buttons,
                sets_webhook=callable(getattr(adapter, "set_webhook", None)),
                settings=[
                    ChannelSettingOut(
                        name=f.name,
                        help=f.help,
                        required=f.required,
                        secret=f.secret,
                        default=f.default,
                    )
                    for f in kinds.fields_of(adapter)
                ],
            )
        )
    return ChannelKindsOut(kinds=out)


@router.post("", response_model=ChannelOut, status_code=201)
async def add_channel(
    body: MessengerCreate, user: Manager, state: State, request: Request
) -> ChannelOut:
    """Add a messenger, e-mail or app channel (admins). Settings are checked against the
    kind's list; credentials are stored encrypted and never shown again."""
    if body.kind == "widget":
        raise BadRequest(
            "widgets are added with `okno channels add widget --key K`", code="unknown_kind"
        )
    values: dict[str, Any] = dict(body.settings)
    if body.bot is not None:
        values["bot"] = body.bot

    async def run(session: AsyncSession) -> Channel:
        channel = await service.add_messenger(
            session,
            kind=body.kind,
            values=values,
            signing_key=state.signing_key,
            name=body.name,
        )
        await audit.record(
            session,
            action=audit.CHANNEL_CREATED,
            actor=audit.actor_of(user, request),
            object_type="channel",
            object_id=channel.id,
            details={"kind": channel.kind, "settings": sorted(body.settings)},  # names only
        )
        return channel

    channel = await write(state, run)
    log.info(
        "admin.channel_added",
        actor_id=user.id,
        channel_id=channel.id,
        kind=channel.kind,
        settings=sorted(body.settings),  # names only: values may be credentials
    )
    return channel_out(channel, user.role, state.settings.public_url)


# The PATCH body depends on the channel's kind, which only the stored row tells: its
# schema is documented as either shape and checked against the right one in the handler.
_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        WidgetUpdate.model_json_schema(),
                        MessengerUpdate.model_json_schema(),
                    ]
                }
            }
        },
    }
}


def _validated(model: type[InputT], body: dict[str, Any]) -> InputT:
    """``body`` as ``model``; a mismatch answers 422 like any other request body."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e.get("loc", ()))} for e in exc.errors()]
        ) from None


@router.patch("/{channel_id}", response_model=ChannelOut, openapi_extra=_PATCH_BODY)
async def update_channel(
    channel_id: IdPath,
    user: TextEditor,
    state: State,
    body: Annotated[dict[str, Any], Body(description="WidgetUpdate or MessengerUpdate")],
    request: Request,
) -> ChannelOut:
    """Change a channel. A widget: name, key, greeting, info message, colour, allowed sites
    or on/off (admins; supervisors change only the greeting and the info message). A
    messenger (admins): name, on/off and settings; secrets are write-only."""
    async with state.db.read() as session:
        found = await service.get_channel(session, channel_id)
    if found is None:
        raise NotFound(f"channel {channel_id} does not exist", code="not_found")
    actor = audit.actor_of(user, request)
    if found.kind == "widget":
        return await update_widget(
            channel_id, _validated(WidgetUpdate, body), user, state, actor=actor
        )
    if not kinds.is_messenger(found.kind):
        raise NotFound(f"channel {channel_id} cannot be changed here", code="not_found")
    return await update_messenger(
        channel_id, _validated(MessengerUpdate, body), user, state, actor=actor
    )


async def update_messenger(
    channel_id: int,
    body: MessengerUpdate,
    user: User,
    state: AppState,
    *,
    actor: audit.Actor | None = None,
) -> ChannelOut:
    _admin_only(user.role)

    async def run(session: AsyncSession) -> Channel:
        channel = await service.get_channel(session, channel_id)
        if channel is None:
            raise NotFound(f"channel {channel_id} does not exist", code="not_found")
        values: dict[str, Any] = dict(body.settings or {})
        if body.bot is not None:
            values["bot"] = body.bot
        updated = await service.update_messenger(
            session,
            channel,
            values=values,
            signing_key=state.signing_key,
            name=body.name,
            is_active=body.is_active,
        )
        await audit.record(
            session,
            action=audit.CHANNEL_CREDENTIALS_CHANGED if body.settings else audit.CHANNEL_UPDATED,
            actor=actor or audit.Actor.of(user),
            object_type="channel",
            object_id=channel_id,
            details={  # names only: values may be credentials
                "fields": sorted(body.model_fields_set),
                "settings": sorted(body.settings or {}),
            },
        )
        return updated

    channel = await write(state, run)
    state.channels.forget(channel_id)  # after commit: webhooks use the new settings at once
    log.info(
        "admin.channel_updated",
        actor_id=user.id,
        channel_id=channel_id,
        fields=sorted(body.model_fields_set),
        settings=sorted(body.settings or {}),
    )
    return channel_out(channel, user.role, state.settings.public_url)


async def update_widget(
    channel_id: int,
    body: WidgetUpdate,
    user: User,
    state: AppState,
    *,
    actor: audit.Actor | None = None,
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
        await audit.record(
            session,
            action=audit.CHANNEL_UPDATED,
            actor=actor or audit.Actor.of(user),
            object_type="channel",
            object_id=channel_id,
            details={"fields": sorted(sent)},
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
    if not role_has(role, "channels.manage"):
        raise Forbidden(
            "only admins manage messenger channels",
            code="forbidden_role",
            permission="channels.manage",
        )


@router.get("/{channel_id}/errors", response_model=ChannelErrorsOut)
async def channel_errors(channel_id: IdPath, user: Manager, state: State) -> ChannelErrorsOut:
    """The channel's recent problems, newest first: refused webhooks, sends the platform
    rejected, failed checks and polls (admins)."""
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
async def check_channel(channel_id: IdPath, user: Manager, state: State) -> ChannelCheckOut:
    """Ask the platform whether the stored credentials work (Telegram's getMe, ...)."""
    async with state.db.read() as session:
        channel = await service.get_channel(session, channel_id)
    if channel is None or not kinds.is_messenger(channel.kind):
        raise NotFound(f"messenger channel {channel_id} does not exist", code="not_found")
    result = await checks.check(state.settings, channel)
    if not result.ok:
        async with state.db.transaction() as session:
            await outbound.note_error(session, channel_id, "check", result.detail)
    return result


@router.post("/{channel_id}/webhook", response_model=WebhookSetOut)
async def set_webhook(channel_id: IdPath, user: Manager, state: State) -> WebhookSetOut:
    """Tell the platform where to post updates: OKNO_PUBLIC_URL + /hooks/{kind}/{id}, with
    the channel's webhook secret (Telegram's setWebhook). 409 when okno has no public
    address, the channel polls instead, or its platform is set up by hand."""
    async with state.db.read() as session:
        channel = await service.get_channel(session, channel_id)
    if channel is None or not kinds.is_messenger(channel.kind):
        raise NotFound(f"messenger channel {channel_id} does not exist", code="not_found")
    result = await registration.set_webhook(state.db, state.settings, channel)
    if not result.ok:
        return result
    log.info("admin.channel_webhook_set", actor_id=user.id, channel_id=channel_id, url=result.url)
    return result
