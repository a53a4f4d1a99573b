"""One raw e-mail (RFC 5322 bytes from the mailbox) as what okno stores.

A customer's letter becomes an `Incoming`: the sender's address is the customer, the
Message-ID the message's id (so fetching it twice stores it once), the readable text its
plain part or its HTML made text, its attachments `RemoteFile`s, and ``reply_to`` the
headers an answer needs to stay in the customer's thread. A delivery-failure report
(RFC 3464) about a letter okno sent becomes a "failed" status of that letter. Automatic
mail (vacation replies, mailing lists, okno's own letters) is skipped, so two robots never
write to each other forever.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr

from okno.channels.adapter import Incoming, RemoteFile, StatusUpdate
from okno.channels.email.text import html_to_text, trim_reply

MAX_ATTACHMENTS = 10
# Embedded pictures under this size that the HTML shows by Content-ID are logos and
# tracking pixels of the sender's signature, not something the customer attached.
SMALL_INLINE_BYTES = 16 * 1024
MAX_REFERENCES = 10
_MSGID = re.compile(r"<[^<>\s]+>")


@dataclass
class Part:
    """An attachment of a fetched letter, with its bytes (until okno downloads them)."""

    index: int
    filename: str
    content_type: str
    data: bytes


@dataclass
class Parsed:
    incoming: Incoming | None = None
    status: StatusUpdate | None = None
    parts: list[Part] = field(default_factory=list)
    skipped: str | None = None  # why the letter is not a customer's message


def message_ids(value: str | None) -> list[str]:
    """The <ids> in a Message-ID, In-Reply-To or References header, in order."""
    return _MSGID.findall(str(value or ""))


def parse_mail(raw: bytes, *, own_address: str, ref_prefix: str) -> Parsed:
    """Read one letter. ``own_address`` is the channel's From address (its own letters and
    their copies are skipped); ``ref_prefix`` names where the letter lies in the mailbox,
    so an attachment can be fetched again by its `RemoteFile.ref`."""
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    if _is_delivery_report(mail):
        return Parsed(status=_failed_status(mail), skipped="delivery report")
    name, address = _sender(mail)
    if not address or "@" not in address:
        return Parsed(skipped="no sender address")
    if address == own_address.strip().lower():
        return Parsed(skipped="our own letter")
    automatic = _automatic(mail)
    if automatic:
        return Parsed(skipped=automatic)
    subject = _clean_header(mail.get("Subject"))[:300]
    own_id = _header_ids(mail, "Message-ID")
    msgid = own_id[0] if own_id else ""
    external_id = msgid if msgid and len(msgid) <= 190 else _hash_id(raw)
    references = _header_ids(mail, "References") or _header_ids(mail, "In-Reply-To")
    is_reply = bool(_header_ids(mail, "In-Reply-To") or references)
    chain = [*references, msgid] if msgid else references
    if len(chain) > MAX_REFERENCES:  # RFC 5322 3.6.4: keep the first and the newest
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    body = trim_reply(_readable_body(mail))
    text = body
    if subject and not is_reply:
        text = f"{subject}\n\n{body}".strip()
    parts = _attachments(mail)
    incoming = Incoming(
        external_customer_id=address,
        external_id=external_id,
        text=text,
        customer_name=name,
        files=[
            RemoteFile(
                ref=f"{ref_prefix}:{p.index}:{hashlib.sha256(p.data).hexdigest()[:16]}",
                filename=p.filename,
                content_type=p.content_type,
                size=len(p.data),
                kind="photo" if p.content_type.startswith("image/") else "document",
            )
            for p in parts
        ],
        reply_to={
            "message_id": msgid,
            "references": " ".join(chain),
            "subject": subject,
        },
    )
    return Parsed(incoming=incoming, parts=parts)


def attachment_at(raw: bytes, index: int) -> Part | None:
    """The ``index``-th attachment of a letter (as `parse_mail` numbered them)."""
    mail = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(mail, EmailMessage)
    return next((p for p in _attachments(mail) if p.index == index), None)


def _hash_id(raw: bytes) -> str:
    """A stand-in id for a letter without a usable Message-ID: the same bytes, the same id."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:48]


def _clean_header(value: object) -> str:
    """A header as one safe line (decoded; no CR/LF that could split headers later)."""
    return re.sub(r"[\r\n\t]+", " ", str(value or "")).strip()


def _header_ids(mail: EmailMessage, name: str) -> list[str]:
    try:
        value = mail.get(name)
    except Exception:  # a header the parser cannot read counts as missing
        return []
    return message_ids(str(value or ""))


def _sender(mail: EmailMessage) -> tuple[str, str]:
    try:
        raw = mail.get("From")
    except Exception:
        return "", ""
    pairs = getaddresses([str(raw or "")])
    name, address = pairs[0] if pairs else parseaddr(str(raw or ""))
    return _clean_header(name)[:200], address.strip().lower()[:254]


def _automatic(mail: EmailMessage) -> str | None:
    """Why this letter was written by a machine (RFC 3834 and the usual vendor headers)."""
    auto = str(mail.get("Auto-Submitted") or "").strip().lower()
    if auto and auto != "no":
        return f"auto-submitted: {auto}"
    precedence = str(mail.get("Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"precedence: {precedence}"
    if mail.get("X-Autoreply") or mail.get("X-Autorespond"):
        return "auto-reply"
    if mail.get("List-Id") or mail.get("List-Unsubscribe"):
        return "mailing list"
    _, sender = parseaddr(str(mail.get("Return-Path") or ""))
    if str(mail.get("Return-Path") or "").strip() == "<>" or sender.lower().startswith(
        "mailer-daemon@"
    ):
        return "bounce"
    return None


def _is_delivery_report(mail: EmailMessage) -> bool:
    return (
        mail.get_content_type() == "multipart/report"
        and str(mail.get_param("report-type", "")).lower() == "delivery-status"
    )


def _failed_status(mail: EmailMessage) -> StatusUpdate | None:
    """A DSN saying okno's letter could not be delivered: the letter it is about (from the
    returned headers) and the reason the receiving server gave."""
    failed = False
    reason = ""
    original: list[str] = []
    for part in mail.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            text = _part_text(part)
            if re.search(r"^action:\s*failed", text, re.IGNORECASE | re.MULTILINE):
                failed = True
            found = re.search(r"^diagnostic-code:\s*(.+)$", text, re.IGNORECASE | re.MULTILINE)
            if found:
                reason = found.group(1).strip()
        elif ctype in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            headers = _part_text(part)
            found = re.search(r"^message-id:\s*(<[^>\s]+>)", headers, re.IGNORECASE | re.MULTILINE)
            if found:
                original = [found.group(1)]
    if not failed or not original:
        return None
    return StatusUpdate(
        external_id=original[0], status="failed", error=(reason or "undeliverable")[:500]
    )


def _part_text(part: Message) -> str:
    """The text of a report part: delivery-status and rfc822 parts parse as sub-messages."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(str(p) if not isinstance(p, Message) else p.as_string() for p in payload)
    if isinstance(payload, Message):
        return payload.as_string()
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return str(payload or "")


def _decoded(part: EmailMessage) -> str:
    try:
        content = part.get_content()
    except (LookupError, UnicodeError, KeyError, AssertionError):
        # an unknown or lying charset: the bytes as best UTF-8 reading, never a failure
        raw = part.get_payload(decode=True)
        content = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""
    return content if isinstance(content, str) else ""


def _readable_body(mail: EmailMessage) -> str:
    """The plain-text body, or the HTML one made text; never markup."""
    plain = mail.get_body(preferencelist=("plain",))
    if isinstance(plain, EmailMessage) and not _is_attachment(plain):
        text = _decoded(plain).strip()
        if text:
            return text
    html = mail.get_body(preferencelist=("html",))
    if isinstance(html, EmailMessage) and not _is_attachment(html):
        return html_to_text(_decoded(html))
    return ""


def _is_attachment(part: EmailMessage) -> bool:
    return part.get_content_disposition() == "attachment"


def _attachments(mail: EmailMessage) -> list[Part]:
    body_parts = {
        id(p)
        for p in (
            mail.get_body(preferencelist=("plain",)),
            mail.get_body(preferencelist=("html",)),
        )
        if p is not None and not _is_attachment(p)  # type: ignore[arg-type]
    }
    parts: list[Part] = []
    index = 0
    for part in mail.walk():
        if part.is_multipart() or id(part) in body_parts:
            continue
        assert isinstance(part, EmailMessage)
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        filename = part.get_filename()
        if disposition is None and not filename and ctype.startswith("text/"):
            continue  # an alternative text body, not a file
        if ctype.startswith("message/"):
            continue  # a forwarded letter or a report part: not a file for the operator
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        index += 1
        if (
            disposition != "attachment"
            and part.get("Content-ID")
            and len(data) < SMALL_INLINE_BYTES
        ):
            continue  # a signature logo or a tracking pixel
        name = _clean_header(filename) or f"attachment-{index}{_extension(ctype)}"
        parts.append(Part(index=index, filename=name[:200], content_type=ctype, data=data))
        if len(parts) >= MAX_ATTACHMENTS:
            break
    return parts


def _extension(content_type: str) -> str:
    if content_type == "image/jpeg":
        return ".jpg"
    return mimetypes.guess_extension(content_type) or ""
