"""Viber REST Bot API (https://developers.viber.com/docs/api/rest-bot-api/).

In: callbacks signed with ``X-Viber-Content-Signature``, the hex HMAC-SHA256 of the raw
body keyed by the bot's auth token. ``message`` callbacks become customer messages (the
``message_token`` is their id, so a redelivery is stored once); ``delivered``, ``seen`` and
``failed`` report on what okno sent; ``conversation_started`` (the customer opened the chat)
is answered with the channel's welcome text, the only message Viber lets a bot send to
someone who has not written yet; ``subscribed``, ``unsubscribed`` and ``webhook`` (Viber
checking the address) store nothing.

Out: ``send_message`` with ``X-Viber-Auth-Token``; a bot step's buttons become a keyboard of
``reply`` buttons whose ``ActionBody`` is okno's short button reference (``Silent`` so the
reference is not shown in the customer's chat); a location request is a ``location-picker``
button. Viber takes media only by a public URL, and okno keeps files inside the bank's
perimeter, so an operator's file goes as a line naming it (see docs/channels/viber.md).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, ClassVar

import httpx

from okno.channels.adapter import (
    Adapter,
    ConfigField,
    HookRequest,
    HookResult,
    Incoming,
    Outbound,
    RemoteFile,
    SendFailed,
    Sent,
    StatusUpdate,
    failed_response,
    require_signature,
)
from okno.channels.outbound import parse_button_ref
from okno.errors import BadRequest

LOCATION_BUTTON = "📍 Отправить местоположение"
TEXT_LIMIT = 7000  # Viber's documented maximum for a text message
SENDER_NAME_LIMIT = 28
BUTTON_TEXT_LIMIT = 250
# send_message status codes (https://developers.viber.com/docs/api/rest-bot-api/#error-codes)
STATUS_NAMES = {
    1: "invalidUrl",
    2: "invalidAuthToken",
    3: "badData",
    4: "missingData",
    5: "receiverNotRegistered",
    6: "receiverNotSubscribed",
    7: "publicAccountBlocked",
    8: "publicAccountNotFound",
    9: "publicAccountSuspended",
    10: "webhookNotSet",
    11: "receiverNoSuitableDevice",
    12: "tooManyRequests",
    13: "apiVersionNotSupported",
    14: "incompatibleWithVersion",
    15: "publicAccountNotAuthorized",
    16: "inchatReplyMessageNotAllowed",
    17: "publicAccountIsNotInline",
    18: "noPublicChat",
    19: "cannotSendBroadcast",
    20: "broadcastNotAllowed",
    21: "unsupportedCountry",
    22: "paymentUnsupported",
    23: "freeMessagesExceeded",
    24: "noBalance",
}
# Only a rate refusal (12) and Viber's unnamed "general error" are worth another try; the
# named codes say the request, the account or the customer cannot take it (6: the customer
# unsubscribed or never wrote).
RETRY_STATUSES = {12}
WAIT_AFTER_TOO_MANY = 1.0
# Where a customer's media comes from: the kind okno files it as and a name when Viber
# gives none.
MEDIA = {
    "picture": ("photo", "photo_{token}.jpg", "image/jpeg"),
    "video": ("video", "video_{token}.mp4", "video/mp4"),
    "file": ("document", "file_{token}", None),
}
EVENTS_WANTED = [
    "delivered",
    "seen",
    "failed",
    "subscribed",
    "unsubscribed",
    "conversation_started",
]


class ViberAdapter(Adapter):
    kind = "viber"
    title = "Viber"
    default_api_base = "https://chatapi.viber.com"
    fields = (
        ConfigField(
            "auth_token",
            "The bot's authentication token (Viber: Edit Info > Your app key); it also signs "
            "every callback.",
            secret=True,
        ),
        ConfigField(
            "sender_name",
            "The name customers see on the bank's messages (up to 28 characters).",
            required=False,
            default="Банк",
        ),
        ConfigField(
            "sender_avatar",
            "Public URL of the avatar shown with the bank's messages (JPEG, up to 100 KB).",
            required=False,
        ),
        ConfigField(
            "welcome_text",
            "Sent when a customer opens the chat before writing (empty: nothing is sent).",
            required=False,
        ),
    )
    # Viber publishes no per-bot send rate; a gentle pace keeps clear of tooManyRequests.
    rate_per_second: ClassVar[float] = 20.0

    def check_config(self, config: dict[str, Any]) -> None:
        name = str(config.get("sender_name") or "")
        if not name or len(name) > SENDER_NAME_LIMIT:
            raise BadRequest(
                f"sender_name must be 1-{SENDER_NAME_LIMIT} characters",
                code="invalid_setting",
                field="sender_name",
            )
        avatar = config.get("sender_avatar")
        if avatar and not str(avatar).startswith(("http://", "https://")):
            raise BadRequest(
                "sender_avatar must be an http(s) URL",
                code="invalid_setting",
                field="sender_avatar",
            )

    def _sender(self, config: dict[str, Any]) -> dict[str, str]:
        sender = {"name": str(config.get("sender_name") or "Банк")[:SENDER_NAME_LIMIT]}
        if config.get("sender_avatar"):
            sender["avatar"] = str(config["sender_avatar"])
        return sender

    # -- in -------------------------------------------------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        token = str(config.get("auth_token") or "")
        expected = hmac.new(token.encode(), request.body, hashlib.sha256).hexdigest()
        got = request.headers.get("x-viber-content-signature", "").strip().lower()
        require_signature(bool(token) and hmac.compare_digest(expected, got))

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        body = request.json_object()
        event = body.get("event")
        if not isinstance(event, str):
            raise BadRequest("not a Viber callback (no event)", code="malformed_webhook")
        if event == "message":
            return HookResult(messages=[parse_message(body)])
        if event in ("delivered", "seen", "failed"):
            token = body.get("message_token")
            if not isinstance(token, int | str) or isinstance(token, bool) or not str(token):
                raise BadRequest(
                    f"a {event} callback without message_token", code="malformed_webhook"
                )
            status = {"delivered": "delivered", "seen": "read", "failed": "failed"}[event]
            error = (str(body.get("desc") or "")[:500] or None) if event == "failed" else None
            return HookResult(statuses=[StatusUpdate(str(token), status, error)])
        if event == "conversation_started":
            return self._welcome(config, body)
        # subscribed, unsubscribed, webhook (the address check of set_webhook), and events
        # Viber may add later: nothing to store, and a 200 so Viber does not retry.
        return HookResult()

    def _welcome(self, config: dict[str, Any], body: dict[str, Any]) -> HookResult:
        """Viber lets a bot greet a customer who opened the chat by answering the callback
        itself with a message (no receiver); the reply is the whole welcome."""
        import json

        user = body.get("user")
        if not isinstance(user, dict) or not user.get("id"):
            raise BadRequest("conversation_started without user.id", code="malformed_webhook")
        text = str(config.get("welcome_text") or "").strip()
        if not text:
            return HookResult()
        welcome = {"sender": self._sender(config), "type": "text", "text": text[:TEXT_LIMIT]}
        return HookResult(
            reply_text=json.dumps(welcome, ensure_ascii=False), reply_media_type="application/json"
        )

    # -- out ------------------------------------------------------------------------------

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        text = message.text
        if message.files:
            # Viber fetches media from a public URL; okno's files stay inside the bank.
            names = "\n".join(f"📎 {f.filename}" for f in message.files)
            note = "Файлы не передаются в Viber — попросите оператора отправить их иначе."
            text = f"{text}\n\n{names}\n{note}" if text else f"{names}\n{note}"
        if not text.strip():
            raise SendFailed("nothing to send", retry=False)
        body: dict[str, Any] = {
            "receiver": message.recipient,
            "sender": self._sender(config),
            "type": "text",
            "text": text[:TEXT_LIMIT],
        }
        keyboard = _keyboard(message)
        if keyboard:
            body["keyboard"] = keyboard
        result = await self._call(client, config, "send_message", body)
        token = result.get("message_token")
        if token is None:
            raise SendFailed("send_message gave no message_token")
        return Sent(external_id=str(token))

    async def _call(
        self, client: httpx.AsyncClient, config: dict[str, Any], method: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        response = await client.post(
            f"{self.api_base(config)}/pa/{method}",
            json=body,
            headers={"X-Viber-Auth-Token": str(config.get("auth_token") or "")},
        )
        if response.status_code != 200:
            raise failed_response(response, method)
        try:
            data = response.json()
        except ValueError:
            raise SendFailed(f"{method}: the answer is not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("status"), int):
            raise SendFailed(f"{method}: the answer has no status")
        status = data["status"]
        if status == 0:
            return data
        name = STATUS_NAMES.get(status, "generalError")
        detail = str(data.get("status_message") or "")[:200]
        reason = f"{method}: status {status} {name} {detail}".strip()
        if status in RETRY_STATUSES:
            raise SendFailed(reason, after=WAIT_AFTER_TOO_MANY)
        raise SendFailed(reason, retry=status not in STATUS_NAMES)

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        info = await self._call(client, config, "get_account_info", {})
        return str(info.get("name") or info.get("uri") or "ok")

    async def set_webhook(
        self, client: httpx.AsyncClient, config: dict[str, Any], url: str
    ) -> None:
        """Point the bot at okno; Viber checks the address at once with a signed
        ``webhook`` callback, which okno answers 200."""
        await self._call(
            client,
            config,
            "set_webhook",
            {"url": url, "event_types": EVENTS_WANTED, "send_name": True, "send_photo": False},
        )


def _keyboard(message: Outbound) -> dict[str, Any] | None:
    if message.buttons:
        return {
            "Type": "keyboard",
            "DefaultHeight": False,
            "Buttons": [
                {
                    "Columns": 6,
                    "Rows": 1,
                    "ActionType": "reply",
                    "ActionBody": b["payload"],
                    "Text": b["label"][:BUTTON_TEXT_LIMIT],
                    "TextSize": "regular",
                    "Silent": True,
                }
                for b in message.buttons
            ],
        }
    if message.ask_location:
        return {
            "Type": "keyboard",
            "DefaultHeight": False,
            "Buttons": [
                {
                    "Columns": 6,
                    "Rows": 1,
                    "ActionType": "location-picker",
                    "ActionBody": "location",
                    "Text": LOCATION_BUTTON,
                    "TextSize": "regular",
                }
            ],
        }
    return None


def parse_message(body: dict[str, Any]) -> Incoming:
    """One ``message`` callback as a customer message; BadRequest when it lacks what every
    message has (the sender's id, the message token, the message itself)."""
    sender = body.get("sender")
    message = body.get("message")
    token = body.get("message_token")
    if not isinstance(sender, dict) or not isinstance(message, dict):
        raise BadRequest("a Viber message without sender or message", code="malformed_webhook")
    user_id = sender.get("id")
    if not isinstance(user_id, str) or not user_id:
        raise BadRequest("sender.id must be a string", code="malformed_webhook")
    if not isinstance(token, int | str) or isinstance(token, bool) or not str(token):
        raise BadRequest("a Viber message without message_token", code="malformed_webhook")
    kind = message.get("type")
    incoming = Incoming(
        external_customer_id=user_id,
        external_id=str(token),
        customer_name=str(sender.get("name") or "")[:200],
    )
    text = str(message.get("text") or "")
    if kind == "text" and parse_button_ref(text) is not None:
        incoming.button = text  # a keyboard button: the hook reads back its payload
        return incoming
    incoming.text = text
    if kind in MEDIA:
        file_kind, default_name, ctype = MEDIA[kind]
        media = message.get("media")
        if isinstance(media, str) and media:
            size = message.get("size")
            incoming.files.append(
                RemoteFile(
                    ref=media,
                    filename=str(message.get("file_name") or default_name.format(token=token)),
                    content_type=ctype,
                    size=size if isinstance(size, int) else None,
                    kind=file_kind,
                )
            )
    elif kind == "location":
        location = message.get("location")
        try:
            assert isinstance(location, dict)
            incoming.location = (float(location["lat"]), float(location["lon"]))
        except (AssertionError, KeyError, TypeError, ValueError):
            raise BadRequest("a location without lat/lon", code="malformed_webhook") from None
    elif kind == "contact":
        contact = message.get("contact")
        if isinstance(contact, dict) and contact.get("phone_number"):
            # Viber does not say whose number it is, so it never verifies the customer.
            incoming.contact = {
                "name": str(contact.get("name") or ""),
                "phone": str(contact["phone_number"]),
            }
    elif kind == "sticker":
        incoming.text = incoming.text or "🙂 [стикер]"
    elif kind == "url":
        incoming.text = str(message.get("media") or incoming.text)
    return incoming
