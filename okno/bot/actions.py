"""Self-service calls to the bank's back-end ("balance", "card status") from a flow step.

The wire contract, documented for the bank's integration team in docs/flows.md:

    POST <OKNO_BOT_ACTIONS_URL>/<action>
    Authorization: Bearer <OKNO_BOT_ACTIONS_TOKEN>
    Idempotency-Key: okno-<conversation>-<message>-<step>
    {"action": "balance", "customer_id": "<the bank's id>", "conversation_id": 42,
     "params": {...the step's params...}}

    200 {"balance": "12 345,67", ...}  -> the step's text is filled from these fields

Anything else — no answer within the timeout, a non-2xx status, a body that is not a JSON
object, a field the text needs missing — is a failure, and the customer is told politely
and handed to a person. The call is made only for a customer the bank verified.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import structlog

from okno import backend
from okno.settings import Settings

log = structlog.get_logger("okno.bot")
MAX_RESPONSE_BYTES = 64 * 1024
MAX_VALUE_CHARS = 500
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ActionFailed(Exception):
    """The back-end could not give an answer; `reason` goes to the log, never to the customer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def fill(text: str, values: dict[str, Any]) -> str:
    """The step's text with {field}s replaced by the back-end's values (plain text only:
    nested objects are refused, long values cut)."""
    needed = placeholders(text)
    missing = [name for name in needed if name not in values]
    if missing:
        raise ActionFailed(f"the answer lacks {', '.join(sorted(missing))}")
    plain: dict[str, str] = {}
    for name in needed:
        value = values[name]
        if isinstance(value, dict | list) or value is None:
            raise ActionFailed(f"{name} is not a plain value")
        plain[name] = str(value)[:MAX_VALUE_CHARS]
    # Only {name} fields: a brace that is not a placeholder is left as it is.
    return PLACEHOLDER.sub(lambda m: plain[m.group(1)], text)


async def call(
    settings: Settings,
    *,
    action: str,
    customer_id: str,
    conversation_id: int,
    params: dict[str, Any],
    idempotency_key: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """One call, no retries: a customer waiting in a chat is better served by a person
    than by a bot that keeps trying."""
    if not settings.bot_actions_url:
        raise ActionFailed("OKNO_BOT_ACTIONS_URL is not set")
    body = {
        "action": action,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
        "params": params,
    }
    try:
        response = await backend.post(
            settings.bot_actions_url.rstrip("/") + "/" + action,
            body,
            token=settings.bot_actions_token,
            timeout_seconds=settings.bot_actions_timeout_seconds,
            idempotency_key=idempotency_key,
            user_agent="okno-bot",
            max_bytes=MAX_RESPONSE_BYTES,
            transport=transport,
        )
        return backend.json_object(response)
    except backend.BackendFailed as exc:
        raise ActionFailed(exc.reason) from None
