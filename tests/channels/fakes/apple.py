"""A fake Apple Messages for Business REST API (https://register.apple.com/resources/
messages/msp-rest-api/) for the MSP side: ``POST /v1/message`` checks the bearer JWT as
Apple does and records what customers receive; ``/v1/preDownload``, ``/v1/preUpload`` and
the storage URLs move AES-256-CTR encrypted attachments. Builders make the signed,
gzip-compressed calls Apple makes to the business."""

from __future__ import annotations

import base64
import gzip
import itertools
import json
import re
import time
import uuid
from typing import Any

import jwt

from okno.channels.apple.adapter import encrypt
from tests.channels.fakes.server import FakePlatform, Recorded, Reply

MSP_ID = "8c7d2e46-0c1b-4f7e-9a55-2f1a6d1f3b10"
BUSINESS_ID = "a884eddf-1f8e-4a63-b8e3-0f6c9b3a2f77"
SECRET_BYTES = b"okno-test-messaging-api-secret-32bytes!!"
SECRET = base64.b64encode(SECRET_BYTES).decode()  # Apple hands it out Base64-encoded
CUSTOMER = "urn:mbid:AQAAY45PVG4jg/ni/q6rWSYuu9d7Ga6K22bxp0iUmPkdOwxr3yAbisjOmtYFzw6LjDqhA"


class FakeApple(FakePlatform):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[dict[str, Any]] = []  # what customers received, in order
        self.unknown: set[str] = set()  # opaque ids Apple no longer knows (closed chats)
        self.stored: dict[str, bytes] = {}  # storage path -> encrypted bytes
        self.uploads: dict[str, bytes] = {}  # upload id -> encrypted bytes okno uploaded
        self._ids = itertools.count(1)
        self.route("POST", r"/v1/message", self._message)
        self.route("GET", r"/v1/preDownload", self._pre_download)
        self.route("GET", r"/v1/preUpload", self._pre_upload)
        self.route("GET", r"/storage/(?P<path>.+)", self._storage)
        self.route("POST", r"/upload/(?P<id>\d+)", self._upload)

    # -- what a test sets up ----------------------------------------------------------------

    def add_attachment(self, data: bytes) -> dict[str, Any]:
        """Store an encrypted file as Apple does; the attachment dictionary of a message."""
        encrypted, key = encrypt(data)
        path = f"f{next(self._ids)}"
        self.stored[path] = encrypted
        return {
            "url": f"{self.url}/storage/{path}",
            "owner": "mmcs-owner-7",
            "key": key,
            "size": str(len(encrypted)),
            "signature-base64": base64.b64encode(b"\x01" * 20).decode(),
        }

    # -- the API ----------------------------------------------------------------------------

    def _authorized(self, req: Recorded) -> bool:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer":
            return False
        try:
            claims = jwt.decode(token, SECRET_BYTES, algorithms=["HS256"])
        except jwt.InvalidTokenError:
            return False
        return claims.get("iss") == MSP_ID and isinstance(claims.get("iat"), int)

    def _message(self, req: Recorded, m: re.Match[str]) -> Reply:
        if "authorization" not in req.headers:
            return Reply(401, b"")
        if not self._authorized(req):
            return Reply(403, b"")
        body = req.json()
        if req.headers.get("source-id") != BUSINESS_ID or body.get("sourceId") != BUSINESS_ID:
            return Reply(400, b"")
        if req.headers.get("destination-id") != body.get("destinationId"):
            return Reply(400, b"")
        if body["destinationId"] in self.unknown:
            return Reply(404, b"")
        if body.get("type") == "text" and not body.get("body"):
            return Reply(400, b"")
        self.sent.append(body)
        return Reply(200, b"")

    def _pre_download(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorized(req) or req.headers.get("source-id") != BUSINESS_ID:
            return Reply(403, b"")
        url = req.headers.get("url", "")
        path = url.rsplit("/storage/", 1)[-1]
        if path not in self.stored or not req.headers.get("owner"):
            return Reply(404, b"")
        return Reply(200, {"download-url": f"{self.url}/storage/{path}"})

    def _storage(self, req: Recorded, m: re.Match[str]) -> Reply:
        data = self.stored.get(m["path"])
        return Reply(200, data) if data is not None else Reply(404, b"")

    def _pre_upload(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorized(req) or req.headers.get("source-id") != BUSINESS_ID:
            return Reply(403, b"")
        upload = str(next(self._ids))
        return Reply(
            200,
            {
                "upload-url": f"{self.url}/upload/{upload}",
                "mmcs-url": f"https://p1.mmcs.example/{upload}",
                "mmcs-owner": f"owner-{upload}",
            },
        )

    def _upload(self, req: Recorded, m: re.Match[str]) -> Reply:
        self.uploads[m["id"]] = req.body
        checksum = base64.b64encode(b"\x02" * 20).decode()
        return Reply(200, {"singleFile": {"fileChecksum": checksum, "size": len(req.body)}})


# -- calls Apple makes to the business ---------------------------------------------------------


def apple_token(
    secret: bytes = SECRET_BYTES, aud: str = MSP_ID, issued: float | None = None
) -> str:
    return jwt.encode(
        {"aud": aud, "iat": int(time.time() if issued is None else issued)},
        secret,
        algorithm="HS256",
    )


def text_message(
    text: str, *, customer: str = CUSTOMER, message_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "text",
        "id": message_id or str(uuid.uuid4()),
        "sourceId": customer,
        "destinationId": BUSINESS_ID,
        "body": text,
        "locale": "ru_RU",
        **extra,
    }


def apple_call(
    message: dict[str, Any],
    *,
    token: str | None = None,
    destination: str = BUSINESS_ID,
    compress: bool = True,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of Apple's POST /message to the business."""
    raw = json.dumps(message, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "id": str(message.get("id", "")),
        "source-id": str(message.get("sourceId", "")),
        "destination-id": destination,
        "device-agent": "iPhone OS",
        "capability-list": "AUTH,LIST,TIME,QUICK,FORM",
        "Authorization": f"Bearer {token if token is not None else apple_token()}",
    }
    if compress:
        raw = gzip.compress(raw)
        headers["Content-Encoding"] = "gzip"
    return raw, headers
