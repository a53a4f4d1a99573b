"""Click-to-call through the bank's PBX gateway: the operator presses "Позвонить", okno
asks the PBX to connect the operator's extension with the customer. The number goes from
okno's server to the PBX only; the operator's browser never receives it.

The wire contract, documented for the bank's telephony team in docs/security.md:

    POST <OKNO_CLICK_TO_CALL_URL>
    Authorization: Bearer <OKNO_CLICK_TO_CALL_TOKEN>
    {"customer_id": 12, "bank_customer_id": "C-1001" | null, "phone": "+79161234567" | null,
     "conversation_id": 42 | null, "operator": {"id": 3, "login": "anna"}}

    2xx {"call_id": "..."}  (the body is optional) -> the PBX is dialling

``phone`` is null when okno knows no number: the PBX then looks the customer up by
``bank_customer_id``. There are no retries: a call is wanted now or not at all.
"""

from __future__ import annotations

from typing import Any

import httpx

from okno.settings import Settings

TIMEOUT_SECONDS = 5.0


class CallFailed(Exception):
    """The PBX refused or did not answer; ``reason`` is for the log and the operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def click_to_call(
    settings: Settings,
    body: dict[str, Any],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str | None:
    """Ask the PBX to place the call; returns its call id when it gives one."""
    headers = {"User-Agent": "okno-click-to-call"}
    if settings.click_to_call_token:
        headers["Authorization"] = f"Bearer {settings.click_to_call_token}"
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, transport=transport) as client:
            response = await client.post(settings.click_to_call_url, json=body, headers=headers)
    except httpx.TimeoutException:
        raise CallFailed("the PBX did not answer in time") from None
    except httpx.HTTPError as exc:
        raise CallFailed(f"the PBX is unreachable ({type(exc).__name__})") from None
    if not 200 <= response.status_code < 300:
        raise CallFailed(f"the PBX refused the call (status {response.status_code})")
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {}
    call_id = data.get("call_id") if isinstance(data, dict) else None
    return str(call_id) if call_id is not None else None
