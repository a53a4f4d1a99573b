"""Facebook Messenger Platform (https://developers.facebook.com/docs/messenger-platform/).

In: webhooks signed with the Meta app's secret (`okno.channels.meta`) for the Page's
``messages``, ``messaging_postbacks``, ``message_deliveries`` and ``message_reads`` fields:
``entry[].messaging[]`` events from a customer's page-scoped id (PSID): a message (text,
image/file/audio/video attachments by URL, a location, a quick-reply payload), a postback
(a pressed button), a delivery (mids and a watermark) and a read (a watermark only: every
message sent before that moment was read).

Out: the Send API, ``POST /me/messages?access_token=…``: text (in pieces of 2,000
characters) with quick replies for a bot step's buttons (up to 13, titles of 20
characters), and files uploaded in the same call as multipart ``filedata``.

The 24-hour rule: a Page answers freely within 24 hours of the customer's last message
(messaging_type RESPONSE). After that only an operator's message may still go, tagged
HUMAN_AGENT, for up to 7 days (the app needs Meta's Human Agent permission; setting
``human_agent`` to ``no`` turns this off). Anything else waits ("waiting") until the
customer writes again, then goes in order. Messenger has no template to invite them.
"""

from __future__ import annotations

import json
import posixpath
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

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

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
WINDOW_MARGIN = timedelta(minutes=1)
TEXT_LIMIT = 2000
QUICK_REPLIES = 13
QUICK_REPLY_TITLE = 20
QUICK_REPLY_PAYLOAD = 1000
# https://developers.facebook.com/docs/messenger-platform/error-codes
OUTSIDE_WINDOW = (10, 2018278)
RATE_LIMITS = {4, 17, 32, 613}
TEMPORARY = {1, 2, 1200}
ATTACHMENT_KINDS = {"image": "photo", "video": "video", "audio": "voice", "file": "document"}


class FacebookAdapter(Adapter):
    kind = "facebook"
    title = "Facebook Messenger"
    default_api_base = meta.DEFAULT_API_BASE
    fields = (
        ConfigField(
            "page_access_token",
            "The Page's access token (pages_messaging) from the app's Messenger settings.",
            secret=True,
        ),
        meta.APP_SECRET,
        meta.VERIFY_TOKEN,
        ConfigField(
            "page_id",
            "The Page's ID; events of other Pages of the same app are left to their channels.",
            required=False,
        ),
        ConfigField(
            "human_agent",
            "yes: operators may answer for 7 days with the HUMAN_AGENT tag (needs Meta's "
            "Human Agent permission); no: 24 hours only.",
            required=False,
            default="yes",
        ),
        meta.API_VERSION,
    )

    def check_config(self, config: dict[str, Any]) -> None:
        meta.check_version(config)
        if config.get("human_agent", "yes") not in ("yes", "no"):
            raise BadRequest(
                "human_agent is yes or no", code="invalid_setting", field="human_agent"
            )
        page_id = config.get("page_id")
        if page_id and not str(page_id).isdigit():
            raise BadRequest("page_id is a number", code="invalid_setting", field="page_id")

    def _url(self, config: dict[str, Any], path: str) -> str:
        return meta.graph_url(config, path)

    def _token(self, config: dict[str, Any]) -> dict[str, str]:
        return {"access_token": str(config["page_access_token"])}

    # -- in -------------------------------------------------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        meta.verify_signature(config, request)

    def handshake(self, config: dict[str, Any], request: HookRequest) -> str | None:
        return meta.handshake(config, request)

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        return parse_event(request.json_object(), str(config.get("page_id") or ""))

    # `Adapter.download` fetches the attachment's URL: Messenger's CDN needs no token.

    # -- out ------------------------------------------------------------------------------

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        envelope = self._envelope(config, message)
        text, quick = _text_and_quick_replies(message)
        pieces = _pieces(text)
        ids: list[str] = []
        # Quick replies show only under the newest message: files go first when there are
        # buttons; otherwise the text leads, as the operator wrote it.
        files_first = bool(quick)
        if files_first:
            ids += [await self._file(client, config, envelope, f) for f in message.files]
        for i, piece in enumerate(pieces):
            body: dict[str, Any] = {"text": piece}
            if quick and i == len(pieces) - 1:
                body["quick_replies"] = quick
            ids.append(await self._call(client, config, {**envelope, "message": body}))
        if not files_first:
            ids += [await self._file(client, config, envelope, f) for f in message.files]
        if not ids:
            raise SendFailed("nothing to send", retry=False)
        return Sent(external_id=ids[0])

    def _envelope(self, config: dict[str, Any], message: Outbound) -> dict[str, Any]:
        """Recipient and messaging type, by the 24-hour rule."""
        envelope: dict[str, Any] = {"recipient": {"id": message.recipient}}
        wrote = message.customer_wrote_at
        since = utcnow() - wrote if wrote is not None else None
        if since is not None and since < STANDARD_WINDOW - WINDOW_MARGIN:
            envelope["messaging_type"] = "RESPONSE"
            return envelope
        human = message.author_kind == "operator" and config.get("human_agent", "yes") == "yes"
        if human and since is not None and since < HUMAN_AGENT_WINDOW - WINDOW_MARGIN:
            envelope["messaging_type"] = "MESSAGE_TAG"
            envelope["tag"] = "HUMAN_AGENT"
            return envelope
        raise SendFailed(
            "outside Messenger's reply window: waits for the customer to write",
            wait_for_customer=True,
        )

    async def _file(
        self,
        client: httpx.AsyncClient,
        config: dict[str, Any],
        envelope: dict[str, Any],
        file: OutboundFile,
    ) -> str:
        attachment = {
            "attachment": {"type": _attachment_type(file), "payload": {"is_reusable": False}}
        }
        data = {
            "recipient": json.dumps(envelope["recipient"]),
            "messaging_type": envelope["messaging_type"],
            "message": json.dumps(attachment),
        }
        if "tag" in envelope:
            data["tag"] = envelope["tag"]
        return await self._call(
            client,
            config,
            data,
            files={"filedata": (file.filename, file.data, file.content_type)},
        )

    async def _call(
        self,
        client: httpx.AsyncClient,
        config: dict[str, Any],
        body: dict[str, Any],
        files: dict[str, Any] | None = None,
    ) -> str:
        url = self._url(config, "me/messages")
        if files:
            response = await client.post(url, params=self._token(config), data=body, files=files)
        else:
            response = await client.post(url, params=self._token(config), json=body)
        if response.status_code == 200:
            try:
                return str(response.json()["message_id"])
            except (ValueError, KeyError, TypeError):
                raise SendFailed("messages: the answer has no message_id") from None
        raise _failure(response)

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        response = await client.get(
            self._url(config, "me"), params={**self._token(config), "fields": "id,name"}
        )
        if response.status_code != 200:
            raise _failure(response)
        data = response.json()
        return str(data.get("name") or data.get("id") or "ok")


def _failure(response: httpx.Response) -> SendFailed:
    # Never put the URL in the reason: it carries the Page token.
    error = meta.graph_error(response)
    reason = error.describe("send")
    if (error.code, error.subcode) == OUTSIDE_WINDOW:
        return SendFailed(reason, wait_for_customer=True)
    if error.code in RATE_LIMITS or response.status_code == 429:
        return SendFailed(reason, after=meta.retry_after(response))
    if error.code in TEMPORARY or response.status_code >= 500 or response.status_code == 408:
        return SendFailed(reason, after=meta.retry_after(response))
    # 551 (the person is not available), 10 and 200-299 (permissions), 190 (the token),
    # 100 (a bad request): retrying cannot help.
    return SendFailed(reason, retry=False)


def _text_and_quick_replies(message: Outbound) -> tuple[str, list[dict[str, str]]]:
    """The text and its quick replies: the buttons themselves when they fit (13 titles of
    20 characters); numbered in the text with numbered quick replies when a label is
    longer; numbered text only beyond 13 (the bot understands a typed number)."""
    buttons = message.buttons
    if not buttons:
        return message.text, []
    if len(buttons) > QUICK_REPLIES:
        return message.text_with_numbered_options(), []
    if all(0 < len(b["label"]) <= QUICK_REPLY_TITLE for b in buttons):
        text = message.text or "Выберите вариант"
        titles = [b["label"] for b in buttons]
    else:
        text = message.text_with_numbered_options()
        titles = [_cut(f"{i}. {b['label']}", QUICK_REPLY_TITLE) for i, b in enumerate(buttons, 1)]
    quick = [
        {"content_type": "text", "title": title, "payload": b["payload"][:QUICK_REPLY_PAYLOAD]}
        for title, b in zip(titles, buttons, strict=True)
    ]
    return text, quick


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _pieces(text: str) -> list[str]:
    """Text in pieces Messenger takes (2,000 characters), cut at a line or word end."""
    text = text.strip()
    pieces = []
    while len(text) > TEXT_LIMIT:
        cut = max(text.rfind("\n", 0, TEXT_LIMIT), text.rfind(" ", 0, TEXT_LIMIT))
        if cut < TEXT_LIMIT // 2:
            cut = TEXT_LIMIT
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    if text:
        pieces.append(text)
    return pieces


def _attachment_type(file: OutboundFile) -> str:
    ctype = file.content_type.lower()
    if ctype.startswith("image/"):
        return "image"
    if ctype.startswith("video/"):
        return "video"
    if ctype.startswith("audio/"):
        return "audio"
    return "file"


# -- webhook bodies ----------------------------------------------------------------------------


def _malformed(what: str) -> BadRequest:
    return BadRequest(f"not a Messenger webhook: {what}", code="malformed_webhook")


def parse_event(data: dict[str, Any], page_id: str) -> HookResult:
    """A webhook body as messages and statuses; echoes of the Page's own messages, other
    Pages' events and events okno does not use are left out."""
    if data.get("object") != "page":
        raise _malformed("object is not page")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise _malformed("no entry list")
    result = HookResult()
    for entry in entries:
        if not isinstance(entry, dict):
            raise _malformed("an entry is not an object")
        if page_id and str(entry.get("id")) != page_id:
            continue
        events = entry.get("messaging", [])
        if not isinstance(events, list):
            raise _malformed("messaging is not a list")
        for event in events:
            if not isinstance(event, dict):
                raise _malformed("an event is not an object")
            _event(event, result)
    return result


def _moment(value: Any) -> datetime:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _malformed("a watermark is not a time in milliseconds")
    return datetime.fromtimestamp(value / 1000, UTC)


def _event(event: dict[str, Any], result: HookResult) -> None:
    sender = event.get("sender")
    psid = sender.get("id") if isinstance(sender, dict) else None
    if not isinstance(psid, str) or not psid:
        raise _malformed("an event without sender.id")
    message, postback = event.get("message"), event.get("postback")
    delivery, read = event.get("delivery"), event.get("read")
    if isinstance(message, dict):
        if message.get("is_echo"):
            return  # what the Page itself sent (okno, or someone in the Page inbox)
        incoming = _message(psid, message)
        if incoming is not None:
            result.messages.append(incoming)
    elif isinstance(postback, dict):
        payload = postback.get("payload")
        if not isinstance(payload, str):
            raise _malformed("a postback without payload")
        mid = postback.get("mid") or f"pb:{psid}:{event.get('timestamp')}"
        result.messages.append(
            Incoming(
                external_customer_id=psid,
                external_id=str(mid),
                text=str(postback.get("title") or ""),
                button=payload,
            )
        )
    elif isinstance(delivery, dict):
        mids = delivery.get("mids") or []
        if not isinstance(mids, list):
            raise _malformed("delivery.mids is not a list")
        for mid in mids:
            if isinstance(mid, str):
                result.statuses.append(StatusUpdate(external_id=mid, status="delivered"))
        if "watermark" in delivery:
            result.statuses.append(
                StatusUpdate(
                    external_id="",
                    status="delivered",
                    recipient=psid,
                    up_to=_moment(delivery["watermark"]),
                )
            )
    elif isinstance(read, dict):
        result.statuses.append(
            StatusUpdate(
                external_id="",
                status="read",
                recipient=psid,
                up_to=_moment(read.get("watermark")),
            )
        )


def _message(psid: str, message: dict[str, Any]) -> Incoming | None:
    mid = message.get("mid")
    if not isinstance(mid, str) or not mid:
        raise _malformed("a message without mid")
    incoming = Incoming(
        external_customer_id=psid, external_id=mid, text=str(message.get("text") or "")
    )
    quick = message.get("quick_reply")
    if isinstance(quick, dict) and isinstance(quick.get("payload"), str):
        incoming.button = quick["payload"]
    attachments = message.get("attachments") or []
    if not isinstance(attachments, list):
        raise _malformed("attachments is not a list")
    for n, attachment in enumerate(attachments):
        if not isinstance(attachment, dict):
            raise _malformed("an attachment is not an object")
        kind = attachment.get("type")
        payload = attachment.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        if kind == "location":
            coordinates = payload.get("coordinates")
            try:
                assert isinstance(coordinates, dict)
                incoming.location = (float(coordinates["lat"]), float(coordinates["long"]))
            except (AssertionError, KeyError, TypeError, ValueError):
                raise _malformed("a location without coordinates") from None
        elif kind in ATTACHMENT_KINDS:
            url = payload.get("url")
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise _malformed(f"an {kind} attachment without url")
            incoming.files.append(
                RemoteFile(
                    ref=url,
                    filename=_filename(url, ATTACHMENT_KINDS[kind], mid, n),
                    kind=ATTACHMENT_KINDS[kind],
                )
            )
        elif kind == "fallback":  # a shared link
            link = payload.get("url") or attachment.get("url")
            title = payload.get("title") or attachment.get("title")
            extra = " ".join(str(x) for x in (title, link) if x)
            incoming.text = f"{incoming.text}\n{extra}".strip()
    if not incoming.text and not incoming.files and incoming.location is None:
        return None  # a sticker-less "like", an empty event: nothing to show
    return incoming


def _filename(url: str, kind: str, mid: str, n: int) -> str:
    name = unquote(posixpath.basename(urlsplit(url).path))
    if name and "." in name and len(name) <= 120:
        return name
    ext = {"photo": ".jpg", "video": ".mp4", "voice": ".mp4"}.get(kind, "")
    return f"{kind}_{mid[-10:]}_{n}{ext}"
