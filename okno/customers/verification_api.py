"""Verifying the customer in a dialog, and unmasking a message once they are verified."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations import service as conversations
from okno.conversations.models import Attachment, Conversation, Message
from okno.customers import verification
from okno.customers.schemas import (
    UnmaskedAttachment,
    UnmaskedOut,
    VerificationIn,
    VerificationOut,
    VerificationStateOut,
)
from okno.errors import Forbidden, NotFound
from okno.http import CurrentUser, State, require, write
from okno.inputs import IdPath
from okno.operators.models import User
from okno.security import audit, permissions, pii_access

log = structlog.get_logger("okno.verification")
router = APIRouter(prefix="/api/v1/conversations", tags=["verification"])
Reader = Annotated[User, require("conversations.read_team")]
Replier = Annotated[User, require("conversations.reply")]


async def _dialog(session: AsyncSession, conversation_id: int, user: CurrentUser) -> Conversation:
    try:
        return await conversations.access_conversation(session, conversation_id, user)
    except Forbidden:
        log.warning("access.denied", user_id=user.id, conversation_id=conversation_id)
        raise


@router.get("/{conversation_id}/verification", response_model=VerificationStateOut)
async def get_verification(
    conversation_id: IdPath, user: Reader, state: State
) -> VerificationStateOut:
    """Whether the customer in this dialog is verified now, the latest verification's
    state, and whether you may unmask personal data here."""
    async with state.db.read() as session:
        await _dialog(session, conversation_id, user)
        found = await verification.state_of(session, conversation_id, state.settings)
    current = (
        VerificationOut.model_validate(
            verification.shape(found.row, attempts_left=found.attempts_left)
        )
        if found.row
        else None
    )
    return VerificationStateOut(
        available=bool(state.settings.verification_url),
        verified=found.verified,
        may_unmask=pii_access.may_unmask(user),
        current=current,
    )


@router.post("/{conversation_id}/verification", response_model=VerificationOut, status_code=201)
async def start_verification(
    conversation_id: IdPath, body: VerificationIn, user: Replier, state: State
) -> VerificationOut:
    """Start verifying the customer: okno asks them in the chat for their secret word, or
    (``one_time_code``) asks the bank to send them a code and them to type it. Their next
    message is the answer: the bank checks it and it is never stored or shown. Starting
    again cancels an unfinished verification. 409 ``verification_not_configured``, 409
    ``dialog_closed``, 422 ``bank_customer_unknown``."""

    async def run(session: AsyncSession) -> VerificationOut:
        conversation = await conversations.access_conversation(
            session, conversation_id, user, lock=True
        )
        row = await verification.start(
            session,
            conversation=conversation,
            actor=user,
            method=body.method,
            settings=state.settings,
            bank_customer_id=body.bank_customer_id,
        )
        return VerificationOut.model_validate(
            verification.shape(row, attempts_left=state.settings.verification_attempts)
        )

    async with state.db.read() as session:
        await _dialog(session, conversation_id, user)
    return await write(state, run)


@router.post("/{conversation_id}/messages/{message_id}/unmask", response_model=UnmaskedOut)
@permissions.declare(pii_access.UNMASK)  # checked below, so a refusal is audited too
async def unmask(
    conversation_id: IdPath,
    message_id: IdPath,
    request: Request,
    user: CurrentUser,
    state: State,
) -> UnmaskedOut:
    """The message as the customer wrote it, personal data included. Needs a role with the
    ``pii.unmask`` permission (403 ``forbidden_role``, checked first) and a customer verified
    in this dialog within the last OKNO_VERIFICATION_MINUTES (403
    ``verification_required``). Every unmasking, and every refused attempt, is written to
    the audit log."""
    actor = audit.actor_of(user, request)

    async def refuse(refusal: Forbidden, customer_id: int | None, check: int | None) -> None:
        await state.db.write(
            lambda s: pii_access.record_unmask(
                s,
                actor=actor,
                conversation_id=conversation_id,
                customer_id=customer_id,
                message_id=message_id,
                verification_id=check,
                outcome="denied",
            )
        )
        raise refusal

    if not pii_access.may_unmask(user):
        log.warning("access.denied", user_id=user.id, role=user.role, permission=pii_access.UNMASK)
        await refuse(
            Forbidden(
                "your role may not see unmasked personal data",
                code="forbidden_role",
                permission=pii_access.UNMASK,
            ),
            None,
            None,
        )
    async with state.db.read() as session:
        conversation = await _dialog(session, conversation_id, user)
        message = await session.get(Message, message_id)
        if message is None or message.conversation_id != conversation_id:
            raise NotFound(f"message {message_id} is not in this dialog", code="not_found")
        current = await verification.latest(session, conversation_id)
    if not verification.is_verified(current):
        await refuse(
            Forbidden("verify the customer in this dialog first", code="verification_required"),
            conversation.customer_id,
            current.id if current else None,
        )

    async def run(session: AsyncSession) -> UnmaskedOut:
        row = await session.get(Message, message_id)
        assert row is not None
        check = await verification.require_verified(session, conversation_id)
        files = await session.scalars(
            select(Attachment).where(Attachment.message_id == row.id).order_by(Attachment.id)
        )
        await pii_access.record_unmask(
            session,
            actor=actor,
            conversation_id=conversation_id,
            customer_id=conversation.customer_id,
            message_id=row.id,
            verification_id=check.id,
        )
        return UnmaskedOut(
            message_id=row.id,
            text=row.text,
            attachments=[UnmaskedAttachment(id=a.id, filename=a.filename) for a in files],
        )

    return await write(state, run)
