"""What every messenger adapter provides, and the shapes it hands over.

An adapter knows one platform's wire format and nothing of okno's storage: it verifies a
webhook, turns its body into `Incoming` messages and `StatusUpdate`s, downloads a file the
platform holds, and sends one outbound message. The hook endpoint, the delivery jobs and
the identity rules around it are shared (`okno.channels.hooks`, `okno.channels.outbound`).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import httpx

from okno.errors import BadRequest, Forbidden


@dataclass(frozen=True)
class ConfigField:
    """One setting a channel of this kind needs (a bot token, a webhook secret, ...)."""

    name: str
    help: str
    required: bool = True
    secret: bool = False  # stored encrypted, write-only (admins see that it is set)
    default: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class HookRequest:
    """A webhook call as the adapter sees it (headers lower-cased)."""

    method: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise BadRequest("the body is not JSON", code="malformed_webhook") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise BadRequest("the body is not a JSON object", code="malformed_webhook")
        return data


@dataclass(frozen=True)
class RemoteFile:
    """A file the platform keeps; the adapter's `download` fetches it by `ref`."""

    ref: str
    filename: str
    content_type: str | None = None
    size: int | None = None
    kind: str = "document"  # photo, document, voice, video, sticker


@dataclass
class Incoming:
    """One customer message, normalised (`okno.conversations.inbound.Inbound` is built
    from it once its files are downloaded)."""

    external_customer_id: str
    external_id: str
    text: str = ""
    customer_name: str = ""
    files: list[RemoteFile] = field(default_factory=list)
    location: tuple[float, float] | None = None
    button: str | None = None  # the payload of a pressed button
    # A phone number the platform vouches is the sender's own (Telegram's own-contact share).
    verified_phone: str | None = None
    contact: dict[str, str] | None = None  # a contact card someone else's (name, phone)
    # Where to answer when it is not the customer id (an e-mail thread, a WhatsApp number).
    reply_to: dict[str, str] | None = None


# Delivery states a platform reports back; only forward moves count (read implies delivered).
STATUS_ORDER = {"queued": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}


@dataclass(frozen=True)
class StatusUpdate:
    external_id: str  # the platform's id of a message okno sent ("" with ``up_to``)
    status: str  # delivered | read | failed
    error: str | None = None
    # A failure only because the customer has not written recently (WhatsApp's 24-hour
    # window): the message waits for their next message instead of failing.
    wait_for_customer: bool = False
    # A watermark (Messenger): every message okno wrote to ``recipient`` (the customer's id
    # in the channel) up to this moment has this status.
    recipient: str | None = None
    up_to: datetime | None = None


@dataclass
class HookResult:
    messages: list[Incoming] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    # What to answer the platform instead of the default (VK wants "ok", its confirmation
    # handshake wants a code; Meta's verification GET wants the challenge echoed).
    reply_text: str | None = None
    # The media type of ``reply_text`` (Viber's welcome message is a JSON body).
    reply_media_type: str = "text/plain"


@dataclass
class Polled:
    result: HookResult
    cursor: str | None  # where the next poll starts; saved once the result is stored


@dataclass
class Outbound:
    """One message to send: text, files, buttons from a bot step."""

    message_id: int
    conversation_id: int
    recipient: str  # the customer's id in the channel
    text: str
    files: list[OutboundFile] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)  # {"label", "payload"}
    ask_location: bool = False
    reply_to: dict[str, str] | None = None
    # The text to send where the channel has no buttons: options numbered in the text.
    author_kind: str = "operator"
    # When the customer last wrote in this channel (None: never): platforms with a reply
    # window (WhatsApp's and Messenger's 24 hours) decide from it how they may send.
    customer_wrote_at: datetime | None = None

    def text_with_numbered_options(self) -> str:
        if not self.buttons:
            return self.text
        lines = [f"{i}. {b['label']}" for i, b in enumerate(self.buttons, 1)]
        return f"{self.text}\n\n" + "\n".join(lines) + "\n\nОтветьте цифрой варианта."


@dataclass(frozen=True)
class OutboundFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Sent:
    external_id: str


class SendFailed(Exception):
    """The platform did not take the message.

    ``retry`` False means retrying cannot help (the customer blocked the bot, the text is
    refused); ``after`` is the platform's own wait (429 Retry-After) in seconds.
    ``wait_for_customer`` means the platform takes the message only after the customer
    writes again (WhatsApp's 24-hour window): it waits ("waiting") until they do, and the
    adapter's `Adapter.reengage` may invite them to write.
    """

    def __init__(
        self,
        reason: str,
        *,
        retry: bool = True,
        after: float | None = None,
        wait_for_customer: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.after = after
        self.wait_for_customer = wait_for_customer


def failed_response(response: httpx.Response, what: str) -> SendFailed:
    """The usual reading of an HTTP failure: 429 and 5xx retry (honouring Retry-After),
    other 4xx do not."""
    status = response.status_code
    after: float | None = None
    header = response.headers.get("retry-after")
    if header and re.fullmatch(r"\d+(\.\d+)?", header.strip()):
        after = float(header)
    retry = status == 429 or status >= 500 or status == 408
    return SendFailed(f"{what}: status {status}", retry=retry, after=after)


class Adapter(ABC):
    """One platform. Subclasses are stateless; everything per channel is in its config."""

    kind: ClassVar[str]
    title: ClassVar[str]
    fields: ClassVar[tuple[ConfigField, ...]] = ()
    # The platform's published send limits, per channel: messages per second overall and
    # the least gap between two messages to one customer.
    rate_per_second: ClassVar[float] = 20.0
    per_recipient_gap_seconds: ClassVar[float] = 0.0
    # Whether resending after an unknown outcome (a crash, a timeout) is safe because the
    # platform drops a repeat it has seen (VK's random_id, e-mail's Message-ID).
    dedups_resends: ClassVar[bool] = False
    has_buttons: ClassVar[bool] = True

    def check_config(self, config: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Refuse settings that do not fit together (BadRequest naming the field)."""

    def check_value(self, name: str, value: str) -> None:  # noqa: B027 - optional
        """Refuse one setting's value before it is stored: secrets are still readable here
        (check_config sees them encrypted). BadRequest naming the field."""

    def api_base(self, config: dict[str, Any]) -> str:
        return str(config.get("api_base") or self.default_api_base).rstrip("/")

    default_api_base: ClassVar[str] = ""

    @abstractmethod
    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        """Raise Forbidden unless the platform sent this (signature, secret token)."""

    @abstractmethod
    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        """The messages and statuses in a verified webhook; BadRequest if malformed."""

    async def download(
        self, client: httpx.AsyncClient, config: dict[str, Any], file: RemoteFile
    ) -> bytes:
        """The bytes of a file the customer sent (most platforms give a URL)."""
        response = await client.get(file.ref)
        if response.status_code != 200:
            raise SendFailed(f"download: status {response.status_code}")
        return response.content

    @abstractmethod
    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        """Send one message; raise SendFailed when the platform refuses it."""

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        """Ask the platform whether the credentials work; returns what it says about us
        (the bot's name), or raises SendFailed with the reason."""
        return "no check available for this channel"

    async def acknowledge(  # noqa: B027 - optional
        self, client: httpx.AsyncClient, config: dict[str, Any], incoming: Incoming
    ) -> None:
        """Tell the platform a stored message was taken, where it wants that (Telegram's
        answerCallbackQuery stops the button's spinner). Best effort."""

    def wants_poll(self, config: dict[str, Any]) -> bool:
        """Whether okno fetches this channel's updates itself (no webhook)."""
        return False

    async def poll(
        self, config: dict[str, Any], cursor: str | None, wait: float, limit: float
    ) -> Polled:
        """Fetch what arrived since ``cursor``, waiting up to ``wait`` seconds for it
        (``limit``: how long a call may take besides the wait)."""
        raise NotImplementedError

    async def reengage(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> str | None:
        """Invite a customer whose reply window closed to write again (a pre-approved
        WhatsApp template), once per wait; returns what was sent, for staff, or None when
        the platform has no such message. Raises SendFailed like `send`."""
        return None

    def handshake(self, config: dict[str, Any], request: HookRequest) -> str | None:
        """The answer to a platform's GET verification (Meta's hub.challenge); None: 404."""
        return None


def require_signature(ok: bool, what: str = "signature") -> None:
    if not ok:
        raise Forbidden(f"the webhook's {what} does not match", code="bad_signature")
