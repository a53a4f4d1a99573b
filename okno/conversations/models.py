"""Conversations, messages and attachments: the heart of okno."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow

# bot: the bot answers (no person yet); waiting: for a person; assigned: an operator has
# it; closed: finished.
STATUSES = ("bot", "waiting", "assigned", "closed")
AUTHOR_KINDS = ("customer", "operator", "bot", "system")
RESOLUTIONS = ("resolved", "refused", "callback", "inactive", "spam", "bot")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_customer_channel_status", "customer_id", "channel_id", "status"),
        Index("ix_conversations_status_team", "status", "team_id"),
        # the dispatch pass reads waiting dialogs most urgent first
        Index("ix_conversations_routing", "status", "priority", "sla_due_at"),
        # At most one unfinished dialog per customer and channel, even under racing
        # first messages: the loser's insert fails and its retry joins the winner's dialog.
        Index(
            "uq_conversations_open_per_customer",
            "customer_id",
            "channel_id",
            unique=True,
            sqlite_where=text("status != 'closed'"),
            postgresql_where=text("status != 'closed'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    topic: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    resolution: Mapped[str | None] = mapped_column(String(20))
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_author_kind: Mapped[str | None] = mapped_column(String(20))
    # When the customer's oldest unanswered message came: what "waits for N min" in the
    # inbox counts from; cleared by a reply (or the close), not by a note.
    awaiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Routing (okno.routing): the queue it waits in, when it was placed there (null: not
    # yet placed), and when its channel's first-response target runs out.
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_message_preview: Mapped[str] = mapped_column(String(200), default="")
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Read marks: the newest message seq each side has seen; unread = customer messages
    # the staff have not read yet (kept as a counter so lists stay cheap).
    customer_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    staff_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    # The bank's own id of the customer, when they proved who they are in this dialog (a
    # token the bank signed, e.g. the widget on the signed-in internet bank). Self-service
    # steps that reach the bank's back-end run only when this is set.
    verified_as: Mapped[str | None] = mapped_column(String(100))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_seq", "conversation_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    # The global event sequence number of this message's message.created event.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    author_kind: Mapped[str] = mapped_column(String(20))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text, default="")
    internal: Mapped[bool] = mapped_column(Boolean, default=False)
    client_msg_id: Mapped[str | None] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200))
    # Who sent it plus their own id for it; unique, so a retried send stores one message.
    dedup_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    # What a message carries besides text: a bot step's buttons, the places found near the
    # customer, the location they shared, the button they pressed. Shown by the widget and
    # the workspace; channel adapters turn buttons into their native keyboards.
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    # Indexed: a verdict on some content applies to every attachment with it.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    # Path relative to the data directory's attachments folder (content-addressed).
    storage_path: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The antivirus verdict (okno.conversations.scanning): none (no scanner configured),
    # clean, pending (held until the scanner answers) or blocked (quarantined, with the
    # signature clamd named). Only none and clean files are ever served.
    scan_status: Mapped[str] = mapped_column(String(20), default="none", server_default="none")
    scan_signature: Mapped[str | None] = mapped_column(String(200))
    scanned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
