"""Configured channels (a bank's widget, a Telegram bot, ...): one row per entry point."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Integer, String
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
