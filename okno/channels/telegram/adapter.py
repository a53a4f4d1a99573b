"""Telegram Bot API (https://core.telegram.org/bots/api).

In: webhook updates checked by the ``X-Telegram-Bot-Api-Secret-Token`` header the bank
set with ``setWebhook``, or long polling with ``getUpdates`` for sites without a public
address (`okno.channels.telegram.polling`). Private chats only: a bank does not serve
customers in group chats.

Out: ``sendMessage`` with an inline keyboard for a bot step's buttons and a one-time reply
keyboard asking for the location; ``sendPhoto``/``sendDocument``/``sendVoice`` for files.
Telegram reports no delivery or read status to bots.
"""

from __future__ import annotations

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
    Polled,
    RemoteFile,
    SendFailed,
    Sent,
    require_signature,
)
from okno.errors import BadRequest

LOCATION_BUTTON = "📍 Отправить местоположение"
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
# Telegram answers these when retrying cannot help (the customer blocked the bot, deleted
# the chat, the text is refused).
PERMANENT = (400, 401, 403, 404)


class TelegramAdapter(Adapter):
    kind = "telegram"
    title = "Telegram"
    default_api_base = "https://api.telegram.org"
    fields = (
        ConfigField("bot_token", "The token @BotFather gave the bank's bot.", secret=True),
        ConfigField(
            "webhook_secret",
            "The secret_token given to setWebhook; Telegram sends it in every call.",
            required=False,
            secret=True,
        ),
        ConfigField(
            "mode",
            "webhook (Telegram calls okno) or polling (okno asks Telegram; no public address).",
            required=False,
            default="webhook",
        ),
    )
    # https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this
    rate_per_second: ClassVar[float] = 30.0
    per_recipient_gap_seconds: ClassVar[float] = 1.0

    def check_config(self, config: dict[str, Any]) -> None:
        mode = config.get("mode", "webhook")
        if mode not in ("webhook", "polling"):
            raise BadRequest("mode is webhook or polling", code="invalid_setting", field="mode")
        if mode == "webhook" and not config.get("webhook_secret"):
            raise BadRequest(
                "webhook_secret is required in webhook mode (1-256 of A-Z a-z 0-9 _ -)",
                code="missing_setting",
                field="webhook_secret",
            )

    def _url(self, config: dict[str, Any], method: str) -> str:
        return f"{self.api_base(config)}/bot{config['bot_token']}/{method}"

    # -- in -------------------------------------------------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        expected = str(config.get("webhook_secret") or "")
        got = request.headers.get("x-telegram-bot-api-secret-token", "")
        require_signature(
            bool(expected) and hmac.compare_digest(expected.encode(), got.encode()),
            "secret token",
        )

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        return HookResult(messages=[m for m in [parse_update(request.json_object())] if m])

    async def download(
        self, client: httpx.AsyncClient, config: dict[str, Any], file: RemoteFile
    ) -> bytes:
        data = await self._call(client, config, "getFile", {"file_id": file.ref})
        path = data.get("file_path") if isinstance(data, dict) else None
        if not isinstance(path, str) or not path:
            raise SendFailed("getFile gave no file_path")
        response = await client.get(f"{self.api_base(config)}/file/bot{config['bot_token']}/{path}")
        if response.status_code != 200:
            raise SendFailed(f"file download: status {response.status_code}")
        return response.content

    # -- out ------------------------------------------------------------------------------

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        chat_id = message.recipient
        markup = _markup(message)
        text = message.text[:TEXT_LIMIT]
        first_id: str | None = None
        files = list(message.files)
        # One file with a short text goes as one message (its caption): one call, one id.
        if files and len(text) <= CAPTION_LIMIT:
            file = files.pop(0)
            first_id = await self._send_file(client, config, chat_id, file, text, markup)
            text, markup = "", None
        if text:
            body: dict[str, Any] = {"chat_id": chat_id, "text": text}
            if markup:
                body["reply_markup"] = markup
            result = await self._call(client, config, "sendMessage", body)
            first_id = first_id or str(result.get("message_id"))
        for file in files:
            sent_id = await self._send_file(client, config, chat_id, file, "", None)
            first_id = first_id or sent_id
        if first_id is None:
            raise SendFailed("nothing to send", retry=False)
        return Sent(external_id=f"{chat_id}:{first_id}")

    async def _send_file(
        self,
        client: httpx.AsyncClient,
        config: dict[str, Any],
        chat_id: str,
        file: Any,
        caption: str,
        markup: dict[str, Any] | None,
    ) -> str:
        if file.content_type.startswith("image/") and file.content_type != "image/gif":
            method, field = "sendPhoto", "photo"
        elif file.content_type == "audio/ogg":
            method, field = "sendVoice", "voice"
        else:
            method, field = "sendDocument", "document"
        data: dict[str, Any] = {"chat_id": chat_id}
        if caption:
            data["caption"] = caption
        if markup:
            import json

            data["reply_markup"] = json.dumps(markup, ensure_ascii=False)
        result = await self._call(
            client,
            config,
            method,
            data,
            files={field: (file.filename, file.data, file.content_type)},
        )
        return str(result.get("message_id"))

    async def _call(
        self,
        client: httpx.AsyncClient,
        config: dict[str, Any],
        method: str,
        body: dict[str, Any],
        files: dict[str, Any] | None = None,
    ) -> Any:
        url = self._url(config, method)
        if files:
            response = await client.post(url, data=body, files=files)
        else:
            response = await client.post(url, json=body)
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code == 200 and isinstance(data, dict) and data.get("ok"):
            return data.get("result")
        # Never put the URL in the reason: it carries the bot token.
        description = str(data.get("description", ""))[:200] if isinstance(data, dict) else ""
        params = data.get("parameters") if isinstance(data, dict) else None
        after = params.get("retry_after") if isinstance(params, dict) else None
        status = response.status_code
        reason = f"{method}: status {status} {description}".strip()
        if status == 429:
            raise SendFailed(reason, after=float(after) if isinstance(after, int | float) else None)
        raise SendFailed(reason, retry=status not in PERMANENT)

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        me = await self._call(client, config, "getMe", {})
        return f"@{me.get('username')}" if isinstance(me, dict) else "ok"

    async def set_webhook(
        self, client: httpx.AsyncClient, config: dict[str, Any], url: str
    ) -> None:
        """Point Telegram at okno (``okno channels webhook ID``)."""
        await self._call(
            client,
            config,
            "setWebhook",
            {
                "url": url,
                "secret_token": config.get("webhook_secret", ""),
                "allowed_updates": ["message", "callback_query"],
            },
        )

    async def get_updates(
        self, client: httpx.AsyncClient, config: dict[str, Any], *, offset: int, wait: float
    ) -> list[dict[str, Any]]:
        result = await self._call(
            client,
            config,
            "getUpdates",
            {
                "offset": offset,
                "timeout": int(wait),
                "allowed_updates": ["message", "callback_query"],
            },
        )
        if not isinstance(result, list):
            raise SendFailed("getUpdates gave no list")
        return [u for u in result if isinstance(u, dict)]

    async def acknowledge(
        self, client: httpx.AsyncClient, config: dict[str, Any], incoming: Incoming
    ) -> None:
        if incoming.external_id.startswith("cb:"):
            await self._call(
                client,
                config,
                "answerCallbackQuery",
                {"callback_query_id": incoming.external_id[3:]},
            )

    def wants_poll(self, config: dict[str, Any]) -> bool:
        return config.get("mode") == "polling"

    async def poll(
        self, config: dict[str, Any], cursor: str | None, wait: float, limit: float
    ) -> Polled:
        offset = int(cursor) if cursor and cursor.isdigit() else 0
        async with httpx.AsyncClient(timeout=limit + wait) as client:
            updates = await self.get_updates(client, config, offset=offset, wait=wait)
        messages = []
        for update in updates:
            try:
                incoming = parse_update(update)
            except BadRequest:
                continue  # one broken update must not block the ones after it
            if incoming is not None:
                messages.append(incoming)
            offset = max(offset, int(update.get("update_id", 0)) + 1)
        return Polled(HookResult(messages=messages), str(offset) if offset else cursor)


def _markup(message: Outbound) -> dict[str, Any] | None:
    if message.buttons:
        return {
            "inline_keyboard": [
                [{"text": b["label"][:64], "callback_data": b["payload"][:64]}]
                for b in message.buttons
            ]
        }
    if message.ask_location:
        return {
            "keyboard": [[{"text": LOCATION_BUTTON, "request_location": True}]],
            "one_time_keyboard": True,
            "resize_keyboard": True,
        }
    return None


def _name(user: dict[str, Any]) -> str:
    parts = [str(user.get("first_name") or ""), str(user.get("last_name") or "")]
    name = " ".join(p for p in parts if p).strip()
    return name or (f"@{user['username']}" if user.get("username") else "")


def parse_update(update: dict[str, Any]) -> Incoming | None:
    """One Telegram Update as a customer message; None for what okno does not take (group
    chats, edits, channel posts). BadRequest when it is not an Update at all."""
    if not isinstance(update.get("update_id"), int):
        raise BadRequest("not a Telegram update (no update_id)", code="malformed_webhook")
    callback = update.get("callback_query")
    if isinstance(callback, dict):
        return _callback(callback)
    message = update.get("message")
    if not isinstance(message, dict):
        return None
    chat = message.get("chat")
    sender = message.get("from")
    if not isinstance(chat, dict) or not isinstance(sender, dict):
        raise BadRequest("a Telegram message without chat or from", code="malformed_webhook")
    if chat.get("type") != "private" or sender.get("is_bot"):
        return None
    chat_id, message_id = chat.get("id"), message.get("message_id")
    if not isinstance(chat_id, int) or not isinstance(message_id, int):
        raise BadRequest("chat.id and message_id must be numbers", code="malformed_webhook")
    incoming = Incoming(
        external_customer_id=str(chat_id),
        external_id=f"{chat_id}:{message_id}",
        text=str(message.get("text") or message.get("caption") or ""),
        customer_name=_name(sender),
    )
    photo = message.get("photo")
    if isinstance(photo, list) and photo:
        biggest = max(
            (p for p in photo if isinstance(p, dict)), key=lambda p: p.get("file_size") or 0
        )
        incoming.files.append(
            RemoteFile(
                ref=str(biggest.get("file_id")),
                filename=f"photo_{message_id}.jpg",
                content_type="image/jpeg",
                size=biggest.get("file_size"),
                kind="photo",
            )
        )
    for key, default_name, kind in (
        ("document", "document", "document"),
        ("voice", f"voice_{message_id}.ogg", "voice"),
        ("audio", f"audio_{message_id}.mp3", "voice"),
        ("video", f"video_{message_id}.mp4", "video"),
    ):
        item = message.get(key)
        if isinstance(item, dict) and item.get("file_id"):
            incoming.files.append(
                RemoteFile(
                    ref=str(item["file_id"]),
                    filename=str(item.get("file_name") or default_name),
                    content_type=item.get("mime_type"),
                    size=item.get("file_size"),
                    kind=kind,
                )
            )
    location = message.get("location")
    if isinstance(location, dict):
        try:
            incoming.location = (float(location["latitude"]), float(location["longitude"]))
        except (KeyError, TypeError, ValueError):
            raise BadRequest("a location without coordinates", code="malformed_webhook") from None
    contact = message.get("contact")
    if isinstance(contact, dict) and contact.get("phone_number"):
        phone = str(contact["phone_number"])
        if contact.get("user_id") == sender.get("id"):
            # The customer shared their own number with Telegram's button: Telegram vouches.
            incoming.verified_phone = phone
            incoming.text = incoming.text or "📱 Поделился своим номером телефона"
        else:
            incoming.contact = {"name": _name(contact), "phone": phone}
    return incoming


def _callback(callback: dict[str, Any]) -> Incoming | None:
    sender = callback.get("from")
    message = callback.get("message")
    if not isinstance(sender, dict) or not isinstance(callback.get("id"), str):
        raise BadRequest("a callback_query without id or from", code="malformed_webhook")
    chat = message.get("chat") if isinstance(message, dict) else None
    if isinstance(chat, dict) and chat.get("type") not in (None, "private"):
        return None
    data = callback.get("data")
    if not isinstance(data, str):
        return None
    chat_id = chat.get("id") if isinstance(chat, dict) else sender.get("id")
    return Incoming(
        external_customer_id=str(chat_id),
        external_id=f"cb:{callback['id']}",
        customer_name=_name(sender),
        button=data,
    )
