"""Customer verification in a dialog: the operator starts it, the customer answers in the
chat, the bank's back-end decides, and the dialog stays verified for a while.

    start (operator)            -> awaiting_answer   [one_time_code: job asks the bank to send it]
    the customer's next message -> checking          (the text is kept only on this row; the
                                                      stored message says "answer hidden")
    job: the bank says yes      -> verified until now + OKNO_VERIFICATION_MINUTES
    job: the bank says no       -> awaiting_answer again, or failed after the last attempt
    job: the bank cannot answer -> failed (reason backend_unavailable)
    a new start                 -> the previous unfinished one is cancelled

The bank is called from jobs after commit (``prepare_*`` runs the call outside the write
transaction); the outcome is written by the job's handler, which re-reads the row so a
verification the operator replaced meanwhile is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.conversations.messaging import add_message
from okno.conversations.models import Conversation
from okno.customers import bank
from okno.customers.models import Customer, CustomerVerification
from okno.db.base import utcnow
from okno.db.session import Database
from okno.errors import Conflict, Forbidden, Unprocessable
from okno.events.service import PendingEvent, record_event
from okno.jobs.service import URGENT, enqueue
from okno.jobs.worker import JobContext
from okno.operators.models import User
from okno.settings import Settings

log = structlog.get_logger("okno.verification")

METHODS = ("secret_word", "one_time_code")
SEND_CODE = "verification.send_code"
CHECK = "verification.check"
UNFINISHED = ("awaiting_answer", "checking")
ANSWER_PLACEHOLDER = "•••••• (ответ для проверки скрыт)"
ASK = {
    "secret_word": "Чтобы оператор мог продолжить, напишите, пожалуйста, ваше кодовое слово "
    "следующим сообщением.",
    "one_time_code": "Мы отправили вам одноразовый код. Напишите его, пожалуйста, следующим "
    "сообщением.",
}
PASSED = "Спасибо, проверка пройдена."
RETRY = "Ответ не подошёл. Попробуйте, пожалуйста, ещё раз."
FAILED = "Пройти проверку не удалось. Оператор продолжит разговор."
UNAVAILABLE = "Сейчас проверку выполнить не удалось. Оператор продолжит разговор."


@dataclass(frozen=True)
class State:
    """The dialog's verification as the operator's screen needs it."""

    row: CustomerVerification | None
    verified: bool
    attempts_left: int


async def latest(session: AsyncSession, conversation_id: int) -> CustomerVerification | None:
    """The newest verification of the dialog, or None."""
    rows = await session.scalars(
        select(CustomerVerification)
        .where(CustomerVerification.conversation_id == conversation_id)
        .order_by(CustomerVerification.id.desc())
        .limit(1)
    )
    return rows.first()


def is_verified(row: CustomerVerification | None, now: datetime | None = None) -> bool:
    return (
        row is not None
        and row.status == "verified"
        and row.verified_until is not None
        and row.verified_until > (now or utcnow())
    )


async def state_of(session: AsyncSession, conversation_id: int, settings: Settings) -> State:
    row = await latest(session, conversation_id)
    left = settings.verification_attempts - (row.attempts if row else 0)
    return State(row=row, verified=is_verified(row), attempts_left=max(0, left))


async def require_verified(session: AsyncSession, conversation_id: int) -> CustomerVerification:
    """The dialog's current verification; 403 ``verification_required`` when the customer
    has not been verified here within the last OKNO_VERIFICATION_MINUTES. Sensitive actions
    (unmasking, operator-started self-service) call this first."""
    row = await latest(session, conversation_id)
    if not is_verified(row):
        raise Forbidden("verify the customer in this dialog first", code="verification_required")
    assert row is not None
    return row


def _bank_id(conversation: Conversation, customer: Customer | None, given: str | None) -> str:
    if given and given.strip():
        return given.strip()
    if conversation.verified_as:
        return conversation.verified_as
    attrs = (customer.attributes or {}) if customer else {}
    value = attrs.get("bank_customer_id")
    if isinstance(value, str | int) and str(value).strip():
        return str(value).strip()
    raise Unprocessable(
        "okno does not know this customer's id at the bank: give bank_customer_id",
        code="bank_customer_unknown",
    )


def _event(
    session: AsyncSession,
    conversation: Conversation,
    row: CustomerVerification,
    settings: Settings,
) -> None:
    """Staff screens showing the dialog learn the new state (the customer never does)."""
    left = max(0, settings.verification_attempts - row.attempts)
    record_event(
        session,
        PendingEvent(
            type="verification.updated",
            conversation_id=conversation.id,
            payload={"verification": shape(row, attempts_left=left)},
            customer_id=conversation.customer_id,
            customer_visible=False,
            team_id=conversation.team_id,
            assignee_id=conversation.assignee_id,
            assignee_only=conversation.assignee_id is not None,
        ),
    )


def shape(row: CustomerVerification, *, attempts_left: int) -> dict[str, Any]:
    """The JSON shape of a verification (never the answer)."""
    return {
        "id": row.id,
        "conversation_id": row.conversation_id,
        "method": row.method,
        "status": row.status,
        "verified": is_verified(row),
        "attempts_left": attempts_left,
        "reason": row.reason,
        "started_by": row.started_by,
        "started_at": row.started_at.isoformat(),
        "verified_until": row.verified_until.isoformat() if row.verified_until else None,
    }


async def start(
    session: AsyncSession,
    *,
    conversation: Conversation,
    actor: User,
    method: str,
    settings: Settings,
    bank_customer_id: str | None = None,
) -> CustomerVerification:
    """Begin a verification (cancelling an unfinished one) and ask the customer to answer.

    Raises 409 ``verification_not_configured`` without OKNO_VERIFICATION_URL, 409
    ``dialog_closed`` on a closed dialog, 422 ``bank_customer_unknown``."""
    if not settings.verification_url:
        raise Conflict(
            "customer verification is not configured (OKNO_VERIFICATION_URL)",
            code="verification_not_configured",
        )
    if conversation.status == "closed":
        raise Conflict("the dialog is closed", code="dialog_closed")
    customer = await session.get(Customer, conversation.customer_id)
    bank_id = _bank_id(conversation, customer, bank_customer_id)
    now = utcnow()
    previous = await latest(session, conversation.id)
    if previous is not None and previous.status in UNFINISHED:
        previous.status = "cancelled"
        previous.answer = None
        previous.finished_at = now
    row = CustomerVerification(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        started_by=actor.id,
        method=method,
        bank_customer_id=bank_id,
        status="awaiting_answer",
        attempts=0,
        started_at=now,
    )
    session.add(row)
    await session.flush()
    if method == "one_time_code":
        await enqueue(
            session,
            kind=SEND_CODE,
            payload={"verification_id": row.id},
            queue="outbound",
            priority=URGENT,
            dedup_key=f"{SEND_CODE}:{row.id}",
            max_attempts=1,
        )
    await add_message(session, conversation, author_kind="system", text=ASK[method])
    _event(session, conversation, row, settings)
    log.info(
        "verification.started",
        verification_id=row.id,
        conversation_id=conversation.id,
        actor_id=actor.id,
        method=method,
    )
    return row


async def capture_answer(session: AsyncSession, conversation: Conversation, text: str) -> str:
    """The customer's message as it is to be stored: while a verification waits for their
    answer, the text is taken as the answer (held on the verification row until the bank
    checks it) and the stored message only says an answer was given."""
    if not text:
        return text
    row = await latest(session, conversation.id)
    if row is None or row.status != "awaiting_answer":
        return text
    row.status = "checking"
    row.answer = text[:200]
    row.attempts = (row.attempts or 0) + 1
    await enqueue(
        session,
        kind=CHECK,
        payload={"verification_id": row.id, "attempt": row.attempts},
        queue="outbound",
        priority=URGENT,
        dedup_key=f"{CHECK}:{row.id}:{row.attempts}",
        max_attempts=1,
    )
    return ANSWER_PLACEHOLDER


async def _row_and_dialog(
    session: AsyncSession, verification_id: int
) -> tuple[CustomerVerification, Conversation] | None:
    row = await session.get(CustomerVerification, verification_id)
    if row is None:
        return None
    conversation = await session.get(Conversation, row.conversation_id)
    return (row, conversation) if conversation is not None else None


async def prepare_send_code(
    db: Database, payload: dict[str, Any], ctx: JobContext
) -> dict[str, Any]:
    """Ask the bank to send the code (outside the job's write transaction)."""
    async with db.read() as session:
        row = await session.get(CustomerVerification, int(payload["verification_id"]))
    if row is None or row.status not in UNFINISHED:
        return {"skip": True}
    try:
        await bank.send_code(
            ctx.settings,
            bank_customer_id=row.bank_customer_id,
            conversation_id=row.conversation_id,
            verification_id=row.id,
        )
    except bank.BankUnavailable as exc:
        log.warning("verification.send_failed", verification_id=row.id, reason=exc.reason)
        return {"ok": False}
    return {"ok": True}


async def send_code_job(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """A code that could not be sent ends the verification as failed."""
    prepared = ctx.prepared or {}
    if prepared.get("skip") or prepared.get("ok"):
        return
    found = await _row_and_dialog(session, int(payload["verification_id"]))
    if found is None:
        return
    row, conversation = found
    if row.status not in UNFINISHED:
        return
    await _finish(session, row, conversation, ctx.settings, "failed", "code_not_sent")


async def prepare_check(db: Database, payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Ask the bank whether the answer is right (outside the write transaction)."""
    async with db.read() as session:
        row = await session.get(CustomerVerification, int(payload["verification_id"]))
    if (
        row is None
        or row.status != "checking"
        or row.attempts != int(payload["attempt"])
        or row.answer is None
    ):
        return {"skip": True}
    try:
        ok = await bank.check(
            ctx.settings,
            bank_customer_id=row.bank_customer_id,
            conversation_id=row.conversation_id,
            verification_id=row.id,
            attempt=row.attempts,
            method=row.method,
            answer=row.answer,
        )
    except bank.BankUnavailable as exc:
        log.warning("verification.check_failed", verification_id=row.id, reason=exc.reason)
        return {"error": True}
    return {"verified": ok}


async def check_job(session: AsyncSession, payload: dict[str, Any], ctx: JobContext) -> None:
    """Write the bank's decision, erase the answer, tell the customer and the staff."""
    prepared = ctx.prepared or {}
    if prepared.get("skip"):
        return
    found = await _row_and_dialog(session, int(payload["verification_id"]))
    if found is None:
        return
    row, conversation = found
    if row.status != "checking" or row.attempts != int(payload["attempt"]):
        return  # replaced by a new verification while the bank was asked
    row.answer = None
    settings = ctx.settings
    if prepared.get("error"):
        await _finish(session, row, conversation, settings, "failed", "backend_unavailable")
    elif prepared.get("verified"):
        row.verified_until = utcnow() + timedelta(minutes=settings.verification_minutes)
        await _finish(session, row, conversation, settings, "verified", None)
    elif row.attempts >= settings.verification_attempts:
        await _finish(session, row, conversation, settings, "failed", "wrong_answer")
    else:
        row.status = "awaiting_answer"
        row.reason = "wrong_answer"
        await add_message(session, conversation, author_kind="system", text=RETRY)
        _event(session, conversation, row, settings)
        log.info("verification.wrong_answer", verification_id=row.id, attempt=row.attempts)


async def _finish(
    session: AsyncSession,
    row: CustomerVerification,
    conversation: Conversation,
    settings: Settings,
    status: str,
    reason: str | None,
) -> None:
    row.status = status
    row.reason = reason
    row.answer = None
    row.finished_at = utcnow()
    text = (
        PASSED
        if status == "verified"
        else UNAVAILABLE
        if reason
        in (
            "backend_unavailable",
            "code_not_sent",
        )
        else FAILED
    )
    if conversation.status != "closed":
        await add_message(session, conversation, author_kind="system", text=text)
    _event(session, conversation, row, settings)
    log.info(
        "verification.finished",
        verification_id=row.id,
        conversation_id=conversation.id,
        status=status,
        reason=reason,
    )
