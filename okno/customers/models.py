"""Customers and their identities in each channel (chatwoot's contact and contact-inbox)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A keyed hash of a phone number a platform or the bank vouched is this customer's own
    # (never the number itself): two customers with the same one are one person.
    verified_phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    # Set when this customer was merged into another; their identities moved there.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))


class CustomerNote(Base):
    """A staff note on the customer card (never shown to the customer)."""

    __tablename__ = "customer_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CustomerIdentity(Base):
    """A customer's id in one channel; unique per channel, so a retry finds the same person."""

    __tablename__ = "customer_identities"
    __table_args__ = (UniqueConstraint("channel_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CustomerVerification(Base):
    """One check that the person in a dialog is the bank's customer they claim to be: an
    operator starts it, the customer answers in the chat (a secret word, or a one-time code
    the bank's back-end sent them), the back-end says yes or no. While ``verified_until``
    is ahead, those allowed may unmask personal data and run sensitive actions in this
    dialog. The answer itself is held only until it is checked, then erased."""

    __tablename__ = "customer_verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    started_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    method: Mapped[str] = mapped_column(String(20))  # secret_word | one_time_code
    bank_customer_id: Mapped[str] = mapped_column(String(100))
    # awaiting_answer -> checking -> verified | failed (| awaiting_answer after a wrong
    # answer while attempts remain); cancelled when the operator starts over
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    answer: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    verified_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
