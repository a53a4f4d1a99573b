"""Apple Messages for Business through a messaging service provider (MSP): Apple's
Messages for Business REST API (https://register.apple.com/resources/messages/msp-rest-api/).

In: Apple (or the MSP relaying Apple's call) posts each event to the business's /message
endpoint, here ``/hooks/apple/{channel_id}``, with the headers ``Authorization: Bearer
<JWT>``, ``id`` (the message UUID), ``source-id`` (the customer's opaque id),
``destination-id`` (the business id), and a JSON body (gzip-compressed as Apple sends it,
or plain) ``{"v": 1, "type", "id", "sourceId", "destinationId", "body", "attachments",
"interactiveData"}``. The JWT is HS256-signed with the MSP's Messaging API secret (given
Base64-encoded: decoded before use) and names the MSP id as ``aud``; a call whose token
does not verify, is for another MSP, is older than an hour or whose destination is not this
business is refused. Taken: ``text`` (with attachments, which are AES-256-CTR encrypted
and fetched through ``/preDownload``) and ``interactive`` replies to the quick replies and
list pickers okno sent. ``typing_start``/``typing_end``/``close`` and tapbacks carry no
customer text and are answered 200 without storing anything. Replays are dropped by the
message id.

Out: ``POST {api_base}/message`` with the same headers (``source-id`` = business id,
``destination-id`` = customer, ``auto-reply: true`` for the bot) and a JWT with ``iss`` = MSP
id: ``type: text`` (files: encrypted, uploaded via ``/preUpload``, listed in ``attachments``
with a U+FFFC marker each), buttons as an ``interactive`` quick reply (2-5 short options)
or list picker. Apple's REST API reports no delivered or read status: a message is "sent"
once Apple answers 200.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import uuid
import zlib
from typing import Any, ClassVar

import httpx
import jwt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from okno.channels.adapter import (
    Adapter,
    ConfigField,
    HookRequest,
    HookResult,
    Incoming,
    Outbound,
    OutboundFile,
    RemoteFile,
    SendFailed,
    Sent,
    failed_response,
    require_signature,
)
from okno.errors import BadRequest, Forbidden

BID = (
    "com.apple.messages.MSMessageExtensionBalloonPlugin:0000000000:"
    "com.apple.icloud.apps.messages.business.extension"
)
OBJECT_REPLACEMENT = "\ufffc"  # where an attachment sits in a text message's body
MAX_TOKEN_AGE_SECONDS = 3600  # an older bearer token is refused (a captured one is useless)
CLOCK_SKEW_SECONDS = 300
MAX_BODY = 2 * 1024 * 1024  # after gunzip
QUICK_REPLY_ITEMS = (2, 5)  # Apple shows 2 to 5 quick replies ...
QUICK_REPLY_TITLE = 24  # ... of one line each
PICKER_TITLE = "Выберите вариант"
IGNORED_TYPES = ("typing_start", "typing_end", "close")
# Apple answers these when retrying cannot help: malformed, refused credentials, unknown
# customer (the conversation was closed and the opaque id is gone).
PERMANENT = (400, 401, 403, 404)


def _secret(config: dict[str, Any]) -> bytes:
    """The Messaging API secret as Apple gives it (Base64) decoded to the HMAC key."""
    value = str(config.get("api_secret") or "").strip()
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SendFailed("api_secret is not the Base64 string Apple gave", retry=False) from None


def message_uuid(channel_id: object, message_id: int, part: int = 0) -> str:
    """The UUID okno gives (a part of) its message at Apple: the same on every retry."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"okno:apple:{channel_id}:{message_id}:{part}"))


def _ctr(key: bytes) -> Cipher[modes.CTR]:
    """AES-256-CTR with a zero counter, as Apple encrypts attachments."""
    return Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16))


def decrypt(data: bytes, key_hex: str) -> bytes:
    """An attachment's plain bytes; the key is hex with Apple's ``00`` prefix."""
    key = bytes.fromhex(key_hex[2:] if key_hex.startswith("00") else key_hex)
    decryptor = _ctr(key).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def encrypt(data: bytes) -> tuple[bytes, str]:
    """(encrypted bytes, the key as Apple wants it: ``00`` + hex) under a fresh key."""
    key = os.urandom(32)
    encryptor = _ctr(key).encryptor()
    return encryptor.update(data) + encryptor.finalize(), "00" + key.hex()


def _gunzip(body: bytes) -> bytes:
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, MAX_BODY + 1)
    except zlib.error:
        raise BadRequest("the gzip body is corrupt", code="malformed_webhook") from None
    if len(data) > MAX_BODY or inflater.unconsumed_tail:
        raise BadRequest("the body is too large once unpacked", code="malformed_webhook")
    return data


class AppleAdapter(Adapter):
    kind = "apple"
    title = "Apple Messages for Business"
    default_api_base = "https://mspgw.push.apple.com/v1"
    fields = (
        ConfigField(
            "business_id",
            "The Messages for Business account id (Apple Business Register; the "
            "destination-id of customers' messages).",
        ),
        ConfigField("msp_id", "The messaging service provider's id (the JWT's aud / iss)."),
        ConfigField(
            "api_secret",
            "The Messaging API secret of the MSP, Base64-encoded as Apple gives it.",
            secret=True,
        ),
    )
    # Apple publishes no send rate; one message a second to one customer keeps order and
    # the Messages UI readable.
    rate_per_second: ClassVar[float] = 20.0
    per_recipient_gap_seconds: ClassVar[float] = 0.5

    def check_value(self, name: str, value: str) -> None:
        if name == "api_secret":
            try:
                _secret({"api_secret": value})
            except SendFailed:
                raise BadRequest(
                    "api_secret must be the Base64 string Apple Business Register shows",
                    code="invalid_setting",
                    field=name,
                ) from None

    # -- in -------------------------------------------------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        require_signature(scheme.lower() == "bearer" and bool(token.strip()), "authorization")
        try:
            key = _secret(config)
        except SendFailed:
            raise Forbidden(
                "the channel's api_secret is not Base64; enter it as Apple gave it",
                code="bad_signature",
            ) from None
        try:
            claims = jwt.decode(
                token.strip(),
                key,
                algorithms=["HS256"],
                audience=str(config.get("msp_id") or ""),
                options={"require": ["aud", "iat"]},
                leeway=CLOCK_SKEW_SECONDS,
            )
        except jwt.ExpiredSignatureError:
            raise Forbidden("the webhook's token has expired", code="token_expired") from None
        except jwt.InvalidTokenError:
            raise Forbidden(
                "the webhook's authorization token does not verify", code="bad_signature"
            ) from None
        issued = claims.get("iat")
        if not isinstance(issued, int | float) or time.time() - issued > MAX_TOKEN_AGE_SECONDS:
            raise Forbidden("the webhook's token is too old", code="token_expired")
        destination = request.headers.get("destination-id", "")
        if destination != str(config.get("business_id") or ""):
            raise Forbidden(
                "the message is for another business (destination-id)",
                code="wrong_destination",
            )

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        body = _gunzip(request.body)
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise BadRequest("the body is not JSON", code="malformed_webhook") from None
        if not isinstance(data, dict):
            raise BadRequest("the body is not a JSON object", code="malformed_webhook")
        incoming = parse_message(data, request.headers)
        return HookResult(messages=[incoming] if incoming else [])

    async def download(
        self, client: httpx.AsyncClient, config: dict[str, Any], file: RemoteFile
    ) -> bytes:
        ref = json.loads(file.ref)
        signature = ref.get("signature-base64") or ""
        if not signature and ref.get("signature"):
            signature = base64.b64encode(bytes.fromhex(ref["signature"])).decode()
        response = await client.get(
            f"{self.api_base(config)}/preDownload",
            headers={
                "Authorization": f"Bearer {self._token(config)}",
                "source-id": str(config["business_id"]),
                "url": ref["url"],
                "owner": ref["owner"],
                "signature": signature,
            },
        )
        if response.status_code != 200:
            raise SendFailed(f"preDownload: status {response.status_code}")
        url = response.json().get("download-url")
        if not isinstance(url, str) or not url:
            raise SendFailed("preDownload gave no download-url")
        encrypted = await client.get(url)
        if encrypted.status_code != 200:
            raise SendFailed(f"attachment download: status {encrypted.status_code}")
        return decrypt(encrypted.content, ref["key"])

    # -- out ------------------------------------------------------------------------------

    def _token(self, config: dict[str, Any]) -> str:
        return jwt.encode(
            {"iss": str(config["msp_id"]), "iat": int(time.time())},
            _secret(config),
            algorithm="HS256",
        )

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        channel = config.get("_channel_id", 0)
        body = message.text
        attachments = [await self._upload(client, config, f) for f in message.files]
        parts: list[dict[str, Any]] = []
        if message.buttons:
            quick = _quick_reply_fits(message.buttons)
            if not quick and body:  # a list picker's bubble holds a short title only
                parts.append(_text(body, []))
            parts.append(_interactive(message, quick))
            body = ""  # said above the options
        if attachments:
            marker = OBJECT_REPLACEMENT * len(attachments)
            parts.append(_text(f"{body}\n{marker}" if body else marker, attachments))
        elif body:
            parts.append(_text(body, []))
        if not parts:
            raise SendFailed("nothing to send", retry=False)
        # One okno message may be two Apple messages (a text, then a list picker); each
        # keeps its UUID on a retry.
        ids = [message_uuid(channel, message.message_id, i) for i in range(len(parts))]
        for part_id, part in zip(ids, parts, strict=True):
            await self._post(client, config, message, part_id, part)
        return Sent(external_id=ids[0])

    async def _post(
        self,
        client: httpx.AsyncClient,
        config: dict[str, Any],
        message: Outbound,
        message_id: str,
        content: dict[str, Any],
    ) -> None:
        payload = {
            "v": 1,
            "id": message_id,
            "sourceId": str(config["business_id"]),
            "destinationId": message.recipient,
            **content,
        }
        response = await client.post(
            f"{self.api_base(config)}/message",
            content=json.dumps(payload, ensure_ascii=False).encode(),
            headers={
                "Authorization": f"Bearer {self._token(config)}",
                "Content-Type": "application/json",
                "id": message_id,
                "source-id": str(config["business_id"]),
                "destination-id": message.recipient,
                "auto-reply": "true" if message.author_kind == "bot" else "false",
            },
        )
        if response.status_code != 200:
            failure = failed_response(response, "message")
            if response.status_code in PERMANENT:
                failure.retry = False
            raise failure

    async def _upload(
        self, client: httpx.AsyncClient, config: dict[str, Any], file: OutboundFile
    ) -> dict[str, Any]:
        """Encrypt a file, get an upload address from /preUpload, upload it: the
        attachment dictionary for the message."""
        encrypted, key = encrypt(file.data)
        response = await client.get(
            f"{self.api_base(config)}/preUpload",
            headers={
                "Authorization": f"Bearer {self._token(config)}",
                "source-id": str(config["business_id"]),
                "size": str(len(encrypted)),
            },
        )
        if response.status_code != 200:
            raise failed_response(response, "preUpload")
        slot = response.json()
        uploaded = await client.post(
            str(slot["upload-url"]),
            content=encrypted,
            headers={"Content-Type": file.content_type, "content-length": str(len(encrypted))},
        )
        if uploaded.status_code != 200:
            raise failed_response(uploaded, "attachment upload")
        single = (uploaded.json() or {}).get("singleFile") or {}
        checksum = single.get("fileChecksum")
        if not checksum:
            raise SendFailed("the upload gave no fileChecksum")
        return {
            "name": file.filename,
            "mimeType": file.content_type,
            "size": str(len(encrypted)),
            "signature-base64": checksum,
            "url": slot["mmcs-url"],
            "owner": slot["mmcs-owner"],
            "key": key,
        }

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        """Apple has no "who am I" call; a signed /preUpload of one byte proves the MSP id
        and secret are accepted without sending anything to a customer."""
        response = await client.get(
            f"{self.api_base(config)}/preUpload",
            headers={
                "Authorization": f"Bearer {self._token(config)}",
                "source-id": str(config["business_id"]),
                "size": "1",
            },
        )
        if response.status_code != 200:
            raise failed_response(response, "preUpload")
        return f"business {config['business_id']}"


def _text(body: str, attachments: list[dict[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {"type": "text", "body": body}
    if attachments:
        content["attachments"] = attachments
    return content


def _quick_reply_fits(buttons: list[dict[str, str]]) -> bool:
    low, high = QUICK_REPLY_ITEMS
    return low <= len(buttons) <= high and all(
        len(b["label"]) <= QUICK_REPLY_TITLE for b in buttons
    )


def _interactive(message: Outbound, quick: bool) -> dict[str, Any]:
    """A bot step's buttons as Apple's quick reply (the text above the options) or, when
    they do not fit one, a list picker; each option's identifier is okno's button ref."""
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"okno:apple:req:{message.message_id}"))
    items = [{"identifier": b["payload"], "title": b["label"]} for b in message.buttons]
    if quick:
        data: dict[str, Any] = {
            "quick-reply": {"summaryText": message.text or PICKER_TITLE, "items": items},
            "version": "1.0",
            "requestIdentifier": request_id,
        }
        return {"type": "interactive", "interactiveData": {"bid": BID, "data": data}}
    section = {
        "title": PICKER_TITLE,
        "order": 0,
        "multipleSelection": False,
        "items": [{**item, "order": i, "style": "default"} for i, item in enumerate(items)],
    }
    return {
        "type": "interactive",
        "interactiveData": {
            "bid": BID,
            "data": {
                "listPicker": {"sections": [section]},
                "version": "1.0",
                "requestIdentifier": request_id,
            },
            "receivedMessage": {"title": PICKER_TITLE, "style": "icon"},
            "replyMessage": {"title": "Выбрано", "style": "icon"},
        },
    }


def parse_message(data: dict[str, Any], headers: dict[str, str]) -> Incoming | None:
    """One Apple message as a customer message; None for events without customer content
    (typing, close). BadRequest when it is not an Apple message."""
    kind = data.get("type")
    message_id = data.get("id") or headers.get("id")
    customer = data.get("sourceId") or headers.get("source-id")
    if not isinstance(kind, str) or not isinstance(message_id, str) or not message_id:
        raise BadRequest("not an Apple message (no type or id)", code="malformed_webhook")
    if not isinstance(customer, str) or not customer:
        raise BadRequest("an Apple message without sourceId", code="malformed_webhook")
    if kind in IGNORED_TYPES:
        return None
    incoming = Incoming(external_customer_id=customer, external_id=message_id)
    if kind == "text":
        text = data.get("body")
        if text is not None and not isinstance(text, str):
            raise BadRequest("body must be a string", code="malformed_webhook")
        incoming.text = (text or "").replace(OBJECT_REPLACEMENT, "").strip()
        attachments = data.get("attachments") or []
        if not isinstance(attachments, list):
            raise BadRequest("attachments must be a list", code="malformed_webhook")
        for item in attachments:
            incoming.files.append(_remote_file(item))
        return incoming if incoming.text or incoming.files else None
    if kind == "interactive":
        _interactive_reply(data, incoming)
        return incoming if incoming.text or incoming.button else None
    return None  # richLink echoes, tapbacks and other types carry nothing to answer


def _remote_file(item: Any) -> RemoteFile:
    if not isinstance(item, dict) or not all(
        isinstance(item.get(k), str) and item.get(k) for k in ("url", "owner", "key")
    ):
        raise BadRequest("an attachment without url, owner or key", code="malformed_webhook")
    content_type = str(item.get("mimeType") or "application/octet-stream")
    size = item.get("size")
    ref = {
        k: item[k] for k in ("url", "owner", "key", "signature", "signature-base64") if k in item
    }
    return RemoteFile(
        ref=json.dumps(ref),
        filename=str(item.get("name") or "attachment"),
        content_type=content_type,
        size=int(size) if isinstance(size, str | int) and str(size).isdigit() else None,
        kind="photo" if content_type.startswith("image/") else "document",
    )


def _interactive_reply(data: dict[str, Any], incoming: Incoming) -> None:
    """The option the customer picked in a quick reply or a list picker okno sent."""
    interactive = data.get("interactiveData")
    if not isinstance(interactive, dict):
        ref = data.get("interactiveDataRef")
        if isinstance(ref, dict):  # a reply larger than 10 KB: only its title is at hand
            incoming.text = str(ref.get("title") or "")
            return
        raise BadRequest("an interactive message without interactiveData", code="malformed_webhook")
    inner = interactive.get("data")
    if not isinstance(inner, dict):
        raise BadRequest("interactiveData without data", code="malformed_webhook")
    quick = inner.get("quick-reply")
    if isinstance(quick, dict):
        picked = quick.get("selectedIdentifier")
        incoming.button = str(picked) if picked is not None else None
        items = quick.get("items")
        index = quick.get("selectedIndex")
        if isinstance(items, list) and isinstance(index, int) and 0 <= index < len(items):
            item = items[index]
            if isinstance(item, dict):
                incoming.text = str(item.get("title") or "")
        return
    picker = inner.get("listPicker")
    if isinstance(picker, dict):
        for section in picker.get("sections") or []:
            for item in section.get("items") or [] if isinstance(section, dict) else []:
                if isinstance(item, dict) and item.get("identifier") is not None:
                    incoming.button = str(item["identifier"])
                    incoming.text = str(item.get("title") or "")
                    break
            if incoming.button:
                break
    reply = inner.get("replyMessage") or interactive.get("replyMessage")
    if not incoming.text and isinstance(reply, dict):
        incoming.text = str(reply.get("title") or "")
