"""Finding and masking personal data in free text: card numbers, phone numbers, passport
series and number, INN, SNILS, bank account numbers and e-mail addresses.

Customers write numbers every way they can: "4276 3800 1234 5678", "4276-3800-1234-5678",
"+7 (916) 123-45-67", "8 916 1234567", "паспорт 45 06 123456". The finders therefore look
at runs of digits with the separators people use, then check what can be checked (Luhn
for cards, the control digits of INN and SNILS) so that an order number, an amount or a
date is left alone. A passport number has no check digit; it is taken only next to the
words that introduce one ("паспорт", "серия"), or in its printed form "45 06 123456".

Masking keeps what a person needs to tell two items apart (the last four digits of a card,
the domain of an e-mail) and nothing that identifies the customer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

KINDS = ("card", "phone", "passport", "inn", "snils", "account", "email")
MASK = "•"

# A run of digits with single spaces, dashes, dots or brackets between them (and a leading
# "+"): the raw material of every numeric finder below.
_DIGIT_RUN = re.compile(r"\+?\(?\d(?:[\d()]|[ \-.\u00a0\u2011\u2013](?=[\d(]))*\d\)?")
# As cards are written: one block, or groups of digits split by single spaces or dashes
# (4-4-4-4, 4-6-5); never dots or brackets (dates, amounts, phone numbers).
_CARD_SHAPE = re.compile(r"\d{4}(?:[ \-\u00a0]?\d{2,6}){2,4}")
_EMAIL = re.compile(
    r"(?<![\w.+-])([A-Za-z0-9][A-Za-z0-9._%+-]{0,63})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})\b"
)
_PASSPORT_WORDS = re.compile(
    r"(паспорт|серия|серии|номер паспорта|passport|удостоверени)[^\d\n]{0,25}$", re.IGNORECASE
)
# "серия 4506 номер 123456", "паспорт 45 06 № 123456": series and number apart
_PASSPORT_PAIR = re.compile(
    r"(?:паспорт\w*|серия|серии)\D{0,20}?(\d{2} ?\d{2})[ ,]*(?:№|номер|n|no\.?)?[ :]*(\d{6})(?!\d)",
    re.IGNORECASE,
)
_INN_WORDS = re.compile(r"(инн|inn)[^\d\n]{0,10}$", re.IGNORECASE)
_SNILS_WORDS = re.compile(r"(снилс|snils)[^\d\n]{0,10}$", re.IGNORECASE)
_ACCOUNT_WORDS = re.compile(r"(сч[её]т|р/с|л/с|account)[^\d\n]{0,15}$", re.IGNORECASE)
_PHONE_WORDS = re.compile(r"(тел|phone|номер|звоните|позвоните)[^\d\n]{0,15}$", re.IGNORECASE)


@dataclass(frozen=True)
class Found:
    kind: str
    start: int
    end: int
    digits: str  # the digits (or the address, for an e-mail) that were found

    def masked(self, original: str) -> str:
        return mask_value(self.kind, original[self.start : self.end], self.digits)


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def inn_ok(digits: str) -> bool:
    """The control digits of an INN (10 digits: a company; 12: a person)."""

    def control(weights: tuple[int, ...], part: str) -> int:
        return sum(w * int(c) for w, c in zip(weights, part, strict=False)) % 11 % 10

    if len(digits) == 10:
        return control((2, 4, 10, 3, 5, 9, 4, 6, 8), digits[:9]) == int(digits[9])
    if len(digits) == 12:
        first = control((7, 2, 4, 10, 3, 5, 9, 4, 6, 8), digits[:10])
        second = control((3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8), digits[:11])
        return first == int(digits[10]) and second == int(digits[11])
    return False


def snils_ok(digits: str) -> bool:
    """SNILS: 9 digits and a 2-digit control sum."""
    if len(digits) != 11:
        return False
    body, check = digits[:9], int(digits[9:])
    total = sum(int(c) * (9 - i) for i, c in enumerate(body))
    if total > 101:
        total %= 101
    expected = 0 if total in (100, 101) else total
    return expected == check


def _phone(digits: str, raw: str, before: str) -> bool:
    if len(digits) == 11 and digits[0] in "78" and digits[1] in "3489":
        return True
    if len(digits) == 10 and digits[0] == "9":
        return bool(_PHONE_WORDS.search(before)) or "(" in raw or raw.count("-") >= 2
    if raw.startswith("+") and 11 <= len(digits) <= 15:
        return True
    return False


def _classify(raw: str, before: str) -> str | None:
    digits = re.sub(r"\D", "", raw)
    n = len(digits)
    if 13 <= n <= 19 and luhn_ok(digits) and _CARD_SHAPE.fullmatch(raw):
        return "card"
    if (n == 11 and _SNILS_WORDS.search(before)) or (
        n == 11 and re.fullmatch(r"\d{3}-\d{3}-\d{3}[ -]\d{2}", raw) and snils_ok(digits)
    ):
        return "snils"
    if n == 20 and (digits[0] == "4" or _ACCOUNT_WORDS.search(before)):
        return "account"
    if _phone(digits, raw, before):
        return "phone"
    if n in (10, 12) and (_INN_WORDS.search(before) or (inn_ok(digits) and n == 12)):
        return "inn"
    if n == 10 and (_PASSPORT_WORDS.search(before) or re.fullmatch(r"\d{2} \d{2} \d{6}", raw)):
        return "passport"
    if n == 10 and _INN_WORDS.search(before):
        return "inn"
    return None


def find(text: str, kinds: Iterable[str] = KINDS) -> list[Found]:
    """Everything personal in ``text``, in order, not overlapping."""
    wanted = set(kinds)
    found: list[Found] = []
    if "email" in wanted and "@" in text:
        for m in _EMAIL.finditer(text):
            found.append(Found("email", m.start(), m.end(), m.group(0)))
    if "passport" in wanted:
        for m in _PASSPORT_PAIR.finditer(text):
            digits = re.sub(r"\D", "", m.group(1) + m.group(2))
            found.append(Found("passport", m.start(1), m.end(2), digits))
    for m in _DIGIT_RUN.finditer(text):
        raw = m.group(0)
        start, end = m.start(), m.end()
        # brackets belong to a number only when they are balanced inside it
        while raw and raw[-1] == ")" and raw.count(")") > raw.count("("):
            raw, end = raw[:-1], end - 1
        while raw and raw[0] == "(" and raw.count("(") > raw.count(")"):
            raw, start = raw[1:], start + 1
        if any(f.start <= start < f.end for f in found):
            continue
        kind = _classify(raw, text[max(0, start - 40) : start])
        if kind in wanted:
            found.append(Found(kind, start, end, re.sub(r"\D", "", raw)))
    found.sort(key=lambda f: f.start)
    return found


def mask_value(kind: str, raw: str, digits: str) -> str:
    if kind == "card":
        return f"{MASK * 4} {digits[-4:]}"
    if kind == "email":
        local, _, domain = raw.partition("@")
        return f"{local[:1]}{MASK * 3}@{domain}"
    if kind == "account":
        return f"{MASK * 4}{digits[-4:]}"
    # phones, passports, INN, SNILS: nothing of them is needed to tell them apart
    return {
        "phone": "[телефон]",
        "passport": "[паспорт]",
        "inn": "[ИНН]",
        "snils": "[СНИЛС]",
    }.get(kind, MASK * len(digits))


def mask(text: str, kinds: Iterable[str] = KINDS) -> str:
    """``text`` with every personal item replaced by its masked form."""
    if not text:
        return text
    found = find(text, kinds)
    if not found:
        return text
    parts: list[str] = []
    last = 0
    for f in found:
        parts.append(text[last : f.start])
        parts.append(f.masked(text))
        last = f.end
    parts.append(text[last:])
    return "".join(parts)


def contains(text: str, kinds: Iterable[str] = KINDS) -> bool:
    return bool(text) and bool(find(text, kinds))
