"""Reading the bank's mailbox over IMAP (RFC 3501) with the standard library's imaplib.

imaplib blocks, so every function here runs in a worker thread (`asyncio.to_thread`) and
opens its own short session: log in, select the folder, do the work, log out. A mailbox
polled every few seconds needs no kept-open connection, and a short session cannot be
left half-broken by a network blip.

Where fetching stands is the cursor ``"<UIDVALIDITY>:<last UID fetched>:<last UID done>"``.
Letters are read with BODY.PEEK (reading does not mark them), and only letters whose UIDs
the saved cursor covers — that is, already stored by okno — are marked \\Seen or moved:
a crash between fetching and storing fetches them again instead of losing them. A new
UIDVALIDITY means the server renumbered the folder (it was rebuilt or restored), so the
old UIDs mean nothing and fetching starts over; the Message-IDs keep that from storing
anything twice.
"""

from __future__ import annotations

import base64
import imaplib
import re
import select
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from okno.channels.adapter import SendFailed

BATCH = 25  # letters per poll; a full mailbox is worked through over several polls


@dataclass(frozen=True)
class Cursor:
    uidvalidity: int
    last: int  # the highest UID fetched
    done: int  # the highest UID marked \Seen or moved (its letter is stored)

    @classmethod
    def parse(cls, value: str | None) -> Cursor | None:
        parts = (value or "").split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))

    def __str__(self) -> str:
        return f"{self.uidvalidity}:{self.last}:{self.done}"


@dataclass
class Fetched:
    uidvalidity: int
    letters: list[tuple[int, bytes]]  # (UID, raw RFC 5322 bytes), oldest first
    cursor: Cursor
    waited: bool = False  # whether the call already waited for new mail (IDLE)


def tls_context(config: dict[str, Any]) -> ssl.SSLContext:
    """Verified TLS; the bank's own CA bundle when its servers use an internal CA."""
    context = ssl.create_default_context(cafile=config.get("tls_ca_file") or None)
    return context


def _port(config: dict[str, Any]) -> int:
    if config.get("imap_port"):
        return int(config["imap_port"])
    return 993 if config.get("imap_security", "ssl") == "ssl" else 143


def _reason(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return re.sub(r"\s+", " ", str(text))[:200]


@contextmanager
def session(config: dict[str, Any], timeout: float) -> Iterator[imaplib.IMAP4]:
    """A logged-in IMAP session with the configured folder selected (read-write).

    Raises SendFailed: a refused login or a missing folder cannot be cured by retrying
    at once, but the next poll tries again, so every failure here is worth a retry."""
    host = str(config["imap_host"])
    security = config.get("imap_security", "ssl")
    try:
        conn: imaplib.IMAP4
        if security == "ssl":
            conn = imaplib.IMAP4_SSL(
                host, _port(config), ssl_context=tls_context(config), timeout=timeout
            )
        else:
            conn = imaplib.IMAP4(host, _port(config), timeout=timeout)
            if security == "starttls":
                conn.starttls(ssl_context=tls_context(config))
    except (OSError, imaplib.IMAP4.error) as exc:
        kind = "timed out" if isinstance(exc, TimeoutError) else _reason(exc)
        raise SendFailed(f"IMAP: cannot connect to {host}:{_port(config)}: {kind}") from None
    try:
        try:
            conn.login(str(config["imap_user"]), str(config["imap_password"]))
        except (imaplib.IMAP4.error, UnicodeError) as exc:
            raise SendFailed(
                f"IMAP login failed for {config['imap_user']}: {_reason(exc)}"
            ) from None
        folder = str(config.get("imap_folder") or "INBOX")
        status, data = conn.select(_quoted(folder))
        if status != "OK":
            raise SendFailed(f"IMAP: cannot open folder {folder!r}: {_text(data)}")
        yield conn
    except TimeoutError:
        raise SendFailed(f"IMAP: {host} did not answer in time") from None
    except (OSError, imaplib.IMAP4.error) as exc:
        raise SendFailed(f"IMAP: {_reason(exc)}") from None
    finally:
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _quoted(folder: str) -> str:
    """A mailbox name as an IMAP quoted string (names with spaces are common), non-ASCII
    names ("Входящие") in IMAP's modified UTF-7."""
    encoded = encode_folder(folder)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def encode_folder(name: str) -> str:
    """RFC 3501 5.1.3: printable ASCII as is ("&" as "&-"), other runs as UTF-16 in
    base64 with "," for "/", between "&" and "-"."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = base64.b64encode("".join(run).encode("utf-16-be")).decode()
            out.append("&" + data.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            run.append(char)
    flush()
    return "".join(out)


def _text(data: Any) -> str:
    if isinstance(data, list) and data:
        first = data[0]
        return first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first)
    return ""


def _uidvalidity(conn: imaplib.IMAP4) -> int:
    _, data = conn.response("UIDVALIDITY")
    value = _text(data)
    if not value.isdigit():
        raise SendFailed("IMAP: the server gave no UIDVALIDITY for the folder")
    return int(value)


def _uid_set(first: int, last: int) -> str:
    return f"{first}:{last}" if first != last else str(first)


def fetch_new(
    config: dict[str, Any],
    cursor_value: str | None,
    timeout: float,
    wait: float = 0.0,
    batch: int = BATCH,
) -> Fetched:
    """Mark what the saved cursor says is stored, then fetch up to ``batch`` new letters;
    with none there, wait up to ``wait`` seconds for one (IMAP IDLE) and look again."""
    with session(config, timeout) as conn:
        uidvalidity = _uidvalidity(conn)
        cursor = Cursor.parse(cursor_value)
        if cursor is None or cursor.uidvalidity != uidvalidity:
            cursor = Cursor(uidvalidity, 0, 0)
        if cursor.done < cursor.last:
            _finish(conn, config, cursor.done + 1, cursor.last)
            cursor = Cursor(uidvalidity, cursor.last, cursor.last)
        uids = _search(conn, config, cursor.last)
        waited = False
        if not uids and wait > 0 and _has(conn, "IDLE"):
            _idle(conn, wait)
            waited = True
            uids = _search(conn, config, cursor.last)
        letters: list[tuple[int, bytes]] = []
        for uid in uids[:batch]:
            raw = _fetch_raw(conn, uid)
            if raw is not None:
                letters.append((uid, raw))
        last = max([cursor.last, *uids[:batch]])
        return Fetched(uidvalidity, letters, Cursor(uidvalidity, last, cursor.done), waited)


def _search(conn: imaplib.IMAP4, config: dict[str, Any], after: int) -> list[int]:
    """UIDs of new letters above ``after``, oldest first."""
    # "N:*" also matches the highest UID when none is above N, hence the filter.
    criteria = f"UID {after + 1}:*"
    if config.get("after_fetch", "seen") == "seen":
        # Letters already read before okno first looked (or read in another client
        # before this poll) are not new: only unread ones above the cursor are.
        criteria += " UNSEEN"
    status, data = conn.uid("SEARCH", criteria)
    if status != "OK":
        raise SendFailed(f"IMAP: search failed: {_text(data)}")
    return sorted(int(u) for u in _text(data).split() if u.isdigit() and int(u) > after)


def _idle(conn: imaplib.IMAP4, seconds: float) -> None:
    """RFC 2177 IDLE: return when the server reports a change in the folder (a new letter:
    "* N EXISTS") or after ``seconds``. imaplib (before Python 3.14) has no IDLE, so the
    command is spoken directly on its connection; a report that arrives in the same packet
    as the server's "+ idling" only delays the look until ``seconds`` pass, it is never
    missed (the search after DONE finds the letter)."""
    tag: bytes = getattr(conn, "_new_tag")()  # noqa: B009 - imaplib's own tag counter
    conn.send(tag + b" IDLE\r\n")
    line = conn.readline()
    if not line.startswith(b"+"):
        _read_until_tagged(conn, tag, line)
        return
    deadline = time.monotonic() + seconds
    sock = conn.sock
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            pending = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
            if not pending and not select.select([sock], [], [], remaining)[0]:
                break
            line = conn.readline()
            if not line:
                raise imaplib.IMAP4.abort("the server closed the connection")
            if re.match(rb"\* \d+ EXISTS", line):
                break
    finally:
        conn.send(b"DONE\r\n")
        _read_until_tagged(conn, tag, b"")


def _read_until_tagged(conn: imaplib.IMAP4, tag: bytes, line: bytes) -> None:
    while not line.startswith(tag + b" "):
        line = conn.readline()
        if not line:
            raise imaplib.IMAP4.abort("the server closed the connection")


def _has(conn: imaplib.IMAP4, capability: str) -> bool:
    status, data = conn.capability()
    return status == "OK" and capability in _text(data).upper().split()


def _fetch_raw(conn: imaplib.IMAP4, uid: int) -> bytes | None:
    """A letter's full bytes, without setting \\Seen (BODY.PEEK)."""
    status, data = conn.uid("FETCH", str(uid), "(BODY.PEEK[])")
    if status != "OK":
        raise SendFailed(f"IMAP: fetch of UID {uid} failed: {_text(data)}")
    for item in data or []:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None  # expunged meanwhile


def _finish(conn: imaplib.IMAP4, config: dict[str, Any], first: int, last: int) -> None:
    """Mark stored letters \\Seen, or move them to the done folder."""
    uids = _uid_set(first, last)
    if config.get("after_fetch", "seen") == "seen":
        status, data = conn.uid("STORE", uids, "+FLAGS.SILENT", r"(\Seen)")
        if status != "OK":
            raise SendFailed(f"IMAP: cannot mark letters read: {_text(data)}")
        return
    target = _quoted(str(config.get("move_to") or "okno-processed"))
    conn.create(target)  # "already exists" is fine
    status, data = conn.uid("STORE", uids, "+FLAGS.SILENT", r"(\Seen)")
    if _has(conn, "MOVE"):
        status, data = conn.uid("MOVE", uids, target)
        if status != "OK":
            raise SendFailed(f"IMAP: cannot move letters: {_text(data)}")
        return
    # RFC 6851 MOVE is missing: copy, flag deleted, expunge.
    status, data = conn.uid("COPY", uids, target)
    if status != "OK":
        raise SendFailed(f"IMAP: cannot copy letters: {_text(data)}")
    conn.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)")
    conn.expunge()


def fetch_one(config: dict[str, Any], uidvalidity: int, uid: int, timeout: float) -> bytes:
    """One letter again by UID (to get an attachment whose bytes are no longer at hand)."""
    with session(config, timeout) as conn:
        if _uidvalidity(conn) != uidvalidity:
            raise SendFailed("IMAP: the folder was renumbered; the letter is gone", retry=False)
        raw = _fetch_raw(conn, uid)
    if raw is None:
        raise SendFailed(f"IMAP: the letter with UID {uid} is gone", retry=False)
    return raw


def check(config: dict[str, Any], timeout: float) -> str:
    """Log in and open the folder; what a person checking the settings should read."""
    with session(config, timeout) as conn:
        _, data = conn.response("EXISTS")
        count = _text(data) or "0"
    folder = config.get("imap_folder") or "INBOX"
    return f"IMAP: {config['imap_user']} on {config['imap_host']}, {folder}: {count} letters"
