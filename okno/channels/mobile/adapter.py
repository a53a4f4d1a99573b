"""The bank's own mobile app (channel kind ``api``).

In: the app talks to okno's HTTP API directly (`okno.channels.mobile.api`), with a session
opened from a customer token the bank signed; there is no webhook.

Out: the app reads messages live over the WebSocket or from the history. For an app that
is closed, okno posts every operator, bot and system message to the bank's **push
gateway** (``push_url``), which turns it into a push notification. The call goes through
the delivery outbox like any messenger send: in order, retried with backoff on 429/5xx/a
timeout, shown to staff as sent or not delivered. The contract (docs/channels/mobile-api.md):

    POST {push_url}
    Content-Type: application/json
    X-Okno-Signature: sha256=<hex HMAC-SHA256 of the exact body, key push_secret>
    X-Okno-Delivery: <delivery_id, the same on every retry of one message>

    {"type": "message.created", "delivery_id": "okno-<channel>-<message>", "channel_id",
     "customer_id": <the bank's id>, "conversation_id", "sent_at",
     "message": {"id", "author_kind", "text", "buttons": [{"label"}],
                 "attachments": [{"filename", "content_type", "size"}]}}

2xx: taken (an ``id`` in a JSON answer becomes the delivery's external id). 429/5xx/408 or
no answer: retried (Retry-After honoured). Any other 4xx (say 404/410: the customer has no
device): given up, staff see "not delivered"; the message is still in the app's history.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, ClassVar

import httpx

from okno.channels.adapter import (
    Adapter,
    ConfigField,
    HookRequest,
    HookResult,
    Outbound,
    SendFailed,
    Sent,
    failed_response,
)
from okno.channels.service import MIN_SECRET_CHARS
from okno.db.base import utcnow
from okno.errors import BadRequest, NotFound

SIGNATURE_HEADER = "X-Okno-Signature"
DELIVERY_HEADER = "X-Okno-Delivery"


def sign(secret: str, body: bytes) -> str:
    """The X-Okno-Signature value of ``body``: ``sha256=`` + hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ApiAdapter(Adapter):
    kind = "api"
    title = "Mobile app"
    fields = (
        ConfigField(
            "identity_secret",
            "The secret the bank's server signs customer tokens with (HS256, at least 32 "
            "characters).",
            secret=True,
        ),
        ConfigField(
            "push_url",
            "The bank's push gateway: okno posts each message for the customer there "
            "(empty: no pushes, the app reads messages when open).",
            required=False,
        ),
        ConfigField(
            "push_secret",
            "The key of the HMAC-SHA256 signature on each push (X-Okno-Signature).",
            required=False,
            secret=True,
        ),
    )
    # The bank's own gateway: no published limit; keep a burst from flooding it.
    rate_per_second: ClassVar[float] = 50.0
    # The gateway is told to drop a repeat of a delivery_id it has taken already.
    dedups_resends: ClassVar[bool] = True
    has_buttons: ClassVar[bool] = True

    def check_value(self, name: str, value: str) -> None:
        if name == "identity_secret" and not MIN_SECRET_CHARS <= len(value) <= 200:
            raise BadRequest(
                f"identity_secret must be {MIN_SECRET_CHARS}-200 characters (a random string "
                "the bank's server signs customer tokens with)",
                code="invalid_setting",
                field=name,
            )
        if name == "push_secret" and len(value) < 16:
            raise BadRequest(
                "push_secret must be at least 16 characters", code="invalid_setting", field=name
            )

    def check_config(self, config: dict[str, Any]) -> None:
        url = str(config.get("push_url") or "")
        if url and not url.startswith(("http://", "https://")):
            raise BadRequest(
                "push_url must start with http:// or https://",
                code="invalid_setting",
                field="push_url",
            )
        if url and not config.get("push_secret"):
            raise BadRequest(
                "push_secret is required with push_url (the gateway checks the signature)",
                code="missing_setting",
                field="push_secret",
            )

    # -- in: the app calls okno's API, never a webhook -------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        raise NotFound(
            "the mobile app channel has no webhook; the app uses /api/v1/mobile",
            code="no_webhook",
        )

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        return HookResult()

    # -- out: a push through the bank's gateway ----------------------------------------------

    def push_body(self, config: dict[str, Any], message: Outbound) -> bytes:
        """The exact bytes okno posts (and signs) for ``message``."""
        customer = message.recipient.removeprefix("bank:")
        payload = {
            "type": "message.created",
            "delivery_id": f"okno-{config.get('_channel_id', 0)}-{message.message_id}",
            "channel_id": config.get("_channel_id"),
            "customer_id": customer,
            "conversation_id": message.conversation_id,
            "sent_at": utcnow().isoformat(),
            "message": {
                "id": message.message_id,
                "author_kind": message.author_kind,
                "text": message.text,
                "buttons": [{"label": b["label"]} for b in message.buttons],
                "attachments": [
                    {"filename": f.filename, "content_type": f.content_type, "size": len(f.data)}
                    for f in message.files
                ],
            },
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        url = str(config.get("push_url") or "")
        if not url:
            # No gateway: the message waits in the app's history; nothing more to do.
            return Sent(external_id=f"app:{message.message_id}")
        if not message.recipient.startswith("bank:"):
            raise SendFailed("the dialog has no verified bank customer to push to", retry=False)
        body = self.push_body(config, message)
        delivery_id = json.loads(body)["delivery_id"]
        response = await client.post(
            url,
            content=body,
            headers={
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(str(config.get("push_secret") or ""), body),
                DELIVERY_HEADER: delivery_id,
            },
        )
        if not 200 <= response.status_code < 300:
            raise failed_response(response, "push gateway")
        external = delivery_id
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if isinstance(answer, dict) and isinstance(answer.get("id"), str | int):
            external = str(answer["id"])
        return Sent(external_id=external)

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        if not config.get("push_url"):
            return "no push gateway set: the app reads messages while it is open"
        return "push gateway set; a test push is not sent (it would reach a real customer)"
