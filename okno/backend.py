"""One POST to a service of the bank's own back-end (customer verification, the bot's
self-service actions): bearer token, idempotency key, a timeout, a cap on the answer, and
every way it can go wrong reduced to one failure with a reason for the log.

No retries here: each caller has a person waiting (an operator, a customer in a chat), who is
better served by a clear failure than by a call that keeps trying.
"""

from __future__ import annotations

from typing import Any

import httpx


class BackendFailed(Exception):
    """No usable answer; ``reason`` is for the log (never the request's content)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def post(
    url: str,
    body: dict[str, Any],
    *,
    token: str,
    timeout_seconds: float,
    idempotency_key: str,
    user_agent: str,
    max_bytes: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.Response:
    """The 2xx answer, or ``BackendFailed``."""
    headers = {"Idempotency-Key": idempotency_key, "User-Agent": user_agent}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with httpx.AsyncClient(timeout=timeout_seconds, transport=transport) as client:
            response = await client.post(url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise BackendFailed("timeout") from None
    except httpx.HTTPError as exc:
        raise BackendFailed(f"connection failed: {type(exc).__name__}") from None
    if not 200 <= response.status_code < 300:
        raise BackendFailed(f"status {response.status_code}")
    if len(response.content) > max_bytes:
        raise BackendFailed("answer too large")
    return response


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's body as a JSON object, or ``BackendFailed``."""
    try:
        data = response.json()
    except ValueError:
        raise BackendFailed("answer is not JSON") from None
    if not isinstance(data, dict):
        raise BackendFailed("answer is not a JSON object")
    return data
