"""The bot's tables: knowledge-base articles and their history, what the bot decided,
reply suggestions for operators, button flows, and the branch/ATM directory."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from okno.db.base import Base, JSONType, UTCDateTime, utcnow


class Article(Base):
    """One answer the bot can give, with the ways customers ask for it."""

    __tablename__ = "kb_articles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    questions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    answer: Mapped[str] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(100))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: all
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ArticleVersion(Base):
    """Every saved state of an article: who changed what, and when (the history)."""

    __tablename__ = "kb_article_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("kb_articles.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(20), default="edit")  # edit, import
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BotTurn(Base):
    """One thing the bot decided: what it was asked, what it did, how sure it was.

    The record the learning loop groups unanswered questions from and the bot metrics
    (closed without a person, suggestion click-through) are counted from."""

    __tablename__ = "bot_turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    channel_kind: Mapped[str | None] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    decision: Mapped[str] = mapped_column(String(20))  # answer, handoff, flow
    reason: Mapped[str] = mapped_column(String(30), default="")
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    article_id: Mapped[str | None] = mapped_column(String(100))
    flow_id: Mapped[str | None] = mapped_column(String(100))
    topic: Mapped[str | None] = mapped_column(String(100))
    # The customer saw as-you-type suggestions before sending / picked one of them.
    suggested: Mapped[bool] = mapped_column(Boolean, default=False)
    picked: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when an admin turned the question into an article (reviewed_as: its id) or
    # dismissed it (reviewed, no article).
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_as: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class ReplySuggestion(Base):
    """A reply offered to the operator for one customer message, and what they did with it."""

    __tablename__ = "reply_suggestions"
    __table_args__ = (UniqueConstraint("message_id", "rank"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    rank: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(20))  # kb, history
    ref: Mapped[str] = mapped_column(String(100))  # article id or earlier message id
    text: Mapped[str] = mapped_column(Text)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    outcome: Mapped[str | None] = mapped_column(String(20))  # accepted, edited, rejected
    sent_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Flow(Base):
    """A button flow (decision tree) the bank edits: steps keyed by name, the first one
    started when a customer asks one of its questions or presses its button."""

    __tablename__ = "bot_flows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    questions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    # Articles whose questions start this flow instead of the article's answer (so a flow
    # need not repeat an article's questions and compete with it).
    articles: Mapped[list[str]] = mapped_column(JSONType, default=list)
    topic: Mapped[str | None] = mapped_column(String(100))
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: all
    start: Mapped[str] = mapped_column(String(100))
    steps: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class FlowVersion(Base):
    """Every saved state of a flow (the history the editor shows)."""

    __tablename__ = "bot_flow_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("bot_flows.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    changed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    source: Mapped[str] = mapped_column(String(20), default="edit")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FlowState(Base):
    """Where a dialog is inside a flow: the step waiting for the customer's answer."""

    __tablename__ = "bot_flow_states"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    flow_id: Mapped[int] = mapped_column(ForeignKey("bot_flows.id"))
    step: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Place(Base):
    """A branch or an ATM from the bank's directory (imported from CSV)."""

    __tablename__ = "bot_places"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)  # branch, atm
    name: Mapped[str] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(100), default="")
    address: Mapped[str] = mapped_column(String(500))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    hours: Mapped[str] = mapped_column(String(500), default="")
    services: Mapped[list[str]] = mapped_column(JSONType, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TemplateDecision(Base):
    """An often-reused operator answer the admin made a saved reply of, or dismissed: it is
    not offered as a template again (keyed by a hash of its normalised text)."""

    __tablename__ = "bot_template_decisions"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))  # accepted, dismissed
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
