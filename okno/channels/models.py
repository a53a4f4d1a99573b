"""Configured channels (a bank's widget, a Telegram bot, ...): one row per entry point."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow

CHANNEL_KINDS = (
    "widget",
    "api",
    "telegram",
    "viber",
    "vk",
    "whatsapp",
    "facebook",
    "apple",
    "email",
    "phone",
)


class Channel(Base):
    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # Public key of a widget (what the <script> tag names); other kinds leave it empty.
    key: Mapped[str | None] = mapped_column(String(100), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where fetching left off, for channels okno polls (Telegram's update offset, the last
    # IMAP UID seen); kept apart from the config so a poll never rewrites the settings.
    cursor: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Delivery(Base):
    """One message okno sends to a messenger: the outbox row the send job works through,
    and what the platform said of it since (sent, delivered, read, failed).

    Rows of one dialog go out in message order; ``lease_until`` marks the one being sent
    now, so two workers never send the same message at once.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_conversation_status", "conversation_id", "status"),
        Index("ix_deliveries_channel_external", "channel_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    # queued -> sending -> sent -> delivered -> read; or failed (given up, staff are told);
    # or waiting (until the customer writes again: a platform's reply window is closed)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    external_id: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class EarlyStatus(Base):
    """A platform's report on a message id okno has not recorded yet.

    A platform may report "delivered" or "failed" for a message in the moment it accepts
    it, before okno's send job has stored the id the platform answered with. Such a report
    is kept here and applied when the send is recorded, so it is not lost; reports nobody
    claims (messages sent by another system on the same number) are dropped after a while.
    """

    __tablename__ = "early_statuses"
    __table_args__ = (Index("ix_early_statuses_channel_external", "channel_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    wait_for_customer: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ChannelError(Base):
    """A recent problem of a channel an admin should see: a refused webhook, a send the
    platform rejected, a failed check. Only the newest ones per channel are kept."""

    __tablename__ = "channel_errors"
    __table_args__ = (Index("ix_channel_errors_channel", "channel_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    kind: Mapped[str] = mapped_column(String(20))  # webhook | send | check | poll
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
