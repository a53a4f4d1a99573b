"""Sending what operators and the bot say to customers in messengers, exactly once each,
in order, within each platform's limits.

Every customer-visible message in a messenger dialog gets a `Delivery` row and a
`channels.send` job in the same transaction (`request_send`). The job sends the oldest
unsent message of the dialog first, so a message never overtakes an earlier one; a row is
leased while its HTTP call runs, so two workers never send it at once. Failures the
platform calls temporary (429, 5xx, a timeout) are retried with backoff (honouring
Retry-After); a refusal (the customer blocked the bot) or too many attempts marks the row
failed, and the operator sees "not delivered".

Some platforms take a message only within a while after the customer last wrote
(WhatsApp's 24 hours). Their adapter raises ``SendFailed(wait_for_customer=True)`` (or
reports such a failure later as a status): the row becomes "waiting", a `channels.send`
job with ``reengage`` asks the adapter to invite the customer once (a template message),
later messages of the dialog wait behind it in order, and the customer's next message
(`release_waiting`) queues them all again.

The one window where a message could go twice: the platform took it but okno crashed
before recording that. After the lease runs out it is sent again, unless the adapter's
platform drops repeats itself (`Adapter.dedups_resends`). The window is the time between
the platform's answer and one small commit.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import kinds
from okno.channels.adapter import STATUS_ORDER, Outbound, OutboundFile, SendFailed, StatusUpdate
from okno.channels.models import Channel, ChannelError, Delivery, EarlyStatus
from okno.channels.ratelimit import limiter
from okno.conversations.attachments import path_of
from okno.conversations.models import Attachment, Conversation, Message
from okno.customers.models import CustomerIdentity
from okno.db.base import utcnow
from okno.db.session import Database
from okno.events.service import PendingEvent, record_event
from okno.jobs import service as jobs
from okno.jobs.worker import JobContext
from okno.security.secrets import SecretUnreadable

log = structlog.get_logger("okno.channels")
SEND = "channels.send"
MAX_SEND_ATTEMPTS = 8
# How long a message being sent stays claimed: the send timeout plus room; a worker that
# died mid-send frees it after this.
LEASE_MARGIN_SECONDS = 5.0
KEEP_ERRORS = 50
# How long a report on a message id okno has not recorded yet is kept for its send to
# claim (the send commits within moments; a report nobody claims is someone else's).
EARLY_STATUS_KEPT = timedelta(minutes=10)
EARLY_LOCK_SPACE = 7_280_001  # pg_advisory_xact_lock(space, hash of channel and platform id)


class RetryLater(Exception):
    """The job should run again after ``retry_after`` seconds (None: the usual backoff)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


async def request_send(session: AsyncSession, conversation: Conversation, message: Message) -> None:
    """Queue ``message`` for the customer's messenger when the dialog is in one."""
    channel = await session.get(Channel, conversation.channel_id)
    if channel is None or not kinds.is_messenger(channel.kind):
        return
    session.add(
        Delivery(
            message_id=message.id,
            conversation_id=conversation.id,
            channel_id=channel.id,
            status="queued",
            created_at=utcnow(),
            updated_at=utcnow(),
        )
    )
    await jobs.enqueue(
        session,
        kind=SEND,
        queue="outbound",
        priority=jobs.URGENT,
        payload={"message_id": message.id},
        dedup_key=f"{SEND}:{message.id}",
        max_attempts=3 * MAX_SEND_ATTEMPTS,
    )


async def send_job(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Everything happened in `prepare_send` (outside a long transaction)."""


async def prepare_send(db: Database, payload: dict[str, Any], ctx: JobContext) -> None:
    """Send the dialog's unsent messages in order up to and including this job's one."""
    message_id = int(payload["message_id"])
    if payload.get("reengage"):
        await _reengage(db, message_id, ctx)
        return
    for _ in range(100):
        claimed = await _claim_head(db, message_id, ctx)
        if claimed is None:
            return
        delivery_id, head_message_id, adapter_kind, config, outbound, attempts = claimed
        adapter = kinds.adapter_for(adapter_kind)
        try:
            await limiter.wait(
                channel_id=config["_channel_id"],
                recipient=outbound.recipient,
                rate=adapter.rate_per_second,
                gap=adapter.per_recipient_gap_seconds,
            )
            async with httpx.AsyncClient(timeout=ctx.settings.channel_send_timeout_seconds) as c:
                sent = await adapter.send(c, config, outbound)
        except (SendFailed, httpx.HTTPError) as exc:
            if isinstance(exc, SendFailed):
                failure = exc
            elif isinstance(exc, httpx.TimeoutException):
                failure = SendFailed("timeout")
            else:
                failure = SendFailed(f"connection failed: {type(exc).__name__}")
            if failure.after:
                limiter.pause(config["_channel_id"], failure.after)
            if failure.wait_for_customer:
                await _hold(db, delivery_id, failure.reason)
                if head_message_id != message_id:
                    continue
                return
            given_up = not failure.retry or attempts >= MAX_SEND_ATTEMPTS
            await _record_failure(db, delivery_id, failure.reason, given_up=given_up)
            if given_up and head_message_id != message_id:
                continue  # a lost earlier message must not hold back the later ones
            if given_up:
                return
            raise RetryLater(failure.reason, failure.after) from None
        await _record_sent(db, delivery_id, sent.external_id)
        if head_message_id == message_id:
            return
    raise RetryLater("more messages than one round sends")


async def _claim_head(
    db: Database, message_id: int, ctx: JobContext
) -> tuple[int, int, str, dict[str, Any], Outbound, int] | None:
    """Lease the oldest unsent message of this message's dialog; None when this message
    needs nothing more (sent already, failed, or not a messenger's)."""
    unreadable: int | None = None
    async with db.transaction() as session:
        target = await session.scalar(select(Delivery).where(Delivery.message_id == message_id))
        if target is None or target.status not in ("queued", "sending"):
            return None
        head = await session.scalar(
            select(Delivery)
            .where(
                Delivery.conversation_id == target.conversation_id,
                Delivery.status.in_(("queued", "sending")),
                Delivery.message_id <= message_id,
            )
            .order_by(Delivery.message_id)
            .limit(1)
            .with_for_update()
            # the row as it is now, after the lock: the target read above may be this very
            # row, and its stale copy must not let two workers both claim it
            .execution_options(populate_existing=True)
        )
        if head is None:
            # PostgreSQL: the row we waited for changed under the lock (another worker sent
            # it) and LIMIT 1 then yields nothing; look again in a moment
            raise RetryLater("another worker moved this dialog's outbox on", 0.05)
        if await _waiting_in(session, target.conversation_id):
            # An earlier message waits for the customer to write (a reply window): the
            # later ones wait behind it, so they still reach the customer in order.
            behind = await session.scalars(
                select(Delivery).where(
                    Delivery.conversation_id == target.conversation_id,
                    Delivery.status == "queued",
                    Delivery.message_id <= message_id,
                )
            )
            for row in behind.all():
                row.last_error = "waits for the customer to write (the reply window is closed)"
                await _set_status(session, row, "waiting")
            return None
        now = utcnow()
        if head.status == "sending" and head.lease_until and head.lease_until > now:
            wait = (head.lease_until - now).total_seconds()
            raise RetryLater("an earlier message of this dialog is being sent", min(wait, 5.0))
        channel = await session.get(Channel, head.channel_id)
        message = await session.get(Message, head.message_id)
        conversation = await session.get(Conversation, head.conversation_id)
        if channel is None or message is None or conversation is None:
            head.status = "failed"
            head.last_error = "the channel or the message is gone"
            return None
        try:
            config = kinds.readable_config(channel, ctx.settings.signing_key())
        except SecretUnreadable:
            unreadable = channel.id
        else:
            config["_channel_id"] = channel.id
            outbound = await _outbound(session, ctx, conversation, message)
            if head.status == "sending" and not kinds.adapter_for(channel.kind).dedups_resends:
                # The last try ended without a word (okno stopped mid-send): the platform
                # may have taken it, and it does not drop repeats. Say so where admins look.
                log.warning("channel.resend_after_interruption", message_id=head.message_id)
                await note_error(
                    session,
                    channel.id,
                    "send",
                    f"message {head.message_id} is sent again after an interrupted try; "
                    "the customer may see it twice",
                )
            head.status = "sending"
            head.attempts += 1
            head.lease_until = now + timedelta(
                seconds=ctx.settings.channel_send_timeout_seconds * 2 + LEASE_MARGIN_SECONDS
            )
            head.updated_at = now
            return head.id, head.message_id, channel.kind, config, outbound, head.attempts
    async with db.transaction() as session:
        await note_error(session, unreadable, "send", "credentials cannot be decrypted")
    raise RetryLater("the channel's credentials cannot be decrypted; enter them again")


async def _outbound(
    session: AsyncSession, ctx: JobContext, conversation: Conversation, message: Message
) -> Outbound:
    identity = await session.scalar(
        select(CustomerIdentity)
        .where(
            CustomerIdentity.customer_id == conversation.customer_id,
            CustomerIdentity.channel_id == conversation.channel_id,
        )
        .order_by(CustomerIdentity.id.desc())
        .limit(1)
    )
    recipient = identity.external_id if identity else ""
    rows = await session.scalars(select(Attachment).where(Attachment.message_id == message.id))
    files = []
    for a in rows:
        data = path_of(ctx.settings.data_dir, a.storage_path).read_bytes()
        files.append(OutboundFile(a.filename, a.content_type, data))
    meta = message.meta or {}
    # Where to answer, as the customer's newest message told (an e-mail's thread).
    last_meta = await session.scalar(
        select(Message.meta)
        .where(
            Message.conversation_id == conversation.id,
            Message.author_kind == "customer",
            Message.id < message.id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    reply_to = (last_meta or {}).get("reply_to") if isinstance(last_meta, dict) else None
    wrote_at = await session.scalar(
        select(Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Conversation.customer_id == conversation.customer_id,
            Conversation.channel_id == conversation.channel_id,
            Message.author_kind == "customer",
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    buttons = [
        {"label": str(b.get("label", "")), "payload": button_ref(message.id, i)}
        for i, b in enumerate(meta.get("buttons") or [])
    ]
    return Outbound(
        message_id=message.id,
        conversation_id=conversation.id,
        recipient=recipient,
        text=message.text,
        files=files,
        buttons=buttons,
        ask_location=bool(meta.get("ask_location")),
        reply_to=reply_to,
        author_kind=message.author_kind,
        customer_wrote_at=wrote_at,
    )


def button_ref(message_id: int, index: int) -> str:
    """A short stand-in for a button's payload (platforms cap theirs at 64-256 bytes); the
    hook turns it back into the payload stored with the message."""
    return f"okno:{message_id}:{index}"


def parse_button_ref(value: str | None) -> tuple[int, int] | None:
    if not value or not value.startswith("okno:"):
        return None
    parts = value.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        return None
    return int(parts[1]), int(parts[2])


async def _record_sent(db: Database, delivery_id: int, external_id: str) -> None:
    async with db.transaction() as session:
        delivery = await session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None:
            return
        delivery.external_id = external_id[:200]
        delivery.lease_until = None
        delivery.last_error = None
        delivery.updated_at = utcnow()
        await _set_status(session, delivery, "sent")
        await _lock_platform_id(session, delivery.channel_id, delivery.external_id)
        await _apply_early(session, delivery)


async def _record_failure(db: Database, delivery_id: int, reason: str, *, given_up: bool) -> None:
    async with db.transaction() as session:
        delivery = await session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None:
            return
        delivery.last_error = reason[:1000]
        delivery.lease_until = None
        delivery.updated_at = utcnow()
        if given_up:
            await note_error(session, delivery.channel_id, "send", reason)
            log.warning("channel.send_failed", channel_id=delivery.channel_id, reason=reason)
            await _set_status(session, delivery, "failed")
        else:
            delivery.status = "queued"


async def _waiting_in(session: AsyncSession, conversation_id: int, but: int | None = None) -> bool:
    """Whether a message of this dialog (other than delivery ``but``) waits for the
    customer to write."""
    query = select(Delivery.id).where(
        Delivery.conversation_id == conversation_id, Delivery.status == "waiting"
    )
    if but is not None:
        query = query.where(Delivery.id != but)
    return await session.scalar(query.limit(1)) is not None


async def _start_wait(session: AsyncSession, delivery: Delivery, reason: str) -> None:
    """Make ``delivery`` wait for the customer's next message; the first waiting message
    of a dialog gets a job that invites the customer (`Adapter.reengage`)."""
    first = not await _waiting_in(session, delivery.conversation_id, but=delivery.id)
    delivery.last_error = reason[:1000]
    delivery.lease_until = None
    delivery.updated_at = utcnow()
    await _set_status(session, delivery, "waiting")
    if first:
        await jobs.enqueue(
            session,
            kind=SEND,
            queue="outbound",
            priority=jobs.URGENT,
            payload={"message_id": delivery.message_id, "reengage": True},
            dedup_key=f"{SEND}:{delivery.message_id}:reengage:{delivery.attempts}"
            f":{delivery.external_id or ''}",
            max_attempts=3 * MAX_SEND_ATTEMPTS,
        )


async def _hold(db: Database, delivery_id: int, reason: str) -> None:
    async with db.transaction() as session:
        delivery = await session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is not None:
            await _start_wait(session, delivery, reason)


async def _reengage(db: Database, message_id: int, ctx: JobContext) -> None:
    """Invite the customer to write, for the first waiting message of a dialog; a message
    they answered meanwhile (no longer waiting) needs nothing."""
    async with db.read() as session:
        delivery = await session.scalar(select(Delivery).where(Delivery.message_id == message_id))
        if delivery is None or delivery.status != "waiting":
            return
        channel = await session.get(Channel, delivery.channel_id)
        message = await session.get(Message, message_id)
        conversation = await session.get(Conversation, delivery.conversation_id)
        if channel is None or message is None or conversation is None:
            return
        try:
            config = kinds.readable_config(channel, ctx.settings.signing_key())
        except SecretUnreadable:
            raise RetryLater("the channel's credentials cannot be decrypted") from None
        outbound = await _outbound(session, ctx, conversation, message)
        delivery_id, channel_id, kind = delivery.id, channel.id, channel.kind
    adapter = kinds.adapter_for(kind)
    try:
        async with httpx.AsyncClient(timeout=ctx.settings.channel_send_timeout_seconds) as c:
            invited = await adapter.reengage(c, config, outbound)
    except (SendFailed, httpx.HTTPError) as exc:
        failure = exc if isinstance(exc, SendFailed) else SendFailed(type(exc).__name__)
        if failure.retry:
            raise RetryLater(f"invitation: {failure.reason}", failure.after) from None
        async with db.transaction() as session:
            await note_error(session, channel_id, "send", f"invitation: {failure.reason}")
        return
    if invited:
        async with db.transaction() as session:
            row = await session.get(Delivery, delivery_id, with_for_update=True)
            if row is not None and row.status == "waiting":
                row.last_error = f"{row.last_error or ''}; {invited}"[:1000]


async def release_waiting(
    session: AsyncSession, *, channel_id: int, customer_id: int, after_message_id: int
) -> int:
    """The customer wrote (message ``after_message_id``): queue again every message that
    waited for it in this channel, oldest first. Returns how many."""
    rows = await session.scalars(
        select(Delivery)
        .join(Conversation, Conversation.id == Delivery.conversation_id)
        .where(
            Delivery.channel_id == channel_id,
            Delivery.status == "waiting",
            Conversation.customer_id == customer_id,
        )
        .order_by(Delivery.message_id)
        .with_for_update()
    )
    released = list(rows.all())
    for delivery in released:
        delivery.last_error = None
        delivery.updated_at = utcnow()
        await _set_status(session, delivery, "queued")
        await jobs.enqueue(
            session,
            kind=SEND,
            queue="outbound",
            priority=jobs.URGENT,
            payload={"message_id": delivery.message_id},
            dedup_key=f"{SEND}:{delivery.message_id}:after:{after_message_id}",
            max_attempts=3 * MAX_SEND_ATTEMPTS,
        )
    return len(released)


async def _set_status(session: AsyncSession, delivery: Delivery, status: str) -> None:
    """Move a delivery forward and tell the staff watching the dialog (✓, ✓✓, not sent)."""
    delivery.status = status
    conversation = await session.get(Conversation, delivery.conversation_id)
    if conversation is None:
        return
    record_event(
        session,
        PendingEvent(
            type="message.delivery",
            conversation_id=conversation.id,
            payload={"message_id": delivery.message_id, "status": status},
            customer_id=conversation.customer_id,
            customer_visible=False,
            team_id=conversation.team_id,
            assignee_id=conversation.assignee_id,
        ),
    )


async def apply_status(session: AsyncSession, channel_id: int, update: StatusUpdate) -> bool:
    """What the platform reported of a message okno sent (delivered, read, failed).
    Only forward moves count, so a late or replayed report changes nothing."""
    if update.up_to is not None:
        return await _apply_watermark(session, channel_id, update)
    by_platform_id = (
        select(Delivery)
        .where(Delivery.channel_id == channel_id, Delivery.external_id == update.external_id)
        .with_for_update()
    )
    delivery = await session.scalar(by_platform_id)
    if delivery is None and update.external_id:
        # The send may be committing this very id now: after the lock, either its commit
        # is visible here or it will find the report kept below.
        await _lock_platform_id(session, channel_id, update.external_id)
        delivery = await session.scalar(by_platform_id)
    if delivery is None:
        await _keep_early(session, channel_id, update)
        return False
    return await _apply_to(session, delivery, update)


async def _lock_platform_id(session: AsyncSession, channel_id: int, external_id: str) -> None:
    """Serialise recording a send and keeping an early report on the same platform id
    (PostgreSQL; SQLite's writes are serial already)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.blake2b(f"{channel_id}:{external_id}".encode(), digest_size=4).digest()
    key = int.from_bytes(digest, "big", signed=True)
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:space, :key)"), {"space": EARLY_LOCK_SPACE, "key": key}
    )


async def _apply_to(session: AsyncSession, delivery: Delivery, update: StatusUpdate) -> bool:
    channel_id = delivery.channel_id
    if update.status == "failed" and update.wait_for_customer:
        if delivery.status in ("sent", "delivered"):
            await _start_wait(session, delivery, update.error or "the reply window is closed")
            return True
        return False
    if update.status == "failed":
        if delivery.status in ("sent",):
            delivery.last_error = (update.error or "the platform could not deliver it")[:1000]
            delivery.updated_at = utcnow()
            await note_error(session, channel_id, "send", delivery.last_error)
            await _set_status(session, delivery, "failed")
            return True
        return False
    if STATUS_ORDER.get(update.status, -1) <= STATUS_ORDER.get(delivery.status, 99):
        return False
    delivery.updated_at = utcnow()
    await _set_status(session, delivery, update.status)
    return True


async def _keep_early(session: AsyncSession, channel_id: int, update: StatusUpdate) -> None:
    """Keep a report on a message id not recorded yet: the platform may answer our send
    and report on the message before the send job has committed the id it was given."""
    if not update.external_id:
        return
    now = utcnow()
    await session.execute(
        delete(EarlyStatus).where(EarlyStatus.received_at < now - EARLY_STATUS_KEPT)
    )
    session.add(
        EarlyStatus(
            channel_id=channel_id,
            external_id=update.external_id[:200],
            status=update.status[:20],
            error=update.error,
            wait_for_customer=update.wait_for_customer,
            received_at=now,
        )
    )


async def _apply_early(session: AsyncSession, delivery: Delivery) -> None:
    """Apply, in the order they came, the reports that arrived before this send was
    recorded."""
    rows = await session.scalars(
        select(EarlyStatus)
        .where(
            EarlyStatus.channel_id == delivery.channel_id,
            EarlyStatus.external_id == delivery.external_id,
        )
        .order_by(EarlyStatus.id)
    )
    for row in list(rows.all()):
        update = StatusUpdate(
            external_id=row.external_id,
            status=row.status,
            error=row.error,
            wait_for_customer=row.wait_for_customer,
        )
        await _apply_to(session, delivery, update)
        await session.delete(row)


async def _apply_watermark(session: AsyncSession, channel_id: int, update: StatusUpdate) -> bool:
    """A status for every message written to ``update.recipient`` up to ``update.up_to``
    (Messenger reports delivered and read as a moment, not per message)."""
    assert update.up_to is not None
    rows = await session.scalars(
        select(Delivery)
        .join(Conversation, Conversation.id == Delivery.conversation_id)
        .join(CustomerIdentity, CustomerIdentity.customer_id == Conversation.customer_id)
        .where(
            Delivery.channel_id == channel_id,
            CustomerIdentity.channel_id == channel_id,
            CustomerIdentity.external_id == (update.recipient or ""),
            Delivery.status.in_(("sent", "delivered")),
            Delivery.created_at <= update.up_to,
        )
        .order_by(Delivery.message_id)
    )
    changed = False
    for delivery in rows.all():
        if STATUS_ORDER.get(update.status, -1) > STATUS_ORDER.get(delivery.status, 99):
            delivery.updated_at = utcnow()
            await _set_status(session, delivery, update.status)
            changed = True
    return changed


async def note_error(session: AsyncSession, channel_id: int, kind: str, message: str) -> None:
    """Keep a problem for the admin's "recent errors" list (the newest few per channel)."""
    session.add(
        ChannelError(channel_id=channel_id, kind=kind, message=message[:1000], created_at=utcnow())
    )
    await session.flush()
    keep = select(ChannelError.id).where(ChannelError.channel_id == channel_id)
    newest = (
        await session.scalars(keep.order_by(ChannelError.id.desc()).offset(KEEP_ERRORS).limit(1))
    ).first()
    if newest is not None:
        await session.execute(
            delete(ChannelError).where(
                ChannelError.channel_id == channel_id, ChannelError.id <= newest
            )
        )


async def recent_errors(
    session: AsyncSession, channel_id: int, limit: int = 20
) -> list[ChannelError]:
    rows = await session.scalars(
        select(ChannelError)
        .where(ChannelError.channel_id == channel_id)
        .order_by(ChannelError.id.desc())
        .limit(limit)
    )
    return list(rows.all())


async def delivery_of(session: AsyncSession, message_id: int) -> Delivery | None:
    return await session.scalar(select(Delivery).where(Delivery.message_id == message_id))


async def delivery_statuses(session: AsyncSession, message_ids: list[int]) -> dict[int, str]:
    rows = await session.execute(
        select(Delivery.message_id, Delivery.status).where(Delivery.message_id.in_(message_ids))
    )
    return {message_id: status for message_id, status in rows}
