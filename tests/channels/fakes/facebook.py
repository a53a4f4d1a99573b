"""A fake Messenger Send API (https://developers.facebook.com/docs/messenger-platform/) and
webhook builders with the shapes Meta documents."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from typing import Any

from tests.channels.fakes.server import FakePlatform, Recorded, Reply

VERSION = "v21.0"
PAGE_TOKEN = "EAAJZCpage-access-token-ZDZD"
PAGE_ID = "1234567890123456"
APP_SECRET = "6b1e9c2f7d3a4b5c8e9f0a1b2c3d4e5f"
VERIFY_TOKEN = "okno-fb-verify-91c2"
PSID = "6643902459011231"


class FakeMessenger(FakePlatform):
    def __init__(self, token: str = PAGE_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.sent: list[dict[str, Any]] = []  # what customers received, in order
        self.unavailable: set[str] = set()  # PSIDs that turned off messages from the Page
        # PSIDs whose 24-hour window Meta considers closed (a RESPONSE is refused)
        self.window_closed: set[str] = set()
        self.files: dict[str, bytes] = {}  # CDN path -> bytes
        self._ids = itertools.count(1)
        self.route("POST", rf"/{VERSION}/me/messages", self._messages)
        self.route("GET", rf"/{VERSION}/me", self._me)
        self.route("GET", r"/cdn/(?P<path>.+)", self._cdn)

    def add_file(self, path: str, data: bytes) -> str:
        """A file a customer sent, on the fake CDN; returns its URL."""
        self.files[path] = data
        return f"{self.url}/cdn/{path}?_nc_cat=1&oh=00_AbC"

    def _error(
        self, code: int, message: str, subcode: int | None = None, status: int = 400
    ) -> Reply:
        error: dict[str, Any] = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AkqHkbEXAMPLE",
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        return Reply(status, {"error": error})

    def _me(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.query.get("access_token") != [self.token]:
            return self._error(190, "Invalid OAuth access token - Cannot parse access token")
        return Reply(200, {"name": "Банк Окно", "id": PAGE_ID})

    def _cdn(self, req: Recorded, m: re.Match[str]) -> Reply:
        data = self.files.get(m["path"])
        return Reply(200, data) if data is not None else Reply(404, b"")

    def _messages(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.query.get("access_token") != [self.token]:
            return self._error(190, "Invalid OAuth access token - Cannot parse access token")
        ctype = req.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = req.form()
            body: dict[str, Any] = {
                "recipient": json.loads(form.get("recipient", "{}")),
                "messaging_type": form.get("messaging_type"),
                "message": json.loads(form.get("message", "{}")),
            }
            if "tag" in form:
                body["tag"] = form["tag"]
            upload = form.get("filedata")
            if not isinstance(upload, tuple):
                return self._error(100, "(#100) Upload attachment failure.")
            body["file"] = upload
        else:
            body = req.json()
        psid = str(body.get("recipient", {}).get("id", ""))
        if body.get("messaging_type") not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
            return self._error(100, "(#100) param messaging_type must be one of ...")
        if body["messaging_type"] == "MESSAGE_TAG" and body.get("tag") != "HUMAN_AGENT":
            return self._error(100, "(#100) Param tag must be one of {...}")
        if psid in self.unavailable:
            return self._error(551, "This person isn't available right now.", 1545041)
        if psid in self.window_closed and body["messaging_type"] == "RESPONSE":
            return self._error(10, "(#10) This message is sent outside of allowed window.", 2018278)
        message = body.get("message", {})
        if "text" in message and len(message["text"]) > 2000:
            return self._error(
                100, "(#100) Length of param message[text] must be less than or equal to 2000"
            )
        quick = message.get("quick_replies", [])
        if len(quick) > 13 or any(len(q["title"]) > 20 for q in quick):
            return self._error(100, "(#100) Invalid quick_replies")
        mid = f"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_{next(self._ids)}"
        self.sent.append({**body, "message_id": mid, "at": time.time()})
        return Reply(200, {"recipient_id": psid, "message_id": mid})

    def texts_to(self, psid: str) -> list[str]:
        out = []
        for s in self.sent:
            if s["recipient"]["id"] == psid:
                message = s["message"]
                out.append(message.get("text") or f"[{message['attachment']['type']}]")
        return out


# -- webhooks, as Meta sends them ------------------------------------------------------------

_seq = itertools.count(int(time.time()) % 100000)


def now_ms() -> int:
    return int(time.time() * 1000)


def event(item: dict[str, Any], *, psid: str = PSID, page_id: str = PAGE_ID) -> dict:
    return {
        "object": "page",
        "entry": [
            {
                "id": page_id,
                "time": now_ms(),
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": page_id},
                        "timestamp": now_ms(),
                        **item,
                    }
                ],
            }
        ],
    }


def mid() -> str:
    return f"m_1457764197618:41d102a3e1ae206a38_{next(_seq)}"


def text(body: str, *, psid: str = PSID, message_id: str | None = None, **extra: Any) -> dict:
    return event({"message": {"mid": message_id or mid(), "text": body, **extra}}, psid=psid)


def attachments(items: list[dict[str, Any]], *, psid: str = PSID) -> dict:
    return event({"message": {"mid": mid(), "attachments": items}}, psid=psid)


def postback(title: str, payload: str, *, psid: str = PSID) -> dict:
    return event({"postback": {"mid": mid(), "title": title, "payload": payload}}, psid=psid)


def delivery(mids: list[str], watermark: int, *, psid: str = PSID) -> dict:
    return event({"delivery": {"mids": mids, "watermark": watermark}}, psid=psid)


def read(watermark: int, *, psid: str = PSID) -> dict:
    return event({"read": {"watermark": watermark}}, psid=psid)


def signed(body: dict[str, Any] | bytes, secret: str = APP_SECRET) -> tuple[bytes, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return raw, "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
