"""The web widget channel: visitor sessions and their tokens.

A visitor id is a random secret the widget keeps in the browser's localStorage; presenting
it again (after the session token expired) returns the same customer and their history.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.channels.models import Channel
from okno.conversations import service as conversations
from okno.customers.models import CustomerIdentity
from okno.customers.service import (
    current_customer,
    get_or_create_identity,
    get_or_link_identity,
    link_verified_phone,
)
from okno.errors import BadRequest, Forbidden, Unauthorized
from okno.security import tokens


@dataclass(frozen=True)
class WidgetSession:
    customer_id: int
    channel_id: int
    visitor_id: str
    bank_id: str | None = None  # the bank vouched for who this is (a signed customer token)

    @property
    def external_id(self) -> str:
        """The customer's id in this channel: the bank's id when verified, else the
        browser's visitor id."""
        return f"bank:{self.bank_id}" if self.bank_id else self.visitor_id


MAX_CUSTOMER_TOKEN_HOURS = 24
# Channels where the bank itself vouches for who the customer is (a token it signed): a
# customer verified in one of them is the same person in the others.
BANK_VERIFIED_KINDS = ("widget", "api")


@dataclass(frozen=True)
class BankCustomer:
    """Who the bank's signed token says the customer is, and until when it says so."""

    bank_id: str
    expires_at: datetime
    # The customer's phone number, when the bank puts it in the token (the OpenID claim
    # ``phone_number``): the bank vouches for it, so a messenger customer who shared the
    # same verified number is the same person (`customers.service.link_verified_phone`).
    phone: str | None = None


def verify_bank_token(secret: str, token: str) -> BankCustomer:
    """Check a customer token the bank signed (HS256 with ``secret``, ``sub`` = the bank's
    customer id, ``exp`` at most 24 hours after ``iat``); Unauthorized saying why not."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized(
            "the customer token has expired", code="customer_token_expired"
        ) from None
    except jwt.InvalidTokenError:
        raise Unauthorized(
            "the customer token is not valid", code="customer_token_invalid"
        ) from None
    bank_id = str(claims["sub"]).strip()
    issued = claims.get("iat")
    if not bank_id or len(bank_id) > 100 or not isinstance(claims["exp"], int | float):
        raise Unauthorized("the customer token is not valid", code="customer_token_invalid")
    if isinstance(issued, int | float) and claims["exp"] - issued > MAX_CUSTOMER_TOKEN_HOURS * 3600:
        raise Unauthorized(
            f"the customer token may live at most {MAX_CUSTOMER_TOKEN_HOURS} hours",
            code="customer_token_invalid",
        )
    phone = claims.get("phone_number") or claims.get("phone")
    if phone is not None and (not isinstance(phone, str) or len(phone) > 32):
        raise Unauthorized(
            "the customer token's phone_number is not valid", code="customer_token_invalid"
        )
    return BankCustomer(bank_id, datetime.fromtimestamp(claims["exp"], tz=UTC), phone or None)


def verify_customer_token(channel: Channel, token: str) -> BankCustomer:
    """Who the bank says the customer is, from a token it signed for this widget."""
    secret = str((channel.config or {}).get("identity_secret") or "")
    if not secret:
        raise BadRequest(
            "this widget does not accept customer tokens (no identity secret is set)",
            code="customer_token_not_accepted",
        )
    return verify_bank_token(secret, token)


async def bank_identity(
    session: AsyncSession,
    *,
    channel_id: int,
    bank_id: str,
    display_name: str = "",
    phone: str | None = None,
    signing_key: str = "",
) -> CustomerIdentity:
    """The identity of the bank's customer ``bank_id`` in this channel, joined on first
    contact to the customer the bank already vouched for in its other widgets or its app,
    and to a messenger customer who shared the phone number the bank vouches for."""
    linked = await session.scalars(
        select(Channel.id).where(Channel.kind.in_(BANK_VERIFIED_KINDS), Channel.id != channel_id)
    )
    identity = await get_or_link_identity(
        session,
        channel_id=channel_id,
        external_id=f"bank:{bank_id}",
        linked_channel_ids=list(linked.all()),
        display_name=display_name,
    )
    if phone and signing_key:
        await link_verified_phone(
            session, customer_id=identity.customer_id, phone=phone, signing_key=signing_key
        )
        await session.refresh(identity)  # a merge may have moved it to the older customer
    return identity


def issue_session_token(signing_key: str, ws: WidgetSession, ttl: timedelta) -> str:
    """The bearer token the widget (or the bank's app) presents for this session."""
    claims: dict[str, object] = {"ch": ws.channel_id, "vid": ws.visitor_id}
    if ws.bank_id:
        claims["bank"] = ws.bank_id
    return tokens.issue(
        signing_key, typ=tokens.WIDGET, subject=str(ws.customer_id), ttl=ttl, **claims
    )


def new_visitor_id() -> str:
    return "v_" + secrets.token_urlsafe(24)


def check_visitor_id(visitor_id: str) -> str:
    if (
        not (8 <= len(visitor_id) <= 100)
        or not visitor_id.replace("_", "").replace("-", "").isalnum()
    ):
        raise BadRequest(
            "visitor.id must be 8-100 letters, digits, '-' or '_'", code="invalid_visitor_id"
        )
    return visitor_id


async def start_session(
    session: AsyncSession,
    *,
    widget_key: str,
    visitor_id: str | None,
    visitor_name: str,
    origin: str | None,
    signing_key: str,
    ttl_days: int,
    customer_token: str | None = None,
) -> tuple[str, WidgetSession, Channel, int | None]:
    """Open (or resume) a visitor's session: (token, session, channel, open dialog id)."""
    channel = await channels.get_widget(session, key=widget_key)
    if not channels.origin_allowed(channel, origin):
        raise Forbidden("this site may not use the widget", code="origin_not_allowed")
    visitor = check_visitor_id(visitor_id) if visitor_id else new_visitor_id()
    bank = verify_customer_token(channel, customer_token) if customer_token else None
    bank_id = bank.bank_id if bank else None
    if bank is not None:
        identity = await bank_identity(
            session,
            channel_id=channel.id,
            bank_id=bank.bank_id,
            display_name=visitor_name,
            phone=bank.phone,
            signing_key=signing_key,
        )
    else:
        identity = await get_or_create_identity(
            session, channel_id=channel.id, external_id=visitor, display_name=visitor_name
        )
    ws = WidgetSession(
        customer_id=identity.customer_id, channel_id=channel.id, visitor_id=visitor, bank_id=bank_id
    )
    token = issue_session_token(
        signing_key,
        ws,
        # a verified session lives no longer than the bank's own sign-in would
        timedelta(hours=MAX_CUSTOMER_TOKEN_HOURS) if bank_id else timedelta(days=ttl_days),
    )
    current = await conversations.open_conversation_of(
        session, customer_id=identity.customer_id, channel_id=channel.id
    )
    return token, ws, channel, current.id if current else None


def verify_session(signing_key: str, token: str) -> WidgetSession:
    """The session a widget token stands for; Unauthorized when expired or forged."""
    claims = tokens.verify(signing_key, token, typ=tokens.WIDGET)
    try:
        return WidgetSession(
            customer_id=int(claims["sub"]),
            channel_id=int(claims["ch"]),
            visitor_id=str(claims["vid"]),
            bank_id=str(claims["bank"]) if claims.get("bank") else None,
        )
    except (KeyError, TypeError, ValueError):
        raise Unauthorized("the token is not valid", code="token_invalid") from None


async def follow_merges(session: AsyncSession, ws: WidgetSession) -> WidgetSession:
    """``ws`` naming the customer its visitor is part of now (merges move a visitor's
    identity and dialogs to another customer; the session token keeps the old id)."""
    current = await current_customer(session, ws.customer_id)
    if current is None or current.id == ws.customer_id:
        return ws
    return replace(ws, customer_id=current.id)


async def channel_of(
    session: AsyncSession, ws: WidgetSession, cache: channels.ChannelCache | None = None
) -> Channel:
    """The session's widget channel; Unauthorized when it was switched off."""
    if cache is not None:
        channel = await cache.get(session, ws.channel_id)
    else:
        channel = await channels.get_channel(session, ws.channel_id)
    if channel is None or not channel.is_active:
        raise Unauthorized("this widget was switched off", code="widget_disabled")
    return channel
