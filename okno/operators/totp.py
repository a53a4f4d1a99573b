"""TOTP second factor (RFC 6238, the codes of Google Authenticator, FreeOTP, Яндекс Ключ):
secrets, the ``otpauth://`` URI and its QR code as SVG, and code checks.

A code is accepted for its own 30-second step and one step either side (clocks of phones
drift), and only once: the step of the last accepted code is kept, so a code seen over a
shoulder cannot be replayed within its minute.
"""

from __future__ import annotations

import io
import time

import pyotp
import segno

STEP_SECONDS = 30
DRIFT_STEPS = 1


def new_secret() -> str:
    """A random base32 secret (160 bits, as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, login: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(
        name=login, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as an SVG QR code (no raster libraries needed; the page inlines it)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=2, xmldecl=False)
    return out.getvalue().decode()


def normalise(code: str) -> str:
    """The digits of a code as typed ("123 456" → "123456")."""
    return "".join(c for c in code if not c.isspace())


def accepted_step(
    secret: str, code: str, *, last_step: int | None, now: float | None = None
) -> int | None:
    """The time step the code belongs to when it is right and not used before, else None."""
    digits = normalise(code)
    if len(digits) != 6 or not digits.isdigit():
        return None
    at = time.time() if now is None else now
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(at // STEP_SECONDS)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if last_step is not None and step <= last_step:
            continue
        if pyotp.utils.strings_equal(totp.at(step * STEP_SECONDS), digits):
            return step
    return None
