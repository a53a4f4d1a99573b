"""Checking that a channel's credentials work, by asking its platform."""

from __future__ import annotations

import httpx

from okno.channels import kinds
from okno.channels.adapter import SendFailed
from okno.channels.models import Channel
from okno.channels.schemas import ChannelCheckOut
from okno.security.secrets import SecretUnreadable
from okno.settings import Settings


async def check(settings: Settings, channel: Channel) -> ChannelCheckOut:
    adapter = kinds.adapter_for(channel.kind)
    try:
        config = kinds.readable_config(channel, settings.signing_key())
        async with httpx.AsyncClient(timeout=settings.channel_send_timeout_seconds) as client:
            detail = await adapter.check(client, config)
    except SecretUnreadable:
        return ChannelCheckOut(ok=False, detail="stored credentials cannot be decrypted")
    except SendFailed as exc:
        return ChannelCheckOut(ok=False, detail=exc.reason)
    except httpx.TimeoutException:
        return ChannelCheckOut(ok=False, detail="the platform did not answer in time")
    except httpx.HTTPError as exc:
        return ChannelCheckOut(ok=False, detail=f"cannot reach the platform: {type(exc).__name__}")
    return ChannelCheckOut(ok=True, detail=detail)
