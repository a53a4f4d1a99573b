"""Which adapter serves which channel kind, and a channel's settings as adapters read them.

Adapters are imported on first use, so a deployment pays only for the platforms it uses.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from okno.channels.adapter import Adapter, ConfigField
from okno.channels.models import Channel
from okno.errors import BadRequest
from okno.security import secrets

# kind -> "module:Class"
ADAPTERS = {
    "telegram": "okno.channels.telegram.adapter:TelegramAdapter",
    "viber": "okno.channels.viber.adapter:ViberAdapter",
    "vk": "okno.channels.vk.adapter:VkAdapter",
    "whatsapp": "okno.channels.whatsapp.adapter:WhatsAppAdapter",
    "facebook": "okno.channels.facebook.adapter:FacebookAdapter",
    "apple": "okno.channels.apple.adapter:AppleAdapter",
    "email": "okno.channels.email.adapter:EmailAdapter",
    # not okno.channels.api: that name is the channel admin endpoints module
    "api": "okno.channels.mobile.adapter:ApiAdapter",
}
# Settings every messenger channel has besides its own.
COMMON_FIELDS = (
    ConfigField("api_base", "The platform's API address (a local fake in tests).", required=False),
    ConfigField("topic", "Routing topic of dialogs from this channel.", required=False),
)


def available() -> list[str]:
    """Kinds whose adapter is installed in this build."""
    return [kind for kind in ADAPTERS if _load(kind) is not None]


@cache
def _load(kind: str) -> Adapter | None:
    target = ADAPTERS.get(kind)
    if target is None:
        return None
    module_name, _, cls = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return None  # this adapter is not part of the build
        raise
    adapter: Adapter = getattr(module, cls)()
    return adapter


def adapter_for(kind: str) -> Adapter:
    adapter = _load(kind)
    if adapter is None:
        raise BadRequest(f"channels of kind {kind!r} are not supported", code="unknown_kind")
    return adapter


def is_messenger(kind: str) -> bool:
    """Kinds whose outbound messages go through the delivery jobs."""
    return kind in ADAPTERS and _load(kind) is not None


def fields_of(adapter: Adapter) -> tuple[ConfigField, ...]:
    return adapter.fields + COMMON_FIELDS


def secret_names(kind: str) -> set[str]:
    adapter = _load(kind)
    return {f.name for f in adapter.fields if f.secret} if adapter else set()


def prepare_config(
    adapter: Adapter,
    values: dict[str, Any],
    signing_key: str,
    existing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Validated settings to store: unknown names refused, required ones present, secrets
    encrypted. ``existing`` (an update) keeps what is not given; "" removes an optional one.
    """
    known = {f.name: f for f in fields_of(adapter)}
    config = dict(existing or {})
    for name, value in values.items():
        field = known.get(name)
        if field is None and name not in ("bot",):
            raise BadRequest(
                f"{adapter.kind} channels have no setting {name!r}",
                code="unknown_setting",
                field=name,
            )
        if name == "bot":
            config["bot"] = bool(value)
            continue
        assert field is not None
        if value is None:
            continue
        if not isinstance(value, str):
            value = str(value)
        value = value.strip()
        if len(value) > 4000:
            raise BadRequest(f"{name} is too long", code="invalid_setting", field=name)
        if not value:
            if field.required:
                raise BadRequest(f"{name} is required", code="missing_setting", field=name)
            config.pop(name, None)
            continue
        if name == "api_base" and not value.startswith(("http://", "https://")):
            raise BadRequest(
                "api_base must start with http:// or https://", code="invalid_setting", field=name
            )
        adapter.check_value(name, value)
        config[name] = secrets.encrypt(value, signing_key) if field.secret else value
    for field in fields_of(adapter):
        if field.name not in config and field.default is not None:
            config[field.name] = field.default
        if field.required and not config.get(field.name):
            raise BadRequest(
                f"{field.name} is required for {adapter.kind} channels ({field.help})",
                code="missing_setting",
                field=field.name,
            )
    adapter.check_config(config)
    return config


def readable_config(channel: Channel, signing_key: str) -> dict[str, Any]:
    """The channel's settings with credentials decrypted, for its adapter only."""
    config = dict(channel.config or {})
    for name in secret_names(channel.kind):
        value = config.get(name)
        if isinstance(value, str):
            config[name] = secrets.decrypt(value, signing_key)
    return config
