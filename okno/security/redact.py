"""Keep credentials out of log lines: passwords, tokens, Authorization headers, cookies,
and bot tokens inside messenger API URLs (Telegram's ``/bot<id>:<secret>/sendMessage``).

okno's own log calls never pass a credential on purpose; this is the net for what slips
through: a library logging the URL it called, an exception quoting a request, a future
log call with the wrong field. Two parts, used by ``okno.observability``:

- ``redact_secrets``, a structlog processor: a field whose *name* says it holds a secret
  is replaced whole; every string value (nested ones, tracebacks) has secret-looking
  pieces replaced;
- ``RedactSecrets``, the same for stdlib ``logging`` records (httpx, uvicorn).
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

# Field names that hold credentials (whole value dropped). "token_id", "session_id" and
# the like name a row, not a secret, and are kept.
_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|authori[sz]ation|cookie|api_?key|otp|totp|csrf|"
    r"private_key|credential|signature)",
    re.IGNORECASE,
)
_HARMLESS_KEY = re.compile(r"(_id|_ids|_count|_type|_kind|_at)$", re.IGNORECASE)

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Telegram bot tokens (<bot id>:<35 characters>), in URLs or anywhere
    (re.compile(r"(?<!\d)\d{5,12}:[A-Za-z0-9_-]{30,}"), REDACTED),
    # Authorization header values
    (
        re.compile(r"\b(Bearer|Basic|Token|OAuth)\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
        r"\1 " + REDACTED,
    ),
    # JSON Web Tokens (okno's staff, session and widget tokens among them)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # credentials in query strings and form bodies
    (
        re.compile(
            r"(?i)\b(access_token|token|auth|key|api_key|apikey|secret|password|passwd|"
            r"signature|sig|code|otp)=([^&\s\"']+)"
        ),
        r"\1=" + REDACTED,
    ),
    # user:password@ in URLs (database, Redis, SMTP, IMAP)
    (
        re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@", re.IGNORECASE),
        r"\1:" + REDACTED + "@",
    ),
    # session and CSRF cookies as they appear in a Cookie or Set-Cookie header
    (re.compile(r"\b(okno_session|okno_csrf)=[^;\s\"']+"), r"\1=" + REDACTED),
]


def text(value: str) -> str:
    """``value`` with every secret-looking piece replaced by ``[redacted]``."""
    for pattern, replacement in _PATTERNS:
        value = pattern.sub(replacement, value)
    return value


def is_secret_key(key: str) -> bool:
    """Whether a log field of this name holds a credential."""
    return bool(_SECRET_KEY.search(key)) and not _HARMLESS_KEY.search(key)


def value(item: Any, key: str = "") -> Any:
    """A log field's value with secrets removed (recursing into dicts, lists, tuples)."""
    if key and is_secret_key(key) and item not in (None, "", True, False):
        return REDACTED
    if isinstance(item, str):
        return text(item)
    if isinstance(item, dict):
        return {k: value(v, str(k)) for k, v in item.items()}
    if isinstance(item, list | tuple):
        return type(item)(value(v) for v in item)
    return item


def redact_secrets(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor; place it after ``format_exc_info`` (tracebacks are text then)."""
    return {k: value(v, k) for k, v in event_dict.items()}


class RedactSecrets(logging.Filter):
    """stdlib logging filter: the formatted message and traceback with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = text(record.exc_text)
        return True
