"""The password policy every new password passes: the same for the API, the admin pages,
the change-password flow and ``okno users create``.

A password must be at least ``OKNO_PASSWORD_MIN_LENGTH`` characters, mix at least
``OKNO_PASSWORD_MIN_CLASSES`` kinds of characters (letters, digits, others), not contain
the login, and not be one of the common passwords shipped in ``data/common_passwords.txt``
(also with digits or symbols added around it: "Qwerty2025!" is still "qwerty"). The list
ships inside the package: nothing is downloaded, and a bank may extend the file.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from okno.errors import Unprocessable

COMMON_FILE = Path(__file__).parent / "data" / "common_passwords.txt"
DEFAULT_MIN_LENGTH = 10
DEFAULT_MIN_CLASSES = 2
MAX_LENGTH = 500
_EDGES = re.compile(r"^[\d\W_]+|[\d\W_]+$")


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower case."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip().lower() for w in lines if w.strip() and not w.startswith("#"))


def _classes(password: str) -> int:
    letters = any(c.isalpha() for c in password)
    digits = any(c.isdigit() for c in password)
    others = any(not c.isalnum() for c in password)
    return letters + digits + others


def problem(
    password: str,
    *,
    login: str = "",
    min_length: int = DEFAULT_MIN_LENGTH,
    min_classes: int = DEFAULT_MIN_CLASSES,
) -> str | None:
    """Why this password is refused (a sentence a person can act on), or None."""
    if len(password) < min_length:
        return f"password must be at least {min_length} characters"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters"
    if _classes(password) < min_classes:
        return (
            f"password must mix at least {min_classes} kinds of characters "
            "(letters, digits, other symbols)"
        )
    name = login.strip().lower()
    if len(name) >= 3 and name in password.lower():
        return "password must not contain the login"
    lowered = password.lower()
    core = _EDGES.sub("", lowered)
    common = common_passwords()
    if lowered in common or (core and core in common) or len(set(lowered)) <= 2:
        return "password is too common; choose one that is not on lists of popular passwords"
    return None


def check(
    password: str,
    *,
    login: str = "",
    min_length: int = DEFAULT_MIN_LENGTH,
    min_classes: int = DEFAULT_MIN_CLASSES,
) -> None:
    """Raise 422 ``weak_password`` (field ``password``) unless the password passes."""
    reason = problem(password, login=login, min_length=min_length, min_classes=min_classes)
    if reason:
        raise Unprocessable(reason, code="weak_password", field="password")
