"""E-mail: the bank's mailbox read over IMAP, answers sent over SMTP.

In: okno polls the mailbox (`wants_poll` is always true; mail has no webhooks). Every
letter from a person becomes a customer message: the sender's address (lower-cased) is the
customer, the Message-ID the message's id, the text the plain part (or the HTML part made
text) without the quoted history and signature, attachments as files within okno's
attachment rules. A customer's answer to okno's letter comes from the same address, so it
lands in the same customer's open dialog. Fetched letters are marked read or moved to a
folder once stored (`okno.channels.email.imap`).

Out: one letter per message over SMTP, threaded under the customer's last letter
(In-Reply-To, References, "Re: " subject), files attached, bot buttons as numbered
options. Its Message-ID is derived from okno's message id, so a resend is the same letter.
A delivery-failure report (bounce) in the mailbox marks the letter "not delivered".
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from email.headerregistry import Address
from email.utils import parseaddr
from typing import Any, ClassVar

import httpx
import structlog

from okno.channels.adapter import (
    Adapter,
    ConfigField,
    HookRequest,
    HookResult,
    Incoming,
    Outbound,
    Polled,
    RemoteFile,
    SendFailed,
    Sent,
    StatusUpdate,
)
from okno.channels.email import imap, smtp
from okno.channels.email.parsing import attachment_at, parse_mail
from okno.errors import BadRequest, NotFound

log = structlog.get_logger("okno.channels")
# Attachment bytes of letters just fetched, until `receiving` downloads them (the poll and
# the store run one after the other in the same process); bounded, oldest dropped first.
# A ref not found here is fetched from the mailbox again.
_CACHE_BYTES = 64 * 1024 * 1024
# A typical IMAP/SMTP command's time limit when okno gives none.
DEFAULT_TIMEOUT = 20.0


class _PartCache:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0

    def put(self, ref: str, data: bytes) -> None:
        if ref in self.items or len(data) > self.limit:
            return
        self.items[ref] = data
        self.size += len(data)
        while self.size > self.limit:
            _, dropped = self.items.popitem(last=False)
            self.size -= len(dropped)

    def pop(self, ref: str) -> bytes | None:
        data = self.items.pop(ref, None)
        if data is not None:
            self.size -= len(data)
        return data


class EmailAdapter(Adapter):
    kind = "email"
    title = "E-mail"
    fields = (
        ConfigField("imap_host", "The IMAP server that holds the bank's support mailbox."),
        ConfigField(
            "imap_port", "IMAP port (993 with ssl, 143 otherwise when empty).", required=False
        ),
        ConfigField(
            "imap_security",
            "ssl (IMAPS), starttls, or none (only on a trusted internal network).",
            required=False,
            default="ssl",
        ),
        ConfigField("imap_user", "The mailbox's login."),
        ConfigField("imap_password", "The mailbox's password.", secret=True),
        ConfigField(
            "imap_folder", "The folder customers' mail arrives in.", required=False, default="INBOX"
        ),
        ConfigField(
            "after_fetch",
            "seen (mark stored letters read and leave them) or move (move them to move_to).",
            required=False,
            default="seen",
        ),
        ConfigField(
            "move_to",
            "The folder stored letters are moved to when after_fetch is move.",
            required=False,
            default="okno-processed",
        ),
        ConfigField("smtp_host", "The SMTP server okno sends answers through."),
        ConfigField(
            "smtp_port",
            "SMTP port (465 with ssl, 587 with starttls, 25 with none when empty).",
            required=False,
        ),
        ConfigField(
            "smtp_security",
            "starttls, ssl (SMTPS), or none (only on a trusted internal network).",
            required=False,
            default="starttls",
        ),
        ConfigField(
            "smtp_user", "SMTP login (empty: the server takes mail without one).", required=False
        ),
        ConfigField("smtp_password", "SMTP password.", required=False, secret=True),
        ConfigField("from_address", "The address answers come from (customers reply to it)."),
        ConfigField("from_name", "The sender name customers see.", required=False),
        ConfigField(
            "subject",
            "The subject of a letter that answers no letter of the customer's.",
            required=False,
        ),
        ConfigField(
            "tls_ca_file",
            "A CA bundle file to verify the servers' certificates with (an internal CA).",
            required=False,
        ),
    )
    # Mail servers throttle per connection rather than publish a rate; one letter a second
    # per recipient keeps a burst of short operator answers from looking like spam.
    rate_per_second: ClassVar[float] = 5.0
    per_recipient_gap_seconds: ClassVar[float] = 1.0
    # A resend carries the same Message-ID (see okno.channels.email.smtp).
    dedups_resends: ClassVar[bool] = True
    has_buttons: ClassVar[bool] = False

    def __init__(self) -> None:
        self._parts = _PartCache(_CACHE_BYTES)

    # -- settings -------------------------------------------------------------------------

    def check_config(self, config: dict[str, Any]) -> None:
        for name, allowed in (
            ("imap_security", ("ssl", "starttls", "none")),
            ("smtp_security", ("ssl", "starttls", "none")),
            ("after_fetch", ("seen", "move")),
        ):
            if config.get(name) not in allowed:
                raise BadRequest(
                    f"{name} is one of {', '.join(allowed)}", code="invalid_setting", field=name
                )
        for name in ("imap_port", "smtp_port"):
            value = config.get(name)
            if value and (not str(value).isdigit() or not 0 < int(value) < 65536):
                raise BadRequest(
                    f"{name} must be a port number (1-65535)", code="invalid_setting", field=name
                )
        for name in ("imap_host", "smtp_host"):
            if any(c.isspace() or c in "/@" for c in str(config.get(name, ""))):
                raise BadRequest(
                    f"{name} must be a host name or address", code="invalid_setting", field=name
                )
        if not _valid_address(str(config.get("from_address", ""))):
            raise BadRequest(
                "from_address must be an e-mail address such as support@bank.ru",
                code="invalid_setting",
                field="from_address",
            )
        if config.get("smtp_password") and not config.get("smtp_user"):
            raise BadRequest(
                "smtp_user is needed with smtp_password", code="missing_setting", field="smtp_user"
            )
        for name in ("from_name", "subject", "imap_folder", "move_to"):
            if any(c in str(config.get(name, "")) for c in "\r\n"):
                raise BadRequest(f"{name} must be one line", code="invalid_setting", field=name)

    # -- in -------------------------------------------------------------------------------

    def verify(self, config: dict[str, Any], request: HookRequest) -> None:
        """Mail arrives by polling the mailbox; nobody may post letters to the hook."""
        raise NotFound("e-mail channels take no webhooks", code="no_webhook")

    def parse(self, config: dict[str, Any], request: HookRequest) -> HookResult:
        raise NotFound("e-mail channels take no webhooks", code="no_webhook")

    def wants_poll(self, config: dict[str, Any]) -> bool:
        return True

    async def poll(
        self, config: dict[str, Any], cursor: str | None, wait: float, limit: float
    ) -> Polled:
        """New letters since ``cursor``; with none, wait up to ``wait`` seconds for one
        (IMAP IDLE; a server without it is simply asked again after ``wait``)."""
        timeout = limit or DEFAULT_TIMEOUT
        fetched = await asyncio.to_thread(imap.fetch_new, config, cursor, timeout, wait)
        messages: list[Incoming] = []
        statuses: list[StatusUpdate] = []
        for uid, raw in fetched.letters:
            prefix = f"imap:{fetched.uidvalidity}:{uid}"
            try:
                parsed = parse_mail(
                    raw, own_address=str(config.get("from_address", "")), ref_prefix=prefix
                )
            except Exception as exc:  # one unreadable letter must not block the rest
                log.warning("email.unreadable_letter", uid=uid, error=type(exc).__name__)
                continue
            if parsed.status is not None:
                statuses.append(parsed.status)
            if parsed.incoming is None:
                log.info("email.letter_skipped", uid=uid, reason=parsed.skipped)
                continue
            for part, remote in zip(parsed.parts, parsed.incoming.files, strict=True):
                self._parts.put(remote.ref, part.data)
            messages.append(parsed.incoming)
        if not fetched.letters and not fetched.waited and wait > 0:
            await asyncio.sleep(wait)  # a server without IDLE: pace the logins instead
        return Polled(HookResult(messages=messages, statuses=statuses), str(fetched.cursor))

    async def download(
        self, client: httpx.AsyncClient, config: dict[str, Any], file: RemoteFile
    ) -> bytes:
        """An attachment of a fetched letter: from memory, or fetched again by UID."""
        data = self._parts.pop(file.ref)
        if data is not None:
            return data
        parts = file.ref.split(":")
        if len(parts) != 5 or parts[0] != "imap" or not all(p.isdigit() for p in parts[1:4]):
            raise SendFailed("not an e-mail attachment reference", retry=False)
        uidvalidity, uid, index = int(parts[1]), int(parts[2]), int(parts[3])
        raw = await asyncio.to_thread(
            imap.fetch_one, config, uidvalidity, uid, client.timeout.read or DEFAULT_TIMEOUT
        )
        part = attachment_at(raw, index)
        if part is None or hashlib.sha256(part.data).hexdigest()[:16] != parts[4]:
            raise SendFailed("the attachment is no longer in the mailbox", retry=False)
        return part.data

    # -- out ------------------------------------------------------------------------------

    async def send(
        self, client: httpx.AsyncClient, config: dict[str, Any], message: Outbound
    ) -> Sent:
        if not _valid_address(message.recipient):
            raise SendFailed(f"not an e-mail address: {message.recipient!r}", retry=False)
        letter = smtp.build(config, message)
        timeout = client.timeout.read or DEFAULT_TIMEOUT
        await asyncio.to_thread(smtp.deliver, config, letter, timeout)
        return Sent(external_id=str(letter["Message-ID"]))

    async def check(self, client: httpx.AsyncClient, config: dict[str, Any]) -> str:
        """Log in to both servers, as fetching and sending will."""
        timeout = client.timeout.read or DEFAULT_TIMEOUT
        incoming = await asyncio.to_thread(imap.check, config, timeout)
        outgoing = await asyncio.to_thread(smtp.check, config, timeout)
        return f"{incoming}; {outgoing}"


def _valid_address(value: str) -> bool:
    """One plain address (local@domain), as a header can carry it."""
    _name, address = parseaddr(value)
    if not address or address != value.strip() or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    if not local or "." not in domain or any(c.isspace() for c in address):
        return False
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError):
        return False
    return True
