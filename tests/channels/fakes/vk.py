"""A fake VK API (https://dev.vk.com/ru/method) for community messages, and Callback API
events with the shapes VK documents (https://dev.vk.com/ru/api/callback/getting-started)."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from typing import Any

from tests.channels.fakes.server import FakePlatform, Recorded, Reply

TOKEN = "vk1.a.community-token-0123456789abcdef"
GROUP_ID = 218374650
SECRET = "okno-vk-secret-42"
CONFIRMATION = "a1b2c3d4"
OWNER = -GROUP_ID


class FakeVk(FakePlatform):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []  # what customers received, in order
        self.no_permission: set[int] = set()  # users who never allowed messages (901)
        self.files: dict[str, bytes] = {}  # path under /files/ -> bytes
        self.uploads: dict[str, tuple[str, bytes]] = {}  # upload handle -> (name, bytes)
        self.docs: dict[str, tuple[str, bytes]] = {}  # "doc-1_5" -> (title, bytes)
        self.slow_sends = 0  # take the next N messages, then answer past okno's timeout
        self._by_random_id: dict[tuple[int, int], int] = {}
        self._ids = itertools.count(3000)
        self._lock2 = threading.Lock()
        self.route("POST", r"/method/(?P<method>[\w.]+)", self._method)
        self.route("POST", r"/upload/(?P<kind>photo|doc)", self._upload)
        self.route("GET", r"/files/(?P<name>.+)", self._file)

    def add_file(self, name: str, data: bytes) -> str:
        """A file a customer sent; returns the URL VK puts in the event."""
        self.files[name] = data
        return f"{self.url}/files/{name}"

    @staticmethod
    def _error(code: int, message: str, params: dict[str, Any] | None = None) -> Reply:
        request_params = [{"key": k, "value": str(v)} for k, v in (params or {}).items()]
        return Reply(
            200,
            {
                "error": {
                    "error_code": code,
                    "error_msg": message,
                    "request_params": request_params,
                }
            },
        )

    def _method(self, req: Recorded, m: re.Match[str]) -> Reply:
        params = req.form()
        method = m["method"]
        if params.get("access_token") != self.token:
            return self._error(5, "User authorization failed: invalid access_token (4).")
        if not params.get("v"):
            return self._error(8, "Invalid request: v (version) is required")
        if method == "groups.getById":
            group = {
                "id": GROUP_ID,
                "name": "Банк Окно",
                "screen_name": "okno_bank",
                "type": "group",
            }
            return Reply(200, {"response": {"groups": [group], "profiles": []}})
        if method == "messages.send":
            return self._send(params)
        if method == "photos.getMessagesUploadServer":
            return Reply(
                200,
                {
                    "response": {
                        "upload_url": f"{self.url}/upload/photo",
                        "album_id": -3,
                        "group_id": GROUP_ID,
                    }
                },
            )
        if method == "docs.getMessagesUploadServer":
            return Reply(200, {"response": {"upload_url": f"{self.url}/upload/doc"}})
        if method == "photos.saveMessagesPhoto":
            found = self.uploads.pop(str(params.get("photo")), None)
            if found is None or params.get("hash") != "h" + str(params.get("photo")):
                return self._error(121, "Invalid hash")
            photo_id = next(self._ids)
            self.docs[f"photo{OWNER}_{photo_id}_ak{photo_id}"] = found
            item = {"id": photo_id, "owner_id": OWNER, "access_key": f"ak{photo_id}"}
            return Reply(200, {"response": [item]})
        if method == "docs.save":
            found = self.uploads.pop(str(params.get("file")), None)
            if found is None:
                return self._error(100, "One of the parameters specified was missing or invalid")
            doc_id = next(self._ids)
            self.docs[f"doc{OWNER}_{doc_id}"] = (str(params.get("title") or found[0]), found[1])
            doc = {"id": doc_id, "owner_id": OWNER, "title": params.get("title"), "ext": "pdf"}
            return Reply(200, {"response": {"type": "doc", "doc": doc}})
        return self._error(3, "Unknown method passed")

    def _send(self, params: dict[str, Any]) -> Reply:
        try:
            peer_id = int(params["peer_id"])
            random_id = int(params["random_id"])
        except (KeyError, ValueError):
            return self._error(100, "One of the parameters specified was missing or invalid")
        if not params.get("message") and not params.get("attachment"):
            return self._error(100, "message is empty or invalid")
        if peer_id in self.no_permission:
            return self._error(901, "Can't send messages for users without permission", params)
        with self._lock2:
            seen = self._by_random_id.get((peer_id, random_id))
            if seen is not None:
                # VK drops a message whose random_id it has seen and answers the first id
                return Reply(200, {"response": seen})
            message_id = next(self._ids)
            self._by_random_id[(peer_id, random_id)] = message_id
            self.sent.append({**params, "peer_id": peer_id, "message_id": message_id})
            slow = self.slow_sends > 0
            if slow:
                self.slow_sends -= 1
        return Reply(200, {"response": message_id}, delay=3.0 if slow else 0.0)

    def _upload(self, req: Recorded, m: re.Match[str]) -> Reply:
        form = req.form()
        field = "photo" if m["kind"] == "photo" else "file"
        upload = form.get(field)
        if not isinstance(upload, tuple):
            return Reply(200, {"error": "no file"})
        handle = f"up{next(self._ids)}"
        self.uploads[handle] = upload
        if m["kind"] == "photo":
            return Reply(200, {"server": 851232, "photo": handle, "hash": "h" + handle})
        return Reply(200, {"file": handle})

    def _file(self, req: Recorded, m: re.Match[str]) -> Reply:
        data = self.files.get(m["name"])
        return Reply(200, data) if data is not None else Reply(404, b"")

    def texts_to(self, peer_id: int) -> list[str]:
        return [str(s.get("message", "")) for s in self.sent if s["peer_id"] == peer_id]


# -- Callback API events, as VK sends them ---------------------------------------------------

_ids = itertools.count(int(time.time()) % 100000 * 100)
USER_ID = 1234567


def event(
    kind: str, obj: dict[str, Any] | None, *, secret: str | None = SECRET, **extra: Any
) -> dict:
    body: dict[str, Any] = {
        "type": kind,
        "group_id": GROUP_ID,
        "event_id": f"{next(_ids):x}a8c2e4f0b1d3",
        "v": "5.199",
    }
    if obj is not None:
        body["object"] = obj
    if secret is not None:
        body["secret"] = secret
    body.update(extra)
    return body


def confirmation(secret: str | None = SECRET, group_id: int = GROUP_ID) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "confirmation", "group_id": group_id}
    if secret is not None:
        body["secret"] = secret
    return body


def message_new(
    text: str = "",
    *,
    user_id: int = USER_ID,
    peer_id: int | None = None,
    message_id: int | None = None,
    **message: Any,
) -> dict[str, Any]:
    mid = message_id or next(_ids)
    body: dict[str, Any] = {
        "date": int(time.time()),
        "from_id": user_id,
        "id": mid,
        "out": 0,
        "version": 10000000 + mid,
        "attachments": [],
        "conversation_message_id": mid % 1000,
        "fwd_messages": [],
        "important": False,
        "is_hidden": False,
        "peer_id": peer_id or user_id,
        "random_id": 0,
        "text": text,
    }
    body.update(message)
    client_info = {
        "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
        "keyboard": True,
        "inline_keyboard": True,
        "carousel": True,
        "lang_id": 0,
    }
    return event("message_new", {"message": body, "client_info": client_info})


def message_read(read_message_id: int, user_id: int = USER_ID) -> dict[str, Any]:
    return event(
        "message_read",
        {"from_id": user_id, "peer_id": user_id, "read_message_id": read_message_id},
    )


def encode(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()
