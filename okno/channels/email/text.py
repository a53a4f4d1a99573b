"""Turning a customer's e-mail body into what an operator should read.

Two jobs: HTML-only mail becomes plain text (the operator never sees the sender's markup;
scripts, styles and hidden head content are dropped, links stay as their visible text with
the address beside it), and the quoted history and signature a mail client appends are cut
off where they can be recognised for sure. When in doubt the text is kept: a cut too many
hides what the customer wrote, a cut too few only shows a little more.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never text for a person (and may be hostile).
_DROP = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}
# Elements that start a new line of text.
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "table",
    "tr",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "hr",
    "address",
    "form",
}
_VOID = {"br", "img", "hr", "meta", "link", "input", "col", "area", "base", "wbr", "source"}
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tel:")


class _TextOf(HTMLParser):
    """The standard library's tolerant HTML tokenizer, collecting only visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.dropping = 0  # depth inside elements whose content is dropped
        self.links: list[tuple[str, int]] = []  # open <a>: its href, where its text starts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            if tag not in _VOID:
                self.dropping += 1
            return
        if self.dropping:
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n• ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in _BLOCK:
            self.parts.append("\n\n" if tag in ("p", "table", "blockquote") else "\n")
        elif tag == "a":
            href = next((v for k, v in attrs if k == "href" and v), "")
            self.links.append((href.strip(), len(self.parts)))
        elif tag == "img":
            alt = next((v for k, v in attrs if k == "alt" and v), "")
            if alt.strip():
                self.parts.append(f"[{alt.strip()}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            return  # <script/> has no content to drop
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self.dropping = max(0, self.dropping - 1)
            return
        if self.dropping:
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            visible = "".join(self.parts[start:]).strip()
            if href.lower().startswith(_LINK_SCHEMES):
                shown = href[7:] if href.lower().startswith("mailto:") else href
                if shown and shown not in visible:
                    self.parts.append(f" ({shown})")
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.dropping:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Visible text of an HTML mail body: no markup, scripts or styles; links as text."""
    parser = _TextOf()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser is tolerant; anything left means "give up on markup"
        return _tidy(re.sub(r"<[^>]*>", " ", html))
    return _tidy("".join(parser.parts))


def _tidy(text: str) -> str:
    text = text.replace("\xa0", " ").replace("\r\n", "\n").replace("\r", "\n")
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# A line that introduces the quoted letter being answered. Only shapes the common clients
# write are recognised (Gmail, Outlook, Apple Mail, Thunderbird, Yandex, Mail.ru).
_ATTRIBUTION = re.compile(
    r"^(on\b.+\bwrote|.+\b(написал|написала|написал\(а\)|пишет)|le\b.+\ba écrit|am\b.+\bschrieb)"
    r"\s*:\s*$",
    re.IGNORECASE,
)
_ORIGINAL = re.compile(
    r"^-{2,}\s*(original message|исходное сообщение|reply message|ответное сообщение)\s*-{2,}$",
    re.IGNORECASE,
)
_OUTLOOK_SEPARATOR = re.compile(r"^_{10,}$")
_HEADER_LINE = re.compile(r"^\*?(from|от|отправитель)\s*:\*?\s", re.IGNORECASE)
_SENT_FROM = re.compile(
    r"^(sent from my \w+|get outlook for \w+|отправлено (с|из) .{1,60}|"
    r"отправлено из мобильной почты .{1,30})$",
    re.IGNORECASE,
)


def trim_reply(text: str) -> str:
    """The customer's own words: the quoted letter below their reply and the signature
    cut off when a known marker shows where they start. Inline answers between quoted
    lines are kept whole (no reliable cut exists there)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    for i, raw in enumerate(lines):
        line = raw.strip()
        if _ORIGINAL.match(line):
            cut = i
            break
        if _OUTLOOK_SEPARATOR.match(line) and _next_text(lines, i + 1, _HEADER_LINE):
            cut = i
            break
        if _HEADER_LINE.match(line) and _header_block(lines, i):
            cut = i
            break
        joined = line
        if i + 1 < len(lines) and not line.endswith(":"):
            joined = f"{line} {lines[i + 1].strip()}"  # Gmail wraps a long attribution
        if (_ATTRIBUTION.match(line) or _ATTRIBUTION.match(joined)) and _quote_follows(lines, i):
            cut = i
            break
        if line.endswith(":") and "@" in line and _quote_follows(lines, i):
            cut = i  # "пн, 23 нояб. 2026 г. в 10:00, Банк <support@bank.ru>:"
            break
    kept = lines[:cut]
    # A trailing block of ">" lines with nothing after it is the quoted letter too.
    end = len(kept)
    while end and not kept[end - 1].strip():
        end -= 1
    start = end
    while start and (kept[start - 1].lstrip().startswith(">") or not kept[start - 1].strip()):
        start -= 1
    if start < end and any(line.lstrip().startswith(">") for line in kept[start:end]):
        kept = kept[:start]
    # The signature: RFC 3676's "-- " line, or a lone "Sent from my iPhone".
    for i, line in enumerate(kept):
        if line in ("-- ", "--") and i > 0:
            kept = kept[:i]
            break
    while kept and not kept[-1].strip():
        kept.pop()
    if kept and _SENT_FROM.match(kept[-1].strip()):
        kept.pop()
    result = "\n".join(kept).strip()
    return result or text.strip()  # never cut a letter down to nothing


def _next_text(lines: list[str], start: int, pattern: re.Pattern[str]) -> bool:
    for line in lines[start : start + 3]:
        if line.strip():
            return bool(pattern.match(line.strip()))
    return False


def _quote_follows(lines: list[str], i: int) -> bool:
    """Whether quoted (">") lines come right after line ``i`` (or the one it wraps onto)."""
    for line in lines[i + 1 : i + 4]:
        if line.strip().startswith(">"):
            return True
    return False


def _header_block(lines: list[str], i: int) -> bool:
    """Outlook's quoted header: From: followed within a few lines by Sent:/Date: and To:
    or Subject: (in English or Russian)."""
    window = " ".join(line.strip().lower() for line in lines[i + 1 : i + 6])
    has_date = any(w in window for w in ("sent:", "date:", "отправлено:", "дата:"))
    has_other = any(w in window for w in ("to:", "subject:", "кому:", "тема:"))
    return has_date and has_other
