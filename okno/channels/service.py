"""Configured channels: add, find, and the public settings of a widget."""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import kinds
from okno.channels.models import CHANNEL_KINDS, Channel
from okno.errors import BadRequest, Conflict, Forbidden, NotFound
from okno.security.permissions import role_has

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{3,100}$")
DEFAULT_WIDGET_CONFIG: dict[str, Any] = {
    "greeting": "Здравствуйте! Напишите ваш вопрос — мы ответим в этом окне.",
    "info_message": "",
    "color": "#1f6feb",
    "allowed_origins": [],
}
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
# What a supervisor may change in a widget: the texts customers read (a greeting, a notice
# about an outage or long waits). Where the widget may run, its key and look are the admins'.
SUPERVISOR_WIDGET_FIELDS = frozenset({"greeting", "info_message"})


def check_widget_edit(role: str, fields: set[str]) -> None:
    """Refuse a widget change this role may not make (403 ``forbidden_role``):
    ``channels.manage`` changes anything, ``channels.edit_texts`` the texts only."""
    if role_has(role, "channels.manage"):
        return
    if role_has(role, "channels.edit_texts"):
        other = sorted(fields - SUPERVISOR_WIDGET_FIELDS)
        if not other:
            return
        raise Forbidden(
            "supervisors may change only the greeting and the info message",
            code="forbidden_role",
            field=other[0],
            permission="channels.manage",
        )
    raise Forbidden(
        "only admins and supervisors change widgets",
        code="forbidden_role",
        permission="channels.edit_texts",
    )


SECRET_KEYS = ("identity_secret",)
MIN_SECRET_CHARS = 32


def config_for(channel: Channel, role: str) -> dict[str, Any]:
    """The part of a channel's settings this role may read: all of it with
    ``channels.manage`` (admins); otherwise the widget texts and colour only (messenger
    channels keep bot tokens and webhook secrets in ``config``, and where a widget may run
    is not a supervisor's or an auditor's business)."""
    config = dict(channel.config or {})
    if role_has(role, "channels.manage"):
        # secrets are write-only: an admin sees that one is set, never its value
        for key in (*SECRET_KEYS, *kinds.secret_names(channel.kind)):
            if config.pop(key, None):
                config[f"{key}_set"] = True
        return config
    if channel.kind != "widget":
        return {}
    merged = {**DEFAULT_WIDGET_CONFIG, **config}
    return {k: merged[k] for k in ("greeting", "info_message", "color")}


def check_channel_reader(role: str) -> None:
    """Admins, supervisors (who edit widget texts), security officers and auditors see the
    channel list (``channels.read``)."""
    if not role_has(role, "channels.read"):
        raise Forbidden(
            "your role may not see channels", code="forbidden_role", permission="channels.read"
        )


async def add_widget(
    session: AsyncSession, *, key: str, name: str | None = None, **config: Any
) -> Channel:
    """Create a widget channel with a public key; Conflict if the key is taken."""
    if not KEY_RE.match(key):
        raise BadRequest(
            "widget key must be 3-100 letters, digits, '-' or '_'", code="invalid_widget_key"
        )
    if await session.scalar(select(Channel.id).where(Channel.key == key)):
        raise Conflict(f"widget key {key!r} is taken", code="widget_key_taken")
    merged = {**DEFAULT_WIDGET_CONFIG, **{k: v for k, v in config.items() if v is not None}}
    validate_widget_config(merged)
    channel = Channel(kind="widget", name=name or key, key=key, config=merged)
    session.add(channel)
    await session.flush()
    return channel


async def update_widget(
    session: AsyncSession,
    channel: Channel,
    *,
    name: str | None = None,
    is_active: bool | None = None,
    key: str | None = None,
    **config: Any,
) -> Channel:
    """Change a widget's name, key, texts, colour, allowed origins or on/off state.

    A new key must be free (409 ``key_taken``); the caller forgets the cached channel after
    commit, and new sessions then resolve only the new key.
    """
    if key is not None and key != channel.key:
        if not KEY_RE.match(key):
            raise BadRequest(
                "widget key must be 3-100 letters, digits, '-' or '_'",
                code="invalid_widget_key",
                field="key",
            )
        if await session.scalar(select(Channel.id).where(Channel.key == key)):
            raise Conflict(f"widget key {key!r} is taken", code="key_taken", field="key")
        channel.key = key
    merged = {
        **DEFAULT_WIDGET_CONFIG,
        **(channel.config or {}),
        **{k: v for k, v in config.items() if v is not None},
    }
    validate_widget_config(merged)
    channel.config = merged
    if name is not None:
        channel.name = name.strip() or channel.name
    if is_active is not None:
        channel.is_active = is_active
    await session.flush()
    return channel


async def get_widget_for_admin(session: AsyncSession, *, key: str) -> Channel:
    """A widget by key, switched off or not; NotFound otherwise."""
    channel = await session.scalar(
        select(Channel).where(Channel.key == key, Channel.kind == "widget")
    )
    if channel is None:
        raise NotFound("no widget has this key", code="unknown_widget_key")
    return channel


def validate_widget_config(config: dict[str, Any]) -> None:
    if not COLOR_RE.match(str(config.get("color", ""))):
        raise BadRequest("color must look like #1f6feb", code="invalid_color")
    for field in ("greeting", "info_message"):
        if len(str(config.get(field, ""))) > 1000:
            raise BadRequest(f"{field} is longer than 1000 characters", code="text_too_long")
    secret = config.get("identity_secret")
    if secret and (not isinstance(secret, str) or not MIN_SECRET_CHARS <= len(secret) <= 200):
        raise BadRequest(
            f"identity_secret must be {MIN_SECRET_CHARS}-200 characters (a random string the "
            "bank's site signs customer tokens with)",
            code="invalid_identity_secret",
        )
    if len(str(config.get("topic") or "")) > 100:
        raise BadRequest("topic is longer than 100 characters", code="text_too_long")
    origins = config.get("allowed_origins", [])
    if not isinstance(origins, list) or not all(
        isinstance(o, str) and o.startswith(("http://", "https://")) for o in origins
    ):
        raise BadRequest(
            "allowed_origins must be a list like ['https://bank.example']", code="invalid_origin"
        )


async def get_widget(session: AsyncSession, *, key: str) -> Channel:
    """The active widget with this key; NotFound (``unknown_widget_key``) otherwise."""
    channel = await session.scalar(
        select(Channel).where(Channel.key == key, Channel.kind == "widget")
    )
    if channel is None or not channel.is_active:
        raise NotFound("no widget has this key", code="unknown_widget_key")
    return channel


async def get_channel(session: AsyncSession, channel_id: int) -> Channel | None:
    return await session.get(Channel, channel_id)


async def list_channels(session: AsyncSession) -> list[Channel]:
    return list((await session.scalars(select(Channel).order_by(Channel.id))).all())


def widget_public_config(channel: Channel) -> dict[str, Any]:
    """What a customer's browser may know about the widget (no origins, no secrets)."""
    cfg = {**DEFAULT_WIDGET_CONFIG, **(channel.config or {})}
    return {
        "name": channel.name,
        "greeting": cfg["greeting"],
        "info_message": cfg["info_message"],
        "color": cfg["color"],
        # the widget offers question suggestions and "talk to a person" only with the bot
        "bot": bool(cfg.get("bot")),
    }


def origin_allowed(channel: Channel, origin: str | None) -> bool:
    """Whether a browser page at ``origin`` may use this widget (empty list: any site)."""
    allowed = (channel.config or {}).get("allowed_origins") or []
    if not allowed or origin is None:
        return True
    return origin.rstrip("/") in {o.rstrip("/") for o in allowed}


class ChannelCache:
    """Channels by id, kept for a few seconds.

    Every customer message needs its channel and channels change rarely, so one process
    reads each at most every ``ttl`` seconds. A change made through this process applies at
    once (``forget``); other processes see it within ``ttl``.
    """

    def __init__(self, ttl: float = 5.0) -> None:
        self.ttl = ttl
        self._rows: dict[int, tuple[float, Channel]] = {}

    async def get(self, session: AsyncSession, channel_id: int) -> Channel | None:
        now = time.monotonic()
        cached = self._rows.get(channel_id)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        channel = await get_channel(session, channel_id)
        if channel is not None:
            session.expunge(channel)  # a detached copy: safe to share between requests
            self._rows[channel_id] = (now, channel)
        return channel

    def peek(self, channel_id: int) -> Channel | None:
        """The cached row if still fresh, without a database session (hot paths)."""
        cached = self._rows.get(channel_id)
        if cached is not None and time.monotonic() - cached[0] < self.ttl:
            return cached[1]
        return None

    def forget(self, channel_id: int) -> None:
        self._rows.pop(channel_id, None)


def kind_is_known(kind: str) -> bool:
    return kind in CHANNEL_KINDS


def webhook_path(channel: Channel) -> str:
    """Where the platform posts updates (``/hooks/telegram/7``)."""
    return f"/hooks/{channel.kind}/{channel.id}"


async def add_messenger(
    session: AsyncSession,
    *,
    kind: str,
    values: dict[str, Any],
    signing_key: str,
    name: str | None = None,
) -> Channel:
    """Create a messenger, e-mail or app channel; its settings are checked against the
    adapter's list and credentials are stored encrypted."""
    adapter = kinds.adapter_for(kind)
    config = kinds.prepare_config(adapter, values, signing_key)
    channel = Channel(kind=kind, name=(name or "").strip() or adapter.title, config=config)
    session.add(channel)
    await session.flush()
    return channel


async def update_messenger(
    session: AsyncSession,
    channel: Channel,
    *,
    values: dict[str, Any],
    signing_key: str,
    name: str | None = None,
    is_active: bool | None = None,
) -> Channel:
    """Change some settings (a new token, a new secret); what is not given stays."""
    adapter = kinds.adapter_for(channel.kind)
    channel.config = kinds.prepare_config(adapter, values, signing_key, existing=channel.config)
    if name is not None and name.strip():
        channel.name = name.strip()[:200]
    if is_active is not None:
        channel.is_active = is_active
    await session.flush()
    return channel
