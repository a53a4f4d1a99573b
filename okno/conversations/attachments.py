"""Attachment files: checked by content (not by name), size-limited, stored by sha256.

Files are written under ``<data_dir>/attachments/ab/cd/<sha256>`` before the database row
that points at them commits; a crash between the two leaves an unreferenced file, never a
row without its file.

Only files in ``attachments/`` are ever served. When an antivirus is configured
(``okno.conversations.scanning``), a file waiting for its scan is kept under
``scan-pending/`` and an infected one (or one the antivirus never managed to check)
under ``quarantine/``, by the same relative path; the attachment row's ``scan_status``
says which folder holds it.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import filetype

from okno.errors import BadRequest, PayloadTooLarge, UnsupportedMedia

# Sniffed MIME type -> the file-name extensions that may carry it.
ALLOWED = {
    "image/png": {".png"},
    "image/jpeg": {".jpg", ".jpeg", ".jpe"},
    "image/gif": {".gif"},
    "image/webp": {".webp"},
    "application/pdf": {".pdf"},
    # voice messages and short videos from messengers (Telegram and WhatsApp voice is Opus
    # in Ogg; Viber and VK send MP4/M4A and MP3)
    "audio/ogg": {".ogg", ".oga", ".opus"},
    "audio/mpeg": {".mp3"},
    "audio/mp4": {".m4a", ".mp4"},
    "video/mp4": {".mp4"},
}
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
# Type families a per-type size limit may name instead of one type ("image/*").
FAMILIES = {t.split("/", 1)[0] + "/*" for t in ALLOWED}

# Scan states of a stored file, and the folder (under the data directory) holding it.
SCAN_NONE = "none"  # no antivirus configured when it arrived
SCAN_CLEAN = "clean"
SCAN_PENDING = "pending"  # the antivirus was not answering; a job retries the scan
SCAN_BLOCKED = "blocked"  # the antivirus found a threat: quarantined, never served
# The antivirus did not answer for as long as the scan job retried: blocked unscanned,
# quarantined like an infected file, never served.
SCAN_FAILED = "failed"
AREAS = {
    SCAN_NONE: "attachments",
    SCAN_CLEAN: "attachments",
    SCAN_PENDING: "scan-pending",
    SCAN_BLOCKED: "quarantine",
    SCAN_FAILED: "quarantine",
}


@dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_path: str
    scan_status: str = SCAN_NONE
    scan_signature: str | None = None


def clean_filename(name: str | None) -> str:
    """A safe display name: no path, no control characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f\x7f\"<>|:*?]", "_", name).strip(" .")
    return (name or "file")[-200:]


def limit_for(content_type: str, *, max_bytes: int, type_limits: Mapping[str, int]) -> int:
    """The size limit of one type: its own, else its family's (``image/*``), else ``max_bytes``."""
    family = content_type.split("/", 1)[0] + "/*"
    return type_limits.get(content_type, type_limits.get(family, max_bytes))


def _too_large(limit: int, content_type: str | None = None) -> PayloadTooLarge:
    # in MB to two decimals, never 0: a limit under 1 MB is still a limit a person can read
    max_mb = max(0.01, round(limit / (1024 * 1024), 2))
    what = f"a {content_type} file" if content_type else "the file"
    return PayloadTooLarge(
        f"{what} may be at most {max_mb:g} MB",
        code="attachment_too_large",
        max_bytes=limit,
        max_mb=max_mb,
    )


def check(
    data: bytes, filename: str, *, max_bytes: int, type_limits: Mapping[str, int] | None = None
) -> tuple[str, str]:
    """Return (clean name, sniffed type) or raise a 4xx naming what is wrong.

    ``type_limits`` (bytes by MIME type or family such as ``image/*``) replace
    ``max_bytes`` for the types they name, so voice notes and videos may be allowed more
    than scans of documents, or less."""
    type_limits = type_limits or {}
    name = clean_filename(filename)
    if not data:
        raise BadRequest("the file is empty", code="attachment_empty")
    # the type first (from the first bytes), so a file too large is told its type's limit
    kind = filetype.guess(data)
    sniffed = kind.mime if kind else None
    if sniffed not in ALLOWED:
        raise UnsupportedMedia(
            "only images (PNG, JPEG, GIF, WebP), PDF documents, voice messages (Ogg, MP3, M4A) "
            "and MP4 videos can be sent",
            code="attachment_type_not_allowed",
            detected=sniffed or "unknown",
        )
    ext = Path(name).suffix.lower()
    if ext not in ALLOWED[sniffed]:
        raise UnsupportedMedia(
            f"the file's content ({sniffed}) does not match its name {name!r}",
            code="attachment_type_mismatch",
            detected=sniffed,
        )
    limit = limit_for(sniffed, max_bytes=max_bytes, type_limits=type_limits)
    if len(data) > limit:
        raise _too_large(limit, sniffed)
    return name, sniffed


def relative_path(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def write(data_dir: Path, area: str, relative: str, data: bytes) -> None:
    """Durably write ``data`` under ``<data_dir>/<area>/<relative>`` unless already there."""
    path = data_dir / area / relative
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def store(
    data: bytes,
    filename: str,
    *,
    data_dir: Path,
    max_bytes: int,
    type_limits: Mapping[str, int] | None = None,
    scan_status: str = SCAN_NONE,
    scan_signature: str | None = None,
) -> StoredFile:
    """Check and durably write ``data`` into the folder of its scan state; identical
    content is stored once per folder."""
    name, content_type = check(data, filename, max_bytes=max_bytes, type_limits=type_limits)
    digest = hashlib.sha256(data).hexdigest()
    relative = relative_path(digest)
    write(data_dir, AREAS[scan_status], relative, data)
    return StoredFile(
        filename=name,
        content_type=content_type,
        size=len(data),
        sha256=digest,
        storage_path=relative,
        scan_status=scan_status,
        scan_signature=scan_signature,
    )


def path_of(data_dir: Path, storage_path: str, scan_status: str = SCAN_NONE) -> Path:
    """Where the file of an attachment in ``scan_status`` lies."""
    return data_dir / AREAS.get(scan_status, "attachments") / storage_path


def move(data_dir: Path, storage_path: str, *, from_status: str, to_status: str) -> None:
    """Move a file between folders (a finished scan); a no-op when it already moved."""
    source = path_of(data_dir, storage_path, from_status)
    target = path_of(data_dir, storage_path, to_status)
    if source == target or not source.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        source.unlink(missing_ok=True)
    else:
        os.replace(source, target)
