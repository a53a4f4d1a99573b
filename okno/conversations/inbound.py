"""What customers send, from any channel, normalised into one shape and stored once.

A retried send (same client_msg_id, or the same external message id from a messenger)
finds the stored message and returns it: the customer sees it once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from okno.bot import triggers as bot_triggers
from okno.channels.models import Channel
from okno.conversations import service
from okno.conversations.attachments import StoredFile
from okno.conversations.messaging import add_message, record_conversation_event, record_read
from okno.conversations.models import Conversation, Message
from okno.customers import verification
from okno.customers.service import get_or_create_identity
from okno.db.base import utcnow
from okno.errors import BadRequest, Conflict, NotFound
from okno.events.service import last_seq
from okno.routing.triggers import request_dispatch


@dataclass
class Inbound:
    """One customer message as every channel adapter hands it over."""

    channel: Channel
    external_customer_id: str
    text: str = ""
    customer_name: str = ""
    client_msg_id: str | None = None
    external_id: str | None = None
    files: list[StoredFile] = field(default_factory=list)
    # What the bot needs besides the text (channel adapters fill what their channel has):
    article_id: str | None = None  # a question the customer picked from the suggestions
    suggested: bool = False  # as-you-type suggestions were on screen when they sent it
    button: str | None = None  # the payload of a flow button the customer pressed
    location: tuple[float, float] | None = None  # a shared location (latitude, longitude)
    # The bank's id of the customer when the channel proved it (a token the bank signed).
    verified_as: str | None = None
    # Kept with the message for whoever reads or answers it: where to reply (an e-mail's
    # Message-ID and subject), a contact card the customer sent, files that could not be
    # taken (name and reason).
    extra_meta: dict[str, object] = field(default_factory=dict)

    def meta(self) -> dict[str, object] | None:
        """What the message carries for people reading it later (the shared location, the
        button pressed)."""
        meta: dict[str, object] = dict(self.extra_meta)
        if self.location:
            meta["location"] = {"lat": self.location[0], "lon": self.location[1]}
        if self.button:
            meta["button"] = self.button
        return meta or None

    @property
    def dedup_key(self) -> str | None:
        if self.external_id:
            return f"x:{self.channel.id}:{self.external_id}"
        if self.client_msg_id:
            return f"c:{self.channel.id}:{self.external_customer_id}:{self.client_msg_id}"
        return None


async def receive(session: AsyncSession, inbound: Inbound) -> tuple[Message, bool]:
    """Store the message (or find the earlier copy); returns (message, created).

    Opens a new conversation when the customer has no unfinished one in this channel.
    Racing first messages of one customer collide on unique indexes and the caller retries.
    """
    if not inbound.text and not inbound.files:
        raise BadRequest("the message is empty", code="empty_message")
    key = inbound.dedup_key
    # Optimistic: a new message is the common case, so look for an earlier copy only on a
    # retry. A duplicate fails the unique dedup_key on insert; the caller's retry (see
    # okno.http.write) then lands here with attempt > 0 and finds it.
    if key and session.info.get("attempt", 0) > 0:
        earlier = await service.find_by_dedup_key(session, key)
        if earlier is not None:
            return earlier, False
    found = await service.customer_and_open_dialog(
        session, channel_id=inbound.channel.id, external_id=inbound.external_customer_id
    )
    if found is None or (inbound.customer_name and inbound.customer_name != found[1]):
        identity = await get_or_create_identity(
            session,
            channel_id=inbound.channel.id,
            external_id=inbound.external_customer_id,
            display_name=inbound.customer_name,
        )
        found = await service.customer_and_open_dialog(
            session, channel_id=inbound.channel.id, external_id=inbound.external_customer_id
        )
        assert found is not None and found[0] == identity.customer_id
    customer_id, customer_name, conversation = found
    if conversation is not None and session.get_bind().dialect.name == "postgresql":
        # Lock the dialog as staff actions do, and re-read it: a close or transfer that
        # committed while we waited must not leave this message in a closed dialog or
        # addressed to the previous operator. (SQLite writers take turns already.)
        conversation = await session.get(
            Conversation, conversation.id, with_for_update=True, populate_existing=True
        )
        if conversation is not None and conversation.status == "closed":
            conversation = None
    if conversation is None:
        with_bot = bot_triggers.enabled(inbound.channel.config)
        conversation = Conversation(
            customer_id=customer_id,
            channel_id=inbound.channel.id,
            status="bot" if with_bot else "waiting",
            created_at=utcnow(),
        )
        session.add(conversation)
        await session.flush()
        await record_conversation_event(
            session, conversation, "conversation.created", customer_visible=False
        )
        if not with_bot:
            await request_dispatch(session)  # routing places and assigns it
    if inbound.verified_as and conversation.verified_as != inbound.verified_as:
        conversation.verified_as = inbound.verified_as
        conversation.verified_at = utcnow()
    text = inbound.text
    if not inbound.files:
        # the answer to a verification is checked by the bank, never stored or shown
        text = await verification.capture_answer(session, conversation, text)
    message = await add_message(
        session,
        conversation,
        author_name=customer_name,
        author_kind="customer",
        text=text,
        client_msg_id=inbound.client_msg_id,
        external_id=inbound.external_id,
        dedup_key=key,
        files=inbound.files,
        meta=inbound.meta(),
    )
    if conversation.status == "bot":
        await bot_triggers.request_reply(
            session,
            message_id=message.id,
            article_id=inbound.article_id,
            suggested=inbound.suggested,
            button=inbound.button,
            location=inbound.location,
        )
    return message, True


async def rate(
    session: AsyncSession,
    *,
    customer_id: int,
    channel_id: int,
    conversation_id: int,
    score: int,
    comment: str | None,
) -> Conversation:
    """Store the customer's 1-5 rating of a closed dialog (once)."""
    conversation = await service.get_conversation(session, conversation_id)
    if (
        conversation is None
        or conversation.customer_id != customer_id
        or conversation.channel_id != channel_id
    ):
        raise NotFound(f"conversation {conversation_id} does not exist", code="not_found")
    if conversation.status != "closed":
        raise Conflict("a dialog can be rated after it is closed", code="not_closed")
    if conversation.rating is not None:
        raise Conflict("this dialog is already rated", code="already_rated")
    conversation.rating = score
    conversation.rating_comment = (comment or "").strip() or None
    await record_conversation_event(
        session, conversation, "conversation.rated", customer_visible=False
    )
    return conversation


async def mark_read_by_customer(
    session: AsyncSession, *, customer_id: int, channel_id: int, up_to_seq: int
) -> Conversation | None:
    """The customer has seen their dialog up to ``up_to_seq`` (staff see "read")."""
    conversation = await service.open_conversation_of(
        session, customer_id=customer_id, channel_id=channel_id
    )
    up_to_seq = min(up_to_seq, await last_seq(session))  # no mark beyond what exists
    if conversation is None or up_to_seq <= (conversation.customer_read_seq or 0):
        return conversation
    conversation.customer_read_seq = up_to_seq
    await record_read(session, conversation, reader="customer", up_to_seq=up_to_seq)
    return conversation
