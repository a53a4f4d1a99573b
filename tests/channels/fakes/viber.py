"""A fake Viber REST Bot API (https://developers.viber.com/docs/api/rest-bot-api/) and
callback builders with the shapes Viber documents, signed the way Viber signs them."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

from tests.channels.fakes.server import FakePlatform, Recorded, Reply

TOKEN = "4453b6ac12345678-e02c5f12174805f9-daec9cbb5448c51f"
ACCOUNT = {
    "status": 0,
    "status_message": "ok",
    "id": "pa:75346594275468546724",
    "name": "Банк Окно",
    "uri": "okno_bank",
    "icon": "http://example.com",
    "category": "Finance",
    "subcategory": "Bank",
    "country": "RU",
    "webhook": "https://okno.bank.example/hooks/viber/1",
    "event_types": ["delivered", "seen", "failed", "conversation_started"],
    "subscribers_count": 35,
}


class FakeViber(FakePlatform):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []  # what customers received, in order
        self.unsubscribed: set[str] = set()  # users who left the bot (status 6)
        self.media: dict[str, bytes] = {}  # path under /media/ -> bytes
        self.webhook: dict[str, Any] = {}
        self._tokens = itertools.count(5741311803571721087)
        self.route("POST", r"/pa/(?P<method>\w+)", self._method)
        self.route("GET", r"/media/(?P<name>.+)", self._media)

    def add_media(self, name: str, data: bytes) -> str:
        """A file a customer sent; returns the URL Viber puts in the callback's media."""
        self.media[name] = data
        return f"{self.url}/media/{name}"

    def _status(self, status: int, message: str) -> Reply:
        return Reply(200, {"status": status, "status_message": message})

    def _method(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.headers.get("x-viber-auth-token") != self.token:
            return self._status(2, "invalidAuthToken")
        try:
            body = req.json()
        except ValueError:
            return self._status(3, "badData")
        method = m["method"]
        if method == "get_account_info":
            return Reply(200, ACCOUNT)
        if method == "set_webhook":
            self.webhook = body
            return Reply(
                200,
                {
                    "status": 0,
                    "status_message": "ok",
                    "event_types": body.get("event_types", []),
                },
            )
        if method == "send_message":
            return self._send(body)
        return self._status(3, "badData")

    def _send(self, body: dict[str, Any]) -> Reply:
        sender = body.get("sender")
        if not body.get("receiver") or not isinstance(sender, dict) or not sender.get("name"):
            return self._status(4, "missingData")
        if body["receiver"] in self.unsubscribed:
            return self._status(6, "receiverNotSubscribed")
        if body.get("type") == "text" and not str(body.get("text", "")).strip():
            return self._status(3, "badData")
        token = next(self._tokens)
        self.sent.append({**body, "message_token": token})
        return Reply(
            200,
            {
                "status": 0,
                "status_message": "ok",
                "message_token": token,
                "chat_hostname": "SN-CHAT-05_",
                "billing_status": 1,
            },
        )

    def _media(self, req: Recorded, m: re.Match[str]) -> Reply:
        data = self.media.get(m["name"])
        return Reply(200, data) if data is not None else Reply(404, b"")

    def texts_to(self, user_id: str) -> list[str]:
        return [str(s.get("text", "")) for s in self.sent if s["receiver"] == user_id]


# -- callbacks, as Viber sends them -------------------------------------------------------

_tokens = itertools.count(4912661846655238145 + int(time.time()) % 100000 * 1000)
USER_ID = "01234567890A="


def sign(body: bytes, token: str = TOKEN) -> str:
    """X-Viber-Content-Signature: hex HMAC-SHA256 of the raw body keyed by the token."""
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def encode(callback: dict[str, Any]) -> bytes:
    return json.dumps(callback, ensure_ascii=False).encode()


def sender(user_id: str = USER_ID, name: str = "Иван Петров") -> dict[str, Any]:
    return {
        "id": user_id,
        "name": name,
        "avatar": "http://avatar.example.com",
        "country": "RU",
        "language": "ru",
        "api_version": 10,
    }


def message_callback(
    text: str | None = None,
    *,
    user_id: str = USER_ID,
    name: str = "Иван Петров",
    message_token: int | None = None,
    **message: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "text"}
    if text is not None:
        body["text"] = text
    body.update(message)
    return {
        "event": "message",
        "timestamp": int(time.time() * 1000),
        "chat_hostname": "SN-CHAT-02_",
        "message_token": message_token or next(_tokens),
        "sender": sender(user_id, name),
        "message": body,
        "silent": False,
    }


def status_callback(event: str, message_token: int, user_id: str = USER_ID, **extra: Any) -> dict:
    return {
        "event": event,
        "timestamp": int(time.time() * 1000),
        "chat_hostname": "SN-376_",
        "message_token": message_token,
        "user_id": user_id,
        **extra,
    }


def conversation_started(user_id: str = USER_ID) -> dict[str, Any]:
    return {
        "event": "conversation_started",
        "timestamp": int(time.time() * 1000),
        "chat_hostname": "SN-CHAT-01_",
        "message_token": next(_tokens),
        "type": "open",
        "context": "site",
        "user": sender(user_id),
        "subscribed": False,
    }
