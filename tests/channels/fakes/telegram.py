"""A fake Telegram Bot API (https://core.telegram.org/bots/api) and Update builders with
the shapes Telegram documents."""

from __future__ import annotations

import itertools
import re
import threading
import time
from typing import Any

from tests.channels.fakes.server import FakePlatform, Recorded, Reply

TOKEN = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11"
BOT = {"id": 123456, "is_bot": True, "first_name": "Банк", "username": "okno_bank_bot"}


class FakeTelegram(FakePlatform):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []  # what customers received, in order
        self.blocked: set[int] = set()  # chats whose user blocked the bot
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.updates: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] = {}
        self._ids = itertools.count(1000)
        self._updates_cv = threading.Condition()
        bot = r"/bot(?P<token>[^/]+)/(?P<method>\w+)"
        self.route("POST", bot, self._method)
        self.route("GET", bot, self._method)
        self.route("GET", r"/file/bot(?P<token>[^/]+)/(?P<path>.+)", self._file)

    # -- what a test sets up ----------------------------------------------------------------

    def add_file(self, file_id: str, data: bytes, file_path: str) -> None:
        self.files[file_id] = (file_path, data)

    def push_update(self, update: dict[str, Any]) -> None:
        """An update for getUpdates (polling mode)."""
        with self._updates_cv:
            self.updates.append(update)
            self._updates_cv.notify_all()

    # -- the API ----------------------------------------------------------------------------

    def _error(self, code: int, description: str, **params: Any) -> Reply:
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if params:
            body["parameters"] = params
        return Reply(code, body)

    def _method(self, req: Recorded, m: re.Match[str]) -> Reply:
        if m["token"] != self.token:
            return self._error(401, "Unauthorized")
        method = m["method"]
        body = self._body(req)
        if method == "getMe":
            return Reply(200, {"ok": True, "result": BOT})
        if method == "setWebhook":
            self.webhook = body
            return Reply(200, {"ok": True, "result": True, "description": "Webhook was set"})
        if method == "answerCallbackQuery":
            return Reply(200, {"ok": True, "result": True})
        if method == "getFile":
            found = self.files.get(str(body.get("file_id")))
            if found is None:
                return self._error(400, "Bad Request: invalid file_id")
            return Reply(
                200,
                {
                    "ok": True,
                    "result": {
                        "file_id": body["file_id"],
                        "file_unique_id": "u" + str(body["file_id"]),
                        "file_size": len(found[1]),
                        "file_path": found[0],
                    },
                },
            )
        if method == "getUpdates":
            return self._get_updates(body)
        if method in ("sendMessage", "sendPhoto", "sendDocument", "sendVoice"):
            return self._send(method, body)
        return self._error(404, "Not Found: method not found")

    def _body(self, req: Recorded) -> dict[str, Any]:
        ctype = req.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            data = req.json()
            return data if isinstance(data, dict) else {}
        if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            return req.form()
        return {k: v[0] for k, v in req.query.items()}

    def _send(self, method: str, body: dict[str, Any]) -> Reply:
        try:
            chat_id = int(body["chat_id"])
        except (KeyError, ValueError):
            return self._error(400, "Bad Request: chat_id is empty")
        if chat_id in self.blocked:
            return self._error(403, "Forbidden: bot was blocked by the user")
        if method == "sendMessage" and not str(body.get("text", "")).strip():
            return self._error(400, "Bad Request: message text is empty")
        message_id = next(self._ids)
        result: dict[str, Any] = {
            "message_id": message_id,
            "from": BOT,
            "chat": {"id": chat_id, "type": "private"},
            "date": int(time.time()),
        }
        record = {"method": method, "chat_id": chat_id, "message_id": message_id}
        if method == "sendMessage":
            result["text"] = body["text"]
            record["text"] = body["text"]
            record["reply_markup"] = body.get("reply_markup")
        else:
            field = {"sendPhoto": "photo", "sendDocument": "document", "sendVoice": "voice"}[method]
            upload = body.get(field)
            record["file"] = upload  # (filename, bytes) from the multipart body
            record["caption"] = body.get("caption", "")
            result[field] = {"file_id": f"sent-{message_id}"}
            if body.get("caption"):
                result["caption"] = body["caption"]
        self.sent.append(record)
        return Reply(200, {"ok": True, "result": result})

    def _get_updates(self, body: dict[str, Any]) -> Reply:
        offset = int(body.get("offset") or 0)
        wait = float(body.get("timeout") or 0)
        deadline = time.monotonic() + wait
        with self._updates_cv:
            while True:
                ready = [u for u in self.updates if u["update_id"] >= offset]
                # an offset confirms every update before it: Telegram forgets those
                self.updates = ready
                if ready or time.monotonic() >= deadline:
                    return Reply(200, {"ok": True, "result": ready[:100]})
                self._updates_cv.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _file(self, req: Recorded, m: re.Match[str]) -> Reply:
        if m["token"] != self.token:
            return Reply(401, b"")
        for path, data in self.files.values():
            if path == m["path"]:
                return Reply(200, data)
        return Reply(404, b"")

    def texts_to(self, chat_id: int) -> list[str]:
        return [s.get("text") or s.get("caption", "") for s in self.sent if s["chat_id"] == chat_id]


# -- Updates, as Telegram sends them ---------------------------------------------------------

_update_ids = itertools.count(int(time.time()) % 100000 * 1000)


def user(user_id: int = 555001, first_name: str = "Иван", last_name: str = "Петров") -> dict:
    return {
        "id": user_id,
        "is_bot": False,
        "first_name": first_name,
        "last_name": last_name,
        "username": "ivan_p",
        "language_code": "ru",
    }


def message_update(
    text: str | None = None,
    *,
    chat_id: int = 555001,
    message_id: int | None = None,
    update_id: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    sender = extra.pop("sender", None) or user(chat_id)
    message: dict[str, Any] = {
        "message_id": message_id or next(_update_ids) % 1000000,
        "from": sender,
        "chat": {
            "id": chat_id,
            "first_name": sender["first_name"],
            "last_name": sender.get("last_name", ""),
            "username": sender.get("username", ""),
            "type": "private",
        },
        "date": int(time.time()),
    }
    if text is not None:
        message["text"] = text
    message.update(extra)
    return {"update_id": update_id or next(_update_ids), "message": message}


def callback_update(data: str, *, chat_id: int = 555001, message_id: int = 1000) -> dict:
    return {
        "update_id": next(_update_ids),
        "callback_query": {
            "id": str(4382000000000000000 + next(_update_ids)),
            "from": user(chat_id),
            "message": {
                "message_id": message_id,
                "from": BOT,
                "chat": {"id": chat_id, "type": "private", "first_name": "Иван"},
                "date": int(time.time()),
                "text": "Что случилось с картой?",
            },
            "chat_instance": "-1234567890",
            "data": data,
        },
    }
