"""Encryption of stored credentials (a messenger's bot token, an IMAP password).

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from
okno's secret key, so a copy of the database alone does not give away the bank's channel
credentials. Changing the secret key makes stored credentials unreadable: they must be
entered again (docs/channels.md says so).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "enc:v1:"


class SecretUnreadable(Exception):
    """A stored credential cannot be decrypted (the secret key changed)."""


def _fernet(signing_key: str) -> Fernet:
    digest = hashlib.sha256(b"okno-credentials:" + signing_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(value: str, signing_key: str) -> str:
    if value.startswith(PREFIX):
        return value
    return PREFIX + _fernet(signing_key).encrypt(value.encode()).decode()


def decrypt(value: str, signing_key: str) -> str:
    if not value.startswith(PREFIX):
        return value  # written before encryption was on, or by hand in a test
    try:
        return _fernet(signing_key).decrypt(value[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("stored credential cannot be decrypted with this key") from None


def keyed_hash(value: str, signing_key: str) -> str:
    """A stable, keyed fingerprint of a low-entropy value (a phone number) for matching
    without storing it."""
    import hmac

    return hmac.new(signing_key.encode(), value.encode(), hashlib.sha256).hexdigest()
