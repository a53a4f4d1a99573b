"""Registering okno's webhook address with a platform (Telegram's setWebhook), for the
admin page, the API and `okno channels webhook`.

The address is OKNO_PUBLIC_URL + /hooks/{kind}/{id}. Platforms whose console takes the
address by hand (VK, Meta, Apple's register) have no `set_webhook`; a channel in polling
mode must not get one (Telegram stops answering getUpdates while a webhook is set).
"""

from __future__ import annotations

import httpx

from okno.channels import kinds, outbound, service
from okno.channels.adapter import SendFailed
from okno.channels.models import Channel
from okno.channels.schemas import WebhookSetOut
from okno.db.session import Database
from okno.errors import Conflict
from okno.security.secrets import SecretUnreadable
from okno.settings import Settings


async def set_webhook(
    db: Database, settings: Settings, channel: Channel, *, public_url: str | None = None
) -> WebhookSetOut:
    """Point the platform at this channel's webhook address with its secret; the
    platform's refusal comes back as ``ok: false`` (and joins the channel's recent errors).
    Conflict when there is no public address, the channel polls, or the platform's address
    is set in its own console."""
    adapter = kinds.adapter_for(channel.kind)
    setter = getattr(adapter, "set_webhook", None)
    if not callable(setter):
        raise Conflict(
            f"{adapter.title} webhooks are registered in the platform's own console; give it "
            f"the address {service.webhook_path(channel)} under okno's public URL",
            code="webhook_not_settable",
        )
    public = (public_url if public_url is not None else settings.public_url).rstrip("/")
    if not public.startswith(("http://", "https://")):
        raise Conflict(
            "okno has no public address: set OKNO_PUBLIC_URL (https://okno.bank.example) "
            "to the address the platform can reach, or use polling mode",
            code="no_public_url",
        )
    try:
        config = kinds.readable_config(channel, settings.signing_key())
    except SecretUnreadable:
        raise Conflict(
            "the stored credentials cannot be decrypted (OKNO_SECRET_KEY changed?); enter "
            "them again",
            code="channel_broken",
        ) from None
    if adapter.wants_poll(config):
        raise Conflict(
            "this channel polls the platform; a webhook would stop polling (switch mode to "
            "webhook first)",
            code="channel_polls",
        )
    url = public + service.webhook_path(channel)
    reason = ""
    try:
        async with httpx.AsyncClient(timeout=settings.channel_send_timeout_seconds) as client:
            await setter(client, config, url)
    except SendFailed as exc:
        reason = exc.reason
    except httpx.TimeoutException:
        reason = "the platform did not answer in time"
    except httpx.HTTPError as exc:
        reason = f"cannot reach the platform: {type(exc).__name__}"
    if reason:
        async with db.transaction() as session:
            await outbound.note_error(session, channel.id, "check", f"webhook: {reason}")
        return WebhookSetOut(ok=False, url=url, detail=reason)
    return WebhookSetOut(ok=True, url=url, detail="the platform now posts updates here")
