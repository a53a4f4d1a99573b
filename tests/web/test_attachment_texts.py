"""Operators read why a file was refused in their language: every error code the file
checks and the antivirus raise has a text in the workspace's table (core.js shows
``error.<code>`` in the pop-up instead of the server's English ``detail``)."""

from __future__ import annotations

import re
from pathlib import Path

from okno.web import i18n

CONVERSATIONS = Path(__file__).resolve().parents[2] / "okno" / "conversations"


def test_every_attachment_error_code_has_a_russian_text() -> None:
    codes: set[str] = set()
    for module in ("attachments.py", "scanning.py"):
        codes |= set(re.findall(r'code="([a-z_]+)"', (CONVERSATIONS / module).read_text("utf-8")))
    assert {"attachment_infected", "scanner_unavailable", "attachment_scan_failed"} <= codes
    missing = sorted(c for c in codes if f"error.{c}" not in i18n.TEXTS)
    assert missing == []
    ru = i18n.texts("ru")
    for code in codes:
        assert re.search("[а-яА-Я]", ru[f"error.{code}"]), code
    assert "{signature}" in ru["error.attachment_infected"]  # the threat's name, for staff
    assert "{max_mb}" in ru["error.attachment_too_large"]
    # the request-size guard's refusal of an upload
    assert "error.request_too_large" in i18n.TEXTS
