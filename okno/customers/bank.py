"""Calls to the bank's customer-verification service (through okno.backend, as the
self-service calls in okno.bot.actions).

The wire contract, documented for the bank's integration team in docs/security.md:

    POST <OKNO_VERIFICATION_URL>/send-code
    Authorization: Bearer <OKNO_VERIFICATION_TOKEN>
    Idempotency-Key: okno-verification-<id>-send
    {"customer_id": "<the bank's id>", "conversation_id": 42, "verification_id": 7}
    2xx -> the bank sent the customer a one-time code (by SMS or push, its choice)

    POST <OKNO_VERIFICATION_URL>/check
    Idempotency-Key: okno-verification-<id>-check-<attempt>
    {"customer_id": "...", "conversation_id": 42, "verification_id": 7,
     "method": "secret_word" | "one_time_code", "answer": "what the customer wrote"}
    200 {"verified": true | false}

Anything else — a timeout, a non-2xx status, a body without a boolean ``verified`` — is a
failure: the verification ends as failed and the operator may start another. The answer
is never logged.
"""

from __future__ import annotations

from typing import Any

import httpx

from okno import backend
from okno.settings import Settings

MAX_RESPONSE_BYTES = 16 * 1024


class BankUnavailable(Exception):
    """The verification service gave no usable answer; ``reason`` is for the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def _post(
    settings: Settings,
    path: str,
    body: dict[str, Any],
    *,
    idempotency_key: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.Response:
    if not settings.verification_url:
        raise BankUnavailable("OKNO_VERIFICATION_URL is not set")
    try:
        return await backend.post(
            settings.verification_url.rstrip("/") + path,
            body,
            token=settings.verification_token,
            timeout_seconds=settings.verification_timeout_seconds,
            idempotency_key=idempotency_key,
            user_agent="okno-verification",
            max_bytes=MAX_RESPONSE_BYTES,
            transport=transport,
        )
    except backend.BackendFailed as exc:
        raise BankUnavailable(exc.reason) from None


async def send_code(
    settings: Settings,
    *,
    bank_customer_id: str,
    conversation_id: int,
    verification_id: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """Ask the bank to send the customer a one-time code."""
    await _post(
        settings,
        "/send-code",
        {
            "customer_id": bank_customer_id,
            "conversation_id": conversation_id,
            "verification_id": verification_id,
        },
        idempotency_key=f"okno-verification-{verification_id}-send",
        transport=transport,
    )


async def check(
    settings: Settings,
    *,
    bank_customer_id: str,
    conversation_id: int,
    verification_id: int,
    attempt: int,
    method: str,
    answer: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> bool:
    """Whether ``answer`` is this customer's secret word (or the code just sent)."""
    response = await _post(
        settings,
        "/check",
        {
            "customer_id": bank_customer_id,
            "conversation_id": conversation_id,
            "verification_id": verification_id,
            "method": method,
            "answer": answer,
        },
        idempotency_key=f"okno-verification-{verification_id}-check-{attempt}",
        transport=transport,
    )
    try:
        data = backend.json_object(response)
    except backend.BackendFailed as exc:
        raise BankUnavailable(exc.reason) from None
    if not isinstance(data.get("verified"), bool):
        raise BankUnavailable("answer has no boolean 'verified'")
    return bool(data["verified"])
