"""A fake WhatsApp Cloud API (https://developers.facebook.com/docs/whatsapp/cloud-api/) and
webhook builders with the shapes Meta documents."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import time
from collections.abc import Callable
from typing import Any

from tests.channels.fakes.server import FakePlatform, Recorded, Reply

VERSION = "v21.0"
TOKEN = "EAAGm0PX4ZCpsBAKZC-system-user-token"
PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "15550783881"
WABA_ID = "102290129340398"
APP_SECRET = "0f4e2c1d9a8b7c6d5e4f3a2b1c0d9e8f"
VERIFY_TOKEN = "okno-verify-7f3a"
TEMPLATE = "okno_reply_invite"


class FakeWhatsApp(FakePlatform):
    def __init__(self, token: str = TOKEN, phone_number_id: str = PHONE_NUMBER_ID) -> None:
        super().__init__()
        self.token = token
        self.phone_number_id = phone_number_id
        self.sent: list[dict[str, Any]] = []  # message bodies taken, in order
        self.media: dict[str, tuple[str, bytes, str]] = {}  # id -> (mime, bytes, filename)
        self.templates = {(TEMPLATE, "ru")}
        # Customers whose 24-hour window is closed on WhatsApp's side: free-form -> 131047.
        self.window_closed: set[str] = set()
        self.not_on_whatsapp: set[str] = set()
        # Called with a message's id after it is taken and before the API answers: Meta's
        # webhooks race the API's reply, so a status may reach okno before the send returns.
        self.on_sent: Callable[[str], None] | None = None
        self._ids = itertools.count(1)
        v = rf"/{VERSION}"
        self.route("POST", rf"{v}/(?P<pnid>\d+)/messages", self._messages)
        self.route("POST", rf"{v}/(?P<pnid>\d+)/media", self._upload)
        self.route("GET", rf"{v}/(?P<pnid>{phone_number_id})", self._phone)
        self.route("GET", rf"{v}/(?P<media_id>[\w.-]+)", self._media_info)
        self.route("GET", r"/whatsapp_business/attachments/(?P<media_id>[\w.-]+)", self._media)

    # -- what a test sets up ----------------------------------------------------------------

    def add_media(self, media_id: str, data: bytes, mime: str) -> None:
        self.media[media_id] = (mime, data, "")

    # -- the API ----------------------------------------------------------------------------

    def _error(self, code: int, message: str, status: int = 400, details: str = "") -> Reply:
        error: dict[str, Any] = {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AbCdEf123",
        }
        if details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        return Reply(status, {"error": error})

    def _authorised(self, req: Recorded) -> bool:
        return req.headers.get("authorization") == f"Bearer {self.token}"

    def _unauthorised(self) -> Reply:
        return self._error(190, "Invalid OAuth access token - Cannot parse access token", 401)

    def _phone(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._unauthorised()
        return Reply(
            200,
            {
                "verified_name": "Банк Окно",
                "display_phone_number": "+1 555-078-3881",
                "id": self.phone_number_id,
                "quality_rating": "GREEN",
            },
        )

    def _media_info(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._unauthorised()
        found = self.media.get(m["media_id"])
        if found is None:
            return self._error(100, "Unsupported get request.", details="media not found")
        mime, data, _ = found
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/whatsapp_business/attachments/{m['media_id']}?ext=1&hash=x",
                "mime_type": mime,
                "sha256": hashlib.sha256(data).hexdigest(),
                "file_size": len(data),
                "id": m["media_id"],
            },
        )

    def _media(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return Reply(401, b"")
        found = self.media.get(m["media_id"])
        if found is None:
            return Reply(404, b"")
        return Reply(200, found[1], headers={"Content-Type": found[0]})

    def _upload(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._unauthorised()
        form = req.form()
        upload = form.get("file")
        if form.get("messaging_product") != "whatsapp" or not isinstance(upload, tuple):
            return self._error(100, "(#100) The parameter messaging_product is required.")
        media_id = str(900000000000000 + next(self._ids))
        self.media[media_id] = (str(form.get("type", "")), upload[1], upload[0])
        return Reply(200, {"id": media_id})

    def _messages(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._unauthorised()
        if m["pnid"] != self.phone_number_id:
            return self._error(100, "Unsupported post request.")
        body = req.json()
        to, kind = str(body.get("to", "")), body.get("type", "text")
        if body.get("messaging_product") != "whatsapp" or not to:
            return self._error(100, "(#100) The parameter messaging_product is required.")
        if to in self.not_on_whatsapp:
            return self._error(131026, "Message undeliverable", details="Message undeliverable.")
        if kind == "template":
            template = body["template"]
            if (template["name"], template["language"]["code"]) not in self.templates:
                return self._error(
                    132001,
                    "(#132001) Template name does not exist in the translation",
                    details=f"template name ({template['name']}) does not exist",
                )
        elif to in self.window_closed:
            return self._error(
                131047,
                "Re-engagement message",
                details="Message failed to send because more than 24 hours have passed since "
                "the customer last replied to this number.",
            )
        problem = _check_limits(body)
        if problem:
            return self._error(131009, "(#131009) Parameter value is not valid", details=problem)
        wamid = f"wamid.HBgLMTU1NTAxMjM0NTYVAgARGBI{next(self._ids):06d}QUE="
        self.sent.append({**body, "id": wamid})
        if self.on_sent is not None:
            self.on_sent(wamid)
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to}],
                "messages": [{"id": wamid}],
            },
        )

    def texts_to(self, wa_id: str) -> list[str]:
        out = []
        for s in self.sent:
            if s["to"] != wa_id:
                continue
            if s["type"] == "text":
                out.append(s["text"]["body"])
            elif s["type"] == "interactive":
                out.append(s["interactive"]["body"]["text"])
            elif s["type"] == "template":
                out.append(f"template:{s['template']['name']}")
            else:
                out.append(s[s["type"]].get("caption", f"[{s['type']}]"))
        return out


def _check_limits(body: dict[str, Any]) -> str:
    """What the Cloud API refuses with 131009 (documented limits of interactive messages)."""
    if body.get("type") == "text" and not str(body.get("text", {}).get("body", "")).strip():
        return "text.body is empty"
    if body.get("type") != "interactive":
        return ""
    interactive = body["interactive"]
    if interactive["type"] == "button":
        buttons = interactive["action"]["buttons"]
        if not 1 <= len(buttons) <= 3:
            return "buttons: 1 to 3"
        if any(len(b["reply"]["title"]) > 20 for b in buttons):
            return "button title is longer than 20"
    if interactive["type"] == "list":
        rows = [r for s in interactive["action"]["sections"] for r in s["rows"]]
        if not 1 <= len(rows) <= 10:
            return "rows: 1 to 10"
        if any(len(r["title"]) > 24 or len(r.get("description", "")) > 72 for r in rows):
            return "row title over 24 or description over 72"
        if len(interactive["action"]["button"]) > 20:
            return "list button over 20"
    return ""


# -- webhooks, as Meta sends them ------------------------------------------------------------

_seq = itertools.count(int(time.time()) % 100000)
CUSTOMER = "79161234567"


def wamid() -> str:
    return f"wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQz{next(_seq):08d}QTZGRkYA"


def notification(value: dict[str, Any], phone_number_id: str = PHONE_NUMBER_ID) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": phone_number_id},
        **value,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": value, "field": "messages"}]}],
    }


def message(
    kind: str = "text",
    body: Any = None,
    *,
    sender: str = CUSTOMER,
    name: str = "Иван Петров",
    message_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A notification of one customer message of ``kind`` with its ``body`` object."""
    item: dict[str, Any] = {
        "from": sender,
        "id": message_id or wamid(),
        "timestamp": str(int(time.time())),
        "type": kind,
    }
    if body is not None:
        item[kind] = body
    item.update(extra)
    return notification(
        {"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [item]}
    )


def text(body: str, **kw: Any) -> dict[str, Any]:
    return message("text", {"body": body}, **kw)


def status(
    wamid_: str, state: str, *, recipient: str = CUSTOMER, errors: list[dict] | None = None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wamid_,
        "status": state,
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
    }
    if state != "failed":
        item["conversation"] = {
            "id": "f5fdae3920125a39a1e6a23e5f877c16",
            "origin": {"type": "service"},
        }
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "service"}
    if errors:
        item["errors"] = errors
    return notification({"statuses": [item]})


def signed(body: dict[str, Any] | bytes, secret: str = APP_SECRET) -> tuple[bytes, str]:
    raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return raw, "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
