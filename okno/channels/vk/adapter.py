"""VK community messages through the Callback API (https://dev.vk.com/ru/api/callback/getting-started).

In: VK posts JSON events to the address set in the community's "Работа с API" settings.
Every event carries the community's ``group_id`` and the ``secret`` the bank set there; a
call with another secret or group is refused as forged. ``confirmation`` (VK checking the
address) is answered with the community's confirmation code as plain text; every other event
with plain ``ok``, as VK requires (anything else and VK retries, then stops calling).
``message_new`` becomes a customer message keyed by the VK message id, so VK's retries of the
same event are stored once; ``message_read`` marks okno's message read. Private dialogs only:
a bank does not serve customers in group chats.

Out: ``messages.send`` with a ``random_id`` derived from okno's message id and a secret seed
of this channel, so a resend after an unknown outcome is dropped by VK instead of reaching the
customer twice (``dedups_resends``). Bot buttons are an inline keyboard of text buttons whose
payload carries okno's button reference; a location request is a one-time keyboard with VK's
location button. Files are uploaded the documented way (photos via
``photos.getMessagesUploadServer``/``saveMessagesPhoto``, everything else via
``docs.getMessagesUploadServer``/``docs.save``) and attached.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any, ClassVar

import httpx

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
    failed_response,
    require_signature,
)
from okno.channels.outbound import parse_button_ref
from okno.errors import BadRequest

DEFAULT_VERSION = "5.199"
TEXT_LIMIT = 4096  # messages.send cuts longer texts; 4096 is what clients show whole
LABEL_LIMIT = 40  # a keyboard button's label
INLINE_BUTTONS_LIMIT = 6  # rows of an inline keyboard
LOCATION_PAYLOAD = json.dumps({"okno": "location"})
CHAT_PEER_BASE = 2_000_000_000  # peer ids of group chats start here
# Error codes worth another try: unknown error, too many requests per second, flood
# control, internal server error. Everything else (5 auth failed, 7/15 permission,
# 100 bad parameter, 900 blacklisted, 901 no permission to message the user, 902 privacy,
# 914 too long, 911/912 keyboard) will not change by retrying.
RETRY_ERRORS = {1: None, 6: 1.0, 9: 10.0, 10: None}
PHOTO_TYPES = ("image/jpeg", "image/png", "image/gif")


class VkAdapter(Adapter):
    kind = "vk"
    title = "ВКонтакте"
    default_api_base = "https://api.vk.com"
    fields = (
        ConfigField(
            "access_token",
            "The community's access key with the 'messages', 'photos' and 'docs' rights.",
            secret=True,
        ),
        ConfigField("group_id", "The community's numeric id (VK sends it in every event)."),
        ConfigField(
            "confirmation_code",
            "The string VK asks the server to return (Работа с API > Callback API).",
        ),
        ConfigField(
            "secret_key",
            "The 'Секретный ключ' set for the Callback API server; VK sends it in every event.",
            secret=True,
        ),
        ConfigField(
            "api_version",
            "The VK API version okno speaks.",
            required=False,
            default=DEFAULT_VERSION,
        ),
    )
    # Community tokens may call the API 20 times a second.
    rate_per_second: ClassVar[float] = 20.0
    dedups_resends: ClassVar[bool] = True

    def check_config(self, config: dict[str, Any]) -> None:
        """Also give the channel its random_id seed once: VK checks random_id against the
        community's whole history, so ids derived from okno's message ids alone would clash
        after a reinstall (VK would silently drop the new messages)."""
        group = str(config.get("group_id") or "").lstrip("-")
        if not group.isdigit() or int(group) == 0:
            raise BadRequest(
                "group_id is the community's number (e.g. 218374650)",
                code="invalid_setting",
                field="group_id",
            )
        config["group_id"] = group
        version = str(config.get("api_version") or DEFAULT_VERSION)
        parts = version.split(".")
        if (
            len(parts) != 2
            or not all(p.isdigit() for p in parts)
            or tuple(map(int, parts)) < (5, 103)
        ):
            raise BadRequest(
                "api_version must be 5.103 or later (e.g. 5.199)",
                code="invalid_setting",
                field="api_version",
            )
        if not config.get("random_id_seed"):
            config["random_id_seed"] = secrets.token_hex(16)

    # -- in -------------------------------------------------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        body = request.json_object()
        expected = str(config.get("secret_key") or "")
        got = body.get("secret")
        require_signature(
            bool(expected)
            and isinstance(got, str)
            and hmac.compare_digest(expected.encode(), got.encode()),
            "secret",
        )
        require_signature(str(body.get("group_id")) == str(config.get("group_id")), "group_id")

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        body = request.json_object()
        kind = body.get("type")
        if not isinstance(kind, str):
            raise BadRequest("not a VK event (no type)", code="malformed_webhook")
        if kind == "confirmation":
            return HookResult(reply_text=str(config.get("confirmation_code") or ""))
        obj = body.get("object")
        if kind == "message_new":
            if not isinstance(obj, dict):
                raise BadRequest("message_new without object", code="malformed_webhook")
            incoming = parse_message(obj.get("message") if "message" in obj else obj)
            return HookResult(messages=[incoming] if incoming else [], reply_text="ok")
        if kind == "message_read":
            if not isinstance(obj, dict):
                raise BadRequest("message_read without object", code="malformed_webhook")
            peer, read = obj.get("peer_id"), obj.get("read_message_id")
            if not _is_int(peer) or not _is_int(read):
                raise BadRequest(
                    "message_read needs peer_id and read_message_id", code="malformed_webhook"
                )
            return HookResult(statuses=[StatusUpdate(f"{peer}:{read}", "read")], reply_text="ok")
        # message_reply (the community's own messages), message_allow/deny, typing and the
        # rest: nothing for okno, and VK must still hear "ok".
        return HookResult(reply_text="ok")

    # -- out ------------------------------------------------------------------------------

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        peer_id = message.recipient
        attachments = [await self._upload(client, config, peer_id, f) for f in message.files]
        params: dict[str, Any] = {
            "peer_id": peer_id,
            "random_id": random_id(config, message.message_id),
        }
        if message.text:
            params["message"] = message.text[:TEXT_LIMIT]
        if attachments:
            params["attachment"] = ",".join(attachments)
        if "message" not in params and "attachment" not in params:
            raise SendFailed("nothing to send", retry=False)
        keyboard = _keyboard(message)
        if keyboard:
            params["keyboard"] = json.dumps(keyboard, ensure_ascii=False)
        result = await self._call(client, config, "messages.send", params)
        if not _is_int(result):
            raise SendFailed("messages.send gave no message id")
        return Sent(external_id=f"{peer_id}:{result}")

    async def _upload(
        self, client: httpx.AsyncClient, config: dict[str, Any], peer_id: str, file: OutboundFile
    ) -> str:
        """Upload one file for a message to ``peer_id``; returns its attachment string."""
        photo = file.content_type in PHOTO_TYPES
        if photo:
            server = await self._call(
                client, config, "photos.getMessagesUploadServer", {"peer_id": peer_id}
            )
        else:
            server = await self._call(
                client, config, "docs.getMessagesUploadServer", {"peer_id": peer_id, "type": "doc"}
            )
        url = server.get("upload_url") if isinstance(server, dict) else None
        if not isinstance(url, str) or not url:
            raise SendFailed("VK gave no upload_url")
        field = "photo" if photo else "file"
        response = await client.post(
            url, files={field: (file.filename, file.data, file.content_type)}
        )
        if response.status_code != 200:
            raise failed_response(response, "upload")
        try:
            uploaded = response.json()
        except ValueError:
            raise SendFailed("upload: the answer is not JSON") from None
        if not isinstance(uploaded, dict) or uploaded.get("error"):
            raise SendFailed(
                f"upload: {str(uploaded.get('error') if isinstance(uploaded, dict) else '')[:200]}"
            )
        if photo:
            saved = await self._call(
                client,
                config,
                "photos.saveMessagesPhoto",
                {
                    "photo": uploaded.get("photo", ""),
                    "server": uploaded.get("server", ""),
                    "hash": uploaded.get("hash", ""),
                },
            )
            item = saved[0] if isinstance(saved, list) and saved else None
            if not isinstance(item, dict):
                raise SendFailed("photos.saveMessagesPhoto gave no photo")
            suffix = f"_{item['access_key']}" if item.get("access_key") else ""
            return f"photo{item.get('owner_id')}_{item.get('id')}{suffix}"
        saved = await self._call(
            client, config, "docs.save", {"file": uploaded.get("file", ""), "title": file.filename}
        )
        doc = saved.get("doc") if isinstance(saved, dict) else None
        if not isinstance(doc, dict):
            raise SendFailed("docs.save gave no doc")
        return f"doc{doc.get('owner_id')}_{doc.get('id')}"

    async def _call(
        self, client: httpx.AsyncClient, config: dict[str, Any], method: str, params: dict[str, Any]
    ) -> Any:
        """One API method, the token in the form body (never in a URL a proxy logs)."""
        data = {
            **{k: str(v) for k, v in params.items()},
            "access_token": str(config.get("access_token") or ""),
            "v": str(config.get("api_version") or DEFAULT_VERSION),
        }
        response = await client.post(f"{self.api_base(config)}/method/{method}", data=data)
        if response.status_code != 200:
            raise failed_response(response, method)
        try:
            body = response.json()
        except ValueError:
            raise SendFailed(f"{method}: the answer is not JSON") from None
        if not isinstance(body, dict):
            raise SendFailed(f"{method}: the answer is not an object")
        error = body.get("error")
        if isinstance(error, dict):
            code = error.get("error_code")
            reason = f"{method}: error {code} {str(error.get('error_msg') or '')[:200]}".strip()
            if code in RETRY_ERRORS:
                raise SendFailed(reason, after=RETRY_ERRORS[code])
            raise SendFailed(reason, retry=False)
        if "response" not in body:
            raise SendFailed(f"{method}: the answer has no response")
        return body["response"]

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        result = await self._call(
            client, config, "groups.getById", {"group_id": config.get("group_id", "")}
        )
        groups = result.get("groups") if isinstance(result, dict) else result
        if isinstance(groups, list) and groups and isinstance(groups[0], dict):
            return str(groups[0].get("name") or groups[0].get("screen_name") or "ok")
        return "ok"


def random_id(config: dict[str, Any], message_id: int) -> int:
    """The same okno message always gets the same random_id (VK drops the repeat); spread
    over 63 bits by the channel's seed so two installations never collide."""
    seed = str(config.get("random_id_seed") or config.get("group_id") or "")
    digest = hashlib.sha256(f"{seed}:{message_id}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 1) or 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _keyboard(message: Outbound) -> dict[str, Any] | None:
    if message.buttons:
        rows = [
            [
                {
                    "action": {
                        "type": "text",
                        "label": b["label"][:LABEL_LIMIT],
                        "payload": json.dumps({"okno": b["payload"]}),
                    },
                    "color": "secondary",
                }
            ]
            for b in message.buttons
        ]
        if len(rows) <= INLINE_BUTTONS_LIMIT:
            return {"inline": True, "buttons": rows}
        return {"one_time": True, "buttons": rows[:10]}
    if message.ask_location:
        return {
            "one_time": True,
            "buttons": [[{"action": {"type": "location", "payload": LOCATION_PAYLOAD}}]],
        }
    return None


def _button(payload: Any) -> str | None:
    """okno's button reference from a pressed button's payload (a JSON string)."""
    if not isinstance(payload, str):
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    ref = data.get("okno") if isinstance(data, dict) else None
    return ref if isinstance(ref, str) and parse_button_ref(ref) is not None else None


def parse_message(message: Any) -> Incoming | None:
    """A ``message_new`` message as a customer message; None for group chats and what is
    not a person writing; BadRequest when the ids every message has are missing."""
    if not isinstance(message, dict):
        raise BadRequest("message_new without a message", code="malformed_webhook")
    from_id, peer_id, message_id = message.get("from_id"), message.get("peer_id"), message.get("id")
    if not _is_int(from_id) or not _is_int(peer_id) or not _is_int(message_id):
        raise BadRequest("from_id, peer_id and id must be numbers", code="malformed_webhook")
    assert isinstance(from_id, int) and isinstance(peer_id, int) and isinstance(message_id, int)
    if peer_id >= CHAT_PEER_BASE or from_id <= 0 or peer_id != from_id:
        return None  # a group chat, or a community writing
    incoming = Incoming(
        external_customer_id=str(peer_id),
        external_id=f"{peer_id}:{message_id}",
        text=str(message.get("text") or ""),
        customer_name="",  # events carry no name; staff see the VK id until they set one
    )
    button = _button(message.get("payload"))
    if button:
        incoming.button = button
    geo = message.get("geo")
    if isinstance(geo, dict):
        coordinates = geo.get("coordinates")
        try:
            assert isinstance(coordinates, dict)
            incoming.location = (
                float(coordinates["latitude"]),
                float(coordinates["longitude"]),
            )
        except (AssertionError, KeyError, TypeError, ValueError):
            raise BadRequest("geo without coordinates", code="malformed_webhook") from None
    notes: list[str] = []
    for item in message.get("attachments") or []:
        if isinstance(item, dict):
            _attachment(item, message_id, incoming, notes)
    if notes and not incoming.text:
        incoming.text = "\n".join(notes)
    elif notes:
        incoming.text += "\n" + "\n".join(notes)
    return incoming


def _attachment(
    item: dict[str, Any], message_id: int, incoming: Incoming, notes: list[str]
) -> None:
    kind = item.get("type")
    data = item.get(kind) if isinstance(kind, str) else None
    if not isinstance(data, dict):
        return
    if kind == "photo":
        sizes = [s for s in data.get("sizes") or [] if isinstance(s, dict) and s.get("url")]
        if sizes:
            biggest = max(sizes, key=lambda s: (s.get("width") or 0) * (s.get("height") or 0))
            incoming.files.append(
                RemoteFile(
                    ref=str(biggest["url"]),
                    filename=f"photo_{data.get('id', message_id)}.jpg",
                    content_type="image/jpeg",
                    kind="photo",
                )
            )
    elif kind == "doc" and data.get("url"):
        size = data.get("size")
        title = str(data.get("title") or f"document_{data.get('id', message_id)}")
        ext = str(data.get("ext") or "")
        if ext and not title.lower().endswith("." + ext.lower()):
            title = f"{title}.{ext}"
        incoming.files.append(
            RemoteFile(
                ref=str(data["url"]),
                filename=title,
                size=size if _is_int(size) else None,
                kind="document",
            )
        )
    elif kind == "audio_message" and (data.get("link_ogg") or data.get("link_mp3")):
        ogg = data.get("link_ogg")
        incoming.files.append(
            RemoteFile(
                ref=str(ogg or data["link_mp3"]),
                filename=f"voice_{data.get('id', message_id)}.{'ogg' if ogg else 'mp3'}",
                content_type="audio/ogg" if ogg else "audio/mpeg",
                kind="voice",
            )
        )
    elif kind == "sticker":
        notes.append("🙂 [стикер]")
    elif kind == "link" and data.get("url"):
        notes.append(str(data["url"]))
    elif kind in ("video", "audio", "wall", "market", "poll", "gift"):
        notes.append(f"[{kind}]")  # VK gives no file for these; staff see that one came
