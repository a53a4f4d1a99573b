"""Storing what a messenger delivered: its messages (with their files) and the statuses of
what okno sent. Shared by webhooks and by channels okno polls (Telegram long polling,
an IMAP mailbox).

Nothing is acknowledged to the platform before it is committed: a failure here answers
the webhook with an error, and the platform delivers it again; the message's external id
makes that second delivery a no-op.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import outbound
from okno.channels.adapter import Adapter, HookResult, Incoming, SendFailed
from okno.channels.models import Channel
from okno.conversations import attachments, scanning
from okno.conversations.inbound import Inbound, receive
from okno.conversations.models import Conversation, Message
from okno.customers import service as customers
from okno.db.session import Database
from okno.errors import OknoError
from okno.settings import Settings

log = structlog.get_logger("okno.channels")
MAX_TEXT = 10_000
# per database (one process may serve several, as the tests do): channel id -> when noted
_noted: weakref.WeakKeyDictionary[Database, dict[int, float]] = weakref.WeakKeyDictionary()


@dataclass
class Stored:
    messages: int = 0
    duplicates: int = 0
    statuses: int = 0


async def store(
    db: Database,
    settings: Settings,
    channel: Channel,
    adapter: Adapter,
    config: dict[str, Any],
    result: HookResult,
) -> Stored:
    """Store every message and status of one verified delivery, each in its own
    transaction (a retry of the delivery skips what was stored already)."""
    stored = Stored()
    for incoming in result.messages:
        files, failed = await _fetch_files(settings, adapter, config, incoming)
        inbound = _inbound(channel, incoming, files, failed)

        async def run(
            session: AsyncSession,
            inbound: Inbound = inbound,
            phone: str | None = incoming.verified_phone,
        ) -> bool:
            await _resolve_button(session, channel.id, inbound)
            message, created = await receive(session, inbound)
            if not created:
                return False
            conversation = await session.get(Conversation, message.conversation_id)
            assert conversation is not None
            # The customer wrote: what waited for that (a closed reply window) goes now.
            await outbound.release_waiting(
                session,
                channel_id=channel.id,
                customer_id=conversation.customer_id,
                after_message_id=message.id,
            )
            if phone:
                await customers.link_verified_phone(
                    session,
                    customer_id=conversation.customer_id,
                    phone=phone,
                    signing_key=settings.signing_key(),
                )
            return created

        try:
            created = await db.write(run)
        except OknoError as exc:  # an empty message after cleaning, say: skip, keep the rest
            log.info("channel.message_skipped", channel_id=channel.id, code=exc.code)
            continue
        if created:
            stored.messages += 1
        else:
            stored.duplicates += 1
        await _acknowledge(settings, adapter, config, incoming)
    if result.statuses:

        async def apply(session: AsyncSession) -> int:
            changed = 0
            for update in result.statuses:
                changed += await outbound.apply_status(session, channel.id, update)
            return changed

        stored.statuses = await db.write(apply)
    return stored


def _inbound(
    channel: Channel, incoming: Incoming, files: list[attachments.StoredFile], failed: list[Any]
) -> Inbound:
    extra: dict[str, object] = {}
    if incoming.reply_to:
        extra["reply_to"] = incoming.reply_to
    if incoming.contact:
        extra["contact"] = incoming.contact
    if failed:
        extra["files_failed"] = failed
    text = incoming.text[:MAX_TEXT]
    if not text and not files:
        if incoming.location:
            text = "📍"
        elif failed:
            text = "📎 " + ", ".join(f["filename"] for f in failed)
        elif incoming.contact:
            text = "👤 " + incoming.contact.get("name", "")
    return Inbound(
        channel=channel,
        external_customer_id=incoming.external_customer_id,
        text=text,
        customer_name=incoming.customer_name[:200],
        external_id=incoming.external_id[:200],
        files=files,
        button=incoming.button,
        location=incoming.location,
        extra_meta=extra,
    )


async def _resolve_button(session: AsyncSession, channel_id: int, inbound: Inbound) -> None:
    """Turn a pressed button's short reference back into the flow payload stored with the
    message that showed it (only a message of this channel's dialogs counts)."""
    ref = outbound.parse_button_ref(inbound.button)
    if ref is None:
        return
    message_id, index = ref
    inbound.button = None
    message = await session.get(Message, message_id)
    if message is None:
        return
    conversation = await session.get(Conversation, message.conversation_id)
    if conversation is None or conversation.channel_id != channel_id:
        return
    buttons = (message.meta or {}).get("buttons") or []
    if 0 <= index < len(buttons):
        inbound.button = str(buttons[index].get("payload") or "") or None
        if not inbound.text:
            inbound.text = str(buttons[index].get("label") or "")[:MAX_TEXT]


async def _fetch_files(
    settings: Settings, adapter: Adapter, config: dict[str, Any], incoming: Incoming
) -> tuple[list[attachments.StoredFile], list[dict[str, str]]]:
    """Download and check the files a customer sent. One that cannot be fetched or is not
    an accepted type does not lose the message: it is named in the message for the operator."""
    files: list[attachments.StoredFile] = []
    failed: list[dict[str, str]] = []
    if not incoming.files:
        return files, failed
    limit = settings.largest_attachment_bytes
    async with httpx.AsyncClient(timeout=settings.channel_send_timeout_seconds) as client:
        for remote in incoming.files:
            if remote.size is not None and remote.size > limit:
                failed.append({"filename": remote.filename, "reason": "too_large"})
                continue
            try:
                data = await adapter.download(client, config, remote)
                # scanned like a widget upload: an infected file is kept in quarantine and
                # marked blocked on the stored message, a file clamd could not look at is held
                files.append(
                    await scanning.accept_customer_file(data, remote.filename, settings=settings)
                )
            except OknoError as exc:
                failed.append({"filename": remote.filename, "reason": exc.code})
            except (SendFailed, httpx.HTTPError) as exc:
                log.warning("channel.download_failed", error=type(exc).__name__)
                failed.append({"filename": remote.filename, "reason": "download_failed"})
    return files, failed


async def _acknowledge(
    settings: Settings, adapter: Adapter, config: dict[str, Any], incoming: Incoming
) -> None:
    try:
        async with httpx.AsyncClient(timeout=settings.channel_send_timeout_seconds) as client:
            await adapter.acknowledge(client, config, incoming)
    except (SendFailed, httpx.HTTPError) as exc:  # the customer's button spins a bit longer
        log.info("channel.acknowledge_failed", error=type(exc).__name__)


async def note_rejected(db: Database, channel_id: int, reason: str) -> None:
    """Keep a refused webhook among the channel's recent errors, at most one per channel
    every ten seconds (a flood of forged calls must not become a flood of writes)."""
    now = time.monotonic()
    noted = _noted.setdefault(db, {})
    if now - noted.get(channel_id, -1e9) < 10:
        return
    noted[channel_id] = now
    try:
        async with db.transaction() as session:
            await outbound.note_error(session, channel_id, "webhook", reason)
    except Exception as exc:  # the note is a courtesy; the refusal stands without it
        log.warning("channel.note_failed", error=type(exc).__name__)
