"""Writing answers as e-mail (RFC 5322) and handing them to the bank's SMTP server.

smtplib blocks, so `deliver` runs in a worker thread. The letter's Message-ID is made from
okno's message id and the channel, never at random: a letter sent again after an unknown
outcome (a timeout after DATA) carries the same Message-ID, and mail systems that drop
repeats (and every mail client's threading) treat the two as one letter.

SMTP's own reply codes decide about retrying (RFC 5321 4.2.1): 4xx is "try again later",
5xx is final (an unknown recipient, a refused sender, bad credentials).
"""

from __future__ import annotations

import hashlib
import re
import smtplib
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

from okno.channels.adapter import Outbound, SendFailed
from okno.channels.email.imap import tls_context
from okno.db.base import utcnow

DEFAULT_SUBJECT = "Ответ на ваше обращение"
_REPLY_PREFIX = re.compile(r"^\s*(re|ответ|aw|sv|antw)\s*(\[\d+\])?\s*:", re.IGNORECASE)


def message_id(config: dict[str, Any], message: Outbound) -> str:
    """The same okno message in the same channel always gets the same Message-ID."""
    domain = domain_of(str(config["from_address"]))
    seed = f"{config.get('_channel_id', 0)}:{message.message_id}:{config['from_address']}"
    tag = hashlib.sha256(seed.encode()).hexdigest()[:16]
    return f"<okno.{config.get('_channel_id', 0)}.{message.message_id}.{tag}@{domain}>"


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip().lower() or "localhost"


def reply_subject(subject: str, default: str) -> str:
    subject = re.sub(r"[\r\n\t]+", " ", subject).strip()
    if not subject:
        return default
    return subject if _REPLY_PREFIX.match(subject) else f"Re: {subject}"


def build(config: dict[str, Any], message: Outbound) -> EmailMessage:
    """The letter for one outbound message: UTF-8 text (bot options numbered), the files
    attached, threaded under the customer's last letter."""
    letter = EmailMessage(policy=SMTP)
    from_address = str(config["from_address"]).strip()
    local, _, domain = from_address.rpartition("@")
    letter["From"] = Address(str(config.get("from_name") or ""), local, domain)
    letter["To"] = message.recipient
    reply_to = message.reply_to or {}
    default_subject = str(config.get("subject") or DEFAULT_SUBJECT)
    letter["Subject"] = reply_subject(str(reply_to.get("subject") or ""), default_subject)
    letter["Date"] = format_datetime(utcnow())
    letter["Message-ID"] = message_id(config, message)
    parent = str(reply_to.get("message_id") or "").strip()
    if parent:
        letter["In-Reply-To"] = parent
        letter["References"] = str(reply_to.get("references") or parent).strip()
    if message.author_kind in ("bot", "system"):
        # RFC 3834: a machine's answer, so vacation responders do not answer it back.
        letter["Auto-Submitted"] = "auto-replied"
    letter.set_content(message.text_with_numbered_options() or " ", charset="utf-8")
    for file in message.files:
        maintype, _, subtype = file.content_type.partition("/")
        letter.add_attachment(
            file.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=file.filename,
        )
    return letter


def _port(config: dict[str, Any]) -> int:
    if config.get("smtp_port"):
        return int(config["smtp_port"])
    return {"ssl": 465, "starttls": 587}.get(config.get("smtp_security", "starttls"), 25)


def _connect(config: dict[str, Any], timeout: float) -> smtplib.SMTP:
    host = str(config["smtp_host"])
    security = config.get("smtp_security", "starttls")
    conn: smtplib.SMTP
    if security == "ssl":
        conn = smtplib.SMTP_SSL(host, _port(config), timeout=timeout, context=tls_context(config))
    else:
        conn = smtplib.SMTP(host, _port(config), timeout=timeout)
    conn.ehlo()
    if security == "starttls":
        conn.starttls(context=tls_context(config))
        conn.ehlo()
    if config.get("smtp_user"):
        conn.login(str(config["smtp_user"]), str(config.get("smtp_password") or ""))
    return conn


def deliver(config: dict[str, Any], letter: EmailMessage, timeout: float) -> None:
    """Hand ``letter`` to the SMTP server; SendFailed with retry per the reply code."""
    conn: smtplib.SMTP | None = None
    try:
        conn = _connect(config, timeout)
        conn.send_message(
            letter, from_addr=str(config["from_address"]).strip(), to_addrs=[str(letter["To"])]
        )
    except smtplib.SMTPRecipientsRefused as exc:
        code, text = next(iter(exc.recipients.values()))
        raise _failed("recipient refused", code, text) from None
    except smtplib.SMTPResponseException as exc:
        raise _failed(_what(exc), exc.smtp_code, exc.smtp_error) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise SendFailed(f"SMTP: {exc}", retry=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        kind = "timed out" if isinstance(exc, TimeoutError) else str(exc)
        raise SendFailed(f"SMTP: {type(exc).__name__}: {kind}"[:300]) from None
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


def check(config: dict[str, Any], timeout: float) -> str:
    """Connect, say EHLO, start TLS and log in as a send would; nothing is sent."""
    conn: smtplib.SMTP | None = None
    try:
        conn = _connect(config, timeout)
        code, _ = conn.noop()
        if code != 250:
            raise SendFailed(f"SMTP: NOOP answered {code}")
    except smtplib.SMTPResponseException as exc:
        raise _failed(_what(exc), exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"SMTP: {type(exc).__name__}: {exc}"[:300]) from None
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
    login = f" as {config['smtp_user']}" if config.get("smtp_user") else ""
    return f"SMTP: {config['smtp_host']}:{_port(config)}{login}"


def _what(exc: smtplib.SMTPResponseException) -> str:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return "login refused"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return "sender refused"
    if isinstance(exc, smtplib.SMTPDataError):
        return "letter refused"
    return "refused"


def _failed(what: str, code: int, text: bytes | str) -> SendFailed:
    detail = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    detail = re.sub(r"\s+", " ", detail)
    reason = f"SMTP {what}: {code} {detail}".strip()[:300]
    # 4xx: a full mailbox, greylisting, a busy server; 5xx: retrying cannot help.
    return SendFailed(reason, retry=not 500 <= code < 600)
