"""Fetching updates for channels that cannot take webhooks: Telegram in polling mode (a
bank without a public address), an e-mail mailbox.

A periodic job (`channels.poll`, every few seconds) asks each such channel for what came
since its cursor, stores it, and only then moves the cursor: a crash in between fetches
the same updates again, and their external ids make that a no-op.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import kinds, outbound, receiving
from okno.channels.adapter import SendFailed
from okno.channels.models import Channel
from okno.db.session import Database
from okno.errors import OknoError
from okno.jobs.worker import JobContext
from okno.security.secrets import SecretUnreadable
from okno.settings import Settings

log = structlog.get_logger("okno.channels")
POLL = "channels.poll"
EVERY_SECONDS = 10


async def poll_job(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """All the work is in `prepare_poll`, outside a transaction (it waits on the network)."""


async def prepare_poll(db: Database, payload: dict[str, Any], ctx: JobContext) -> None:
    async with db.read() as session:
        rows = list(
            (
                await session.scalars(
                    select(Channel).where(
                        Channel.is_active.is_(True), Channel.kind.in_(kinds.ADAPTERS)
                    )
                )
            ).all()
        )
    polled = []
    for channel in rows:
        if not kinds.is_messenger(channel.kind):
            continue
        try:
            config = kinds.readable_config(channel, ctx.settings.signing_key())
        except SecretUnreadable:
            continue
        if kinds.adapter_for(channel.kind).wants_poll(config):
            polled.append(poll_channel(db, ctx.settings, channel, config))
    if polled:
        await asyncio.gather(*polled)


async def poll_channel(
    db: Database, settings: Settings, channel: Channel, config: dict[str, Any]
) -> int:
    """Poll one channel until the period is nearly over; returns messages stored."""
    adapter = kinds.adapter_for(channel.kind)
    deadline = time.monotonic() + EVERY_SECONDS - 2
    cursor = channel.cursor
    total = 0
    while True:
        wait = min(settings.channel_poll_seconds, max(0.0, deadline - time.monotonic()))
        try:
            polled = await adapter.poll(config, cursor, wait, settings.channel_send_timeout_seconds)
            stored = await receiving.store(db, settings, channel, adapter, config, polled.result)
        except (SendFailed, httpx.HTTPError, OSError, OknoError) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.warning("channel.poll_failed", channel_id=channel.id, error=str(reason)[:200])
            async with db.transaction() as session:
                await outbound.note_error(session, channel.id, "poll", str(reason))
            return total
        total += stored.messages
        if polled.cursor != cursor:
            cursor = polled.cursor
            async with db.transaction() as session:
                row = await session.get(Channel, channel.id)
                if row is not None:
                    row.cursor = cursor
        if wait <= 0 or time.monotonic() >= deadline - 0.5:
            return total
