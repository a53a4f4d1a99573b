"""WhatsApp Business Platform, Cloud API (https://developers.facebook.com/docs/whatsapp/cloud-api/).

In: webhooks signed with the Meta app's secret (`okno.channels.meta`), ``entry[].changes[]``
whose ``value`` holds the customer's ``messages`` (text, image, document, audio/voice, video,
sticker, location, contacts, interactive button/list replies, template quick-reply
``button``) and the ``statuses`` (sent, delivered, read, failed) of what okno sent, keyed by
the ``wamid``. The sender's ``wa_id`` is their phone number, which WhatsApp verified: okno
links the customer by it. Media is fetched in two steps: ``GET /{media-id}`` gives a short-
lived URL, which is then fetched with the same bearer token.

Out: ``POST /{phone-number-id}/messages``: text, reply buttons (up to 3 titles of 20
characters), a list (up to 10 rows) for longer choices, numbered text beyond that, a
location request, and files uploaded first with ``POST /{phone-number-id}/media``.

The 24-hour customer-service window: WhatsApp takes a free-form message only within 24
hours of the customer's last message. Outside it okno does not send the message; it marks it
"waiting", sends the channel's pre-approved template (``template_name``/``template_language``)
inviting the customer to write, and sends the waiting messages, in order, as soon as the
customer writes. A 131047 error — at once or later as a failed status — does the same.
"""

from __future__ import annotations

import mimetypes
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from okno.channels import meta
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
    StatusUpdate,
)
from okno.db.base import utcnow
from okno.errors import BadRequest

WINDOW = timedelta(hours=24)
# Leave a minute for the clocks and the send itself: a message sent at 23:59:59 may arrive
# after the window closed.
WINDOW_MARGIN = timedelta(minutes=1)
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
BODY_LIMIT = 1024  # interactive message body
REPLY_BUTTONS = 3
BUTTON_TITLE = 20
LIST_ROWS = 10
ROW_TITLE = 24
ROW_DESCRIPTION = 72
LIST_BUTTON = "Выбрать"
# https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes
REENGAGEMENT = 131047  # more than 24 hours since the customer last wrote
UNDELIVERABLE = 131026  # no WhatsApp on that number, an old app, terms not accepted
RATE_LIMITS = {4, 80007, 130429, 131048, 131056}
TEMPORARY = {1, 2, 131000, 131016, 133004}
IMAGE_TYPES = {"image/jpeg", "image/png"}
VIDEO_TYPES = {"video/mp4", "video/3gpp"}
AUDIO_TYPES = {"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}
MEDIA_KINDS = {
    "image": "photo",
    "sticker": "sticker",
    "document": "document",
    "audio": "voice",
    "video": "video",
}


class WhatsAppAdapter(Adapter):
    kind = "whatsapp"
    title = "WhatsApp"
    default_api_base = meta.DEFAULT_API_BASE
    fields = (
        ConfigField(
            "access_token",
            "A permanent access token of the business's system user (whatsapp_business_messaging).",
            secret=True,
        ),
        ConfigField("phone_number_id", "The Phone number ID of the bank's WhatsApp number."),
        meta.APP_SECRET,
        meta.VERIFY_TOKEN,
        ConfigField(
            "template_name",
            "An approved template without variables inviting the customer to write; sent when "
            "the 24-hour window is closed.",
            required=False,
        ),
        ConfigField(
            "template_language", "The template's language code.", required=False, default="ru"
        ),
        meta.API_VERSION,
    )
    # https://developers.facebook.com/docs/whatsapp/cloud-api/overview#throughput
    rate_per_second: ClassVar[float] = 80.0

    def check_config(self, config: dict[str, Any]) -> None:
        meta.check_version(config)
        if not str(config.get("phone_number_id", "")).isdigit():
            raise BadRequest(
                "phone_number_id is the number's numeric ID from WhatsApp Manager, not the "
                "phone number itself",
                code="invalid_setting",
                field="phone_number_id",
            )

    def _headers(self, config: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {config['access_token']}"}

    # -- in -------------------------------------------------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        meta.verify_signature(config, request)

    def handshake(self, config: dict[str, Any], request: HookRequest) -> str | None:
        return meta.handshake(config, request)

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        return parse_notification(request.json_object(), str(config.get("phone_number_id", "")))

    async def download(
        self, client: httpx.AsyncClient, config: dict[str, Any], file: RemoteFile
    ) -> bytes:
        headers = self._headers(config)
        response = await client.get(meta.graph_url(config, file.ref), headers=headers)
        if response.status_code != 200:
            raise SendFailed(meta.graph_error(response).describe("media"))
        try:
            url = response.json().get("url")
        except (ValueError, AttributeError):
            url = None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SendFailed("media: no url")
        # The media URL needs the same token; it lives for about five minutes.
        fetched = await client.get(url, headers=headers)
        if fetched.status_code != 200:
            raise SendFailed(f"media download: status {fetched.status_code}")
        return fetched.content

    # -- out ------------------------------------------------------------------------------

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        if window_closed(message):
            raise SendFailed(
                "outside WhatsApp's 24-hour window: waits for the customer to write",
                wait_for_customer=True,
            )
        to = message.recipient
        # Upload every file first: a refused file then fails the message before any part
        # of it reached the customer.
        media = [(f, await self._upload(client, config, f)) for f in message.files]
        first: str | None = None
        text = message.text
        interactive = _interactive(message)
        if media and not interactive and text and len(text) <= CAPTION_LIMIT:
            kind = _media_type(media[0][0])
            if kind != "audio":
                file, media_id = media.pop(0)
                first = await self._message(client, config, to, _media_body(file, media_id, text))
                text = ""
        if interactive:
            first = await self._message(client, config, to, interactive)
        elif text.strip():
            body = {"type": "text", "text": {"preview_url": False, "body": text[:TEXT_LIMIT]}}
            first = first or await self._message(client, config, to, body)
        for file, media_id in media:
            sent = await self._message(client, config, to, _media_body(file, media_id, ""))
            first = first or sent
        if first is None:
            raise SendFailed("nothing to send", retry=False)
        return Sent(external_id=first)

    async def reengage(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> str | None:
        name = str(config.get("template_name") or "")
        if not name:
            raise SendFailed(
                "the 24-hour window is closed and the channel has no template_name to invite "
                "the customer with",
                retry=False,
            )
        body = {
            "type": "template",
            "template": {
                "name": name,
                "language": {"code": config.get("template_language") or "ru"},
            },
        }
        await self._message(client, config, message.recipient, body)
        return f"invited to write with the template {name!r}"

    async def _message(
        self, client: httpx.AsyncClient, config: dict[str, Any], to: str, body: dict[str, Any]
    ) -> str:
        payload = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        payload.update(body)
        url = meta.graph_url(config, f"{config['phone_number_id']}/messages")
        response = await client.post(url, json=payload, headers=self._headers(config))
        if response.status_code == 200:
            try:
                messages = response.json().get("messages")
                return str(messages[0]["id"])
            except (ValueError, AttributeError, KeyError, IndexError, TypeError):
                raise SendFailed("messages: the answer has no message id") from None
        raise _failure(response, "messages")

    async def _upload(
        self, client: httpx.AsyncClient, config: dict[str, Any], file: OutboundFile
    ) -> str:
        url = meta.graph_url(config, f"{config['phone_number_id']}/media")
        response = await client.post(
            url,
            data={"messaging_product": "whatsapp", "type": file.content_type},
            files={"file": (file.filename, file.data, file.content_type)},
            headers=self._headers(config),
        )
        if response.status_code == 200:
            try:
                return str(response.json()["id"])
            except (ValueError, KeyError, TypeError):
                raise SendFailed("media upload: the answer has no id") from None
        raise _failure(response, "media upload")

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        url = meta.graph_url(config, str(config["phone_number_id"]))
        response = await client.get(
            url,
            params={"fields": "verified_name,display_phone_number"},
            headers=self._headers(config),
        )
        if response.status_code != 200:
            raise _failure(response, "phone number")
        data = response.json()
        return f"{data.get('verified_name', '')} {data.get('display_phone_number', '')}".strip()


def window_closed(message: Outbound) -> bool:
    """Whether the customer last wrote more than 24 hours ago (or never)."""
    wrote = message.customer_wrote_at
    return wrote is None or utcnow() - wrote > WINDOW - WINDOW_MARGIN


def _failure(response: httpx.Response, what: str) -> SendFailed:
    error = meta.graph_error(response)
    reason = error.describe(what)
    if error.code == REENGAGEMENT:
        return SendFailed(reason, wait_for_customer=True)
    if error.code in RATE_LIMITS or response.status_code == 429:
        return SendFailed(reason, after=meta.retry_after(response))
    if error.code == UNDELIVERABLE:
        return SendFailed(f"{reason} (the number may have no WhatsApp)", retry=False)
    if error.code in TEMPORARY or response.status_code >= 500 or response.status_code == 408:
        return SendFailed(reason, after=meta.retry_after(response))
    return SendFailed(reason, retry=False)


def _interactive(message: Outbound) -> dict[str, Any] | None:
    """Reply buttons (3 short titles), a list (10 rows), or None (text; more options are
    numbered in the text by `_numbered`)."""
    buttons = message.buttons
    body_text = (message.text or "Выберите вариант")[:BODY_LIMIT]
    if (
        buttons
        and len(buttons) <= REPLY_BUTTONS
        and all(0 < len(b["label"]) <= BUTTON_TITLE for b in buttons)
    ):
        return {
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": {"text": body_text},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": b["payload"][:256], "title": b["label"]}}
                        for b in buttons
                    ]
                },
            },
        }
    if buttons and len(buttons) <= LIST_ROWS:
        rows = []
        for b in buttons:
            label = b["label"] or "—"
            row: dict[str, Any] = {"id": b["payload"][:200], "title": _cut(label, ROW_TITLE)}
            if len(label) > ROW_TITLE:
                row["description"] = _cut(label, ROW_DESCRIPTION)
            rows.append(row)
        return {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "body": {"text": body_text},
                "action": {"button": LIST_BUTTON, "sections": [{"rows": rows}]},
            },
        }
    if buttons:
        text = message.text_with_numbered_options()[:TEXT_LIMIT]
        return {"type": "text", "text": {"preview_url": False, "body": text}}
    if message.ask_location:
        return {
            "type": "interactive",
            "interactive": {
                "type": "location_request_message",
                "body": {"text": body_text},
                "action": {"name": "send_location"},
            },
        }
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _media_type(file: OutboundFile) -> str:
    ctype = file.content_type.split(";")[0].strip().lower()
    if ctype in IMAGE_TYPES:
        return "image"
    if ctype in VIDEO_TYPES:
        return "video"
    if ctype in AUDIO_TYPES:
        return "audio"
    return "document"


def _media_body(file: OutboundFile, media_id: str, caption: str) -> dict[str, Any]:
    kind = _media_type(file)
    item: dict[str, Any] = {"id": media_id}
    if caption and kind != "audio":
        item["caption"] = caption[:CAPTION_LIMIT]
    if kind == "document":
        item["filename"] = file.filename
    return {"type": kind, kind: item}


# -- webhook bodies ----------------------------------------------------------------------------


def _malformed(what: str) -> BadRequest:
    return BadRequest(f"not a WhatsApp notification: {what}", code="malformed_webhook")


def parse_notification(data: dict[str, Any], phone_number_id: str) -> HookResult:
    """A webhook body as messages and statuses. Changes for another phone number of the same
    app (its own channel) and fields other than ``messages`` are left out."""
    if data.get("object") != "whatsapp_business_account":
        raise _malformed("object is not whatsapp_business_account")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise _malformed("no entry list")
    result = HookResult()
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise _malformed("an entry without changes")
        for change in changes:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                raise _malformed("a change without value")
            if change.get("field") != "messages":
                continue
            value = change["value"]
            metadata = value.get("metadata")
            number = metadata.get("phone_number_id") if isinstance(metadata, dict) else None
            if number is not None and str(number) != phone_number_id:
                continue
            names = _names(value.get("contacts"))
            for item in _list(value, "messages"):
                incoming = _message(item, names)
                if incoming is not None:
                    result.messages.append(incoming)
            for item in _list(value, "statuses"):
                status = _status(item)
                if status is not None:
                    result.statuses.append(status)
    return result


def _list(value: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = value.get(key)
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise _malformed(f"{key} is not a list of objects")
    return items


def _names(contacts: Any) -> dict[str, str]:
    names: dict[str, str] = {}
    for contact in contacts if isinstance(contacts, list) else []:
        if not isinstance(contact, dict):
            continue
        profile = contact.get("profile")
        name = profile.get("name") if isinstance(profile, dict) else None
        if contact.get("wa_id") and isinstance(name, str):
            names[str(contact["wa_id"])] = name
    return names


def _message(item: dict[str, Any], names: dict[str, str]) -> Incoming | None:
    sender, message_id, kind = item.get("from"), item.get("id"), item.get("type")
    if not isinstance(sender, str) or not sender.isdigit():
        raise _malformed("a message without a numeric from")
    if not isinstance(message_id, str) or not message_id or not isinstance(kind, str):
        raise _malformed("a message without id or type")
    if kind in ("reaction", "system", "ephemeral", "request_welcome"):
        return None  # not something a customer asks: an emoji on a message, a number change
    incoming = Incoming(
        external_customer_id=sender,
        external_id=message_id,
        customer_name=names.get(sender, ""),
        # wa_id is the number the customer registered with WhatsApp by a code it sent there
        verified_phone="+" + sender,
    )
    body = item.get(kind)
    if kind == "text":
        text = body.get("body") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise _malformed("a text message without text.body")
        incoming.text = text
    elif kind in MEDIA_KINDS:
        if not isinstance(body, dict) or not body.get("id"):
            raise _malformed(f"a {kind} without its media id")
        incoming.text = str(body.get("caption") or "")
        incoming.files.append(_remote(kind, body, message_id))
    elif kind == "location":
        if not isinstance(body, dict):
            raise _malformed("a location without coordinates")
        try:
            incoming.location = (float(body["latitude"]), float(body["longitude"]))
        except (KeyError, TypeError, ValueError):
            raise _malformed("a location without coordinates") from None
        place = ", ".join(str(body[k]) for k in ("name", "address") if body.get(k))
        incoming.text = f"📍 {place}" if place else ""
    elif kind == "contacts":
        _contact(incoming, body)
    elif kind == "interactive":
        reply = body.get(body.get("type", "")) if isinstance(body, dict) else None
        if not isinstance(reply, dict) or not isinstance(reply.get("id"), str):
            raise _malformed("an interactive reply without an id")
        incoming.button = reply["id"]
        incoming.text = str(reply.get("title") or "")
    elif kind == "button":
        if not isinstance(body, dict):
            raise _malformed("a button without payload")
        incoming.button = str(body.get("payload") or "") or None
        incoming.text = str(body.get("text") or "")
    else:
        # unsupported, unknown, order, poll...: tell the operator something came
        incoming.text = f"⚠ Сообщение WhatsApp, которое окно не показывает (тип {kind})"
    return incoming


def _remote(kind: str, body: dict[str, Any], message_id: str) -> RemoteFile:
    ctype = str(body.get("mime_type") or "application/octet-stream").split(";")[0].strip()
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename:
        ext = mimetypes.guess_extension(ctype) or ".bin"
        if ctype == "audio/ogg":
            ext = ".ogg"
        stem = {"photo": "photo", "voice": "voice"}.get(MEDIA_KINDS[kind], MEDIA_KINDS[kind])
        filename = f"{stem}_{message_id[-12:].strip('=')}{ext}"
    return RemoteFile(
        ref=str(body["id"]),
        filename=filename,
        content_type=ctype,
        kind=MEDIA_KINDS[kind],
    )


def _contact(incoming: Incoming, body: Any) -> None:
    if not isinstance(body, list) or not body or not isinstance(body[0], dict):
        raise _malformed("contacts without a contact")
    card = body[0]
    name_part = card.get("name")
    name = str(name_part.get("formatted_name") or "") if isinstance(name_part, dict) else ""
    phones = card.get("phones")
    phone = ""
    if isinstance(phones, list) and phones and isinstance(phones[0], dict):
        phone = str(phones[0].get("phone") or phones[0].get("wa_id") or "")
    incoming.contact = {"name": name, "phone": phone}
    incoming.text = f"👤 {name} {phone}".strip()


def _status(item: dict[str, Any]) -> StatusUpdate | None:
    wamid, status = item.get("id"), item.get("status")
    if not isinstance(wamid, str) or not isinstance(status, str):
        raise _malformed("a status without id or status")
    if status in ("delivered", "read"):
        return StatusUpdate(external_id=wamid, status=status)
    if status != "failed":
        return None  # sent (okno knew), deleted, warning
    errors = item.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = first.get("code")
    data = first.get("error_data")
    details = data.get("details") if isinstance(data, dict) else None
    text = str(details or first.get("message") or first.get("title") or "failed")
    error = f"#{code} {text}"[:500] if code is not None else text[:500]
    return StatusUpdate(
        external_id=wamid, status="failed", error=error, wait_for_customer=code == REENGAGEMENT
    )
