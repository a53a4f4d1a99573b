"""Attachment files: checked by content (not by name), size-limited, stored by sha256.

Files are written under ``<data_dir>/attachments/ab/cd/<sha256>`` before the database row
that points at them commits; a crash between the two leaves an unreferenced file, never a
row without its file.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
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


@dataclass(frozen=True)
class StoredFile:
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_path: str


def clean_filename(name: str | None) -> str:
    """A safe display name: no path, no control characters, at most 200 characters."""
    name = unicodedata.normalize("NFC", (name or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[\x00-\x1f\x7f\"<>|:*?]", "_", name).strip(" .")
    return (name or "file")[-200:]


def check(data: bytes, filename: str, *, max_bytes: int) -> tuple[str, str]:
    """Return (clean name, sniffed type) or raise a 4xx naming what is wrong."""
    name = clean_filename(filename)
    if not data:
        raise BadRequest("the file is empty", code="attachment_empty")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the file is larger than {max_bytes // (1024 * 1024)} MB",
            code="attachment_too_large",
            max_bytes=max_bytes,
        )
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
    return name, sniffed


def store(data: bytes, filename: str, *, data_dir: Path, max_bytes: int) -> StoredFile:
    """Check and durably write ``data``; identical content is stored once."""
    name, content_type = check(data, filename, max_bytes=max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    relative = f"{digest[:2]}/{digest[2:4]}/{digest}"
    path = data_dir / "attachments" / relative
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{digest}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    return StoredFile(
        filename=name,
        content_type=content_type,
        size=len(data),
        sha256=digest,
        storage_path=relative,
    )


def path_of(data_dir: Path, storage_path: str) -> Path:
    return data_dir / "attachments" / storage_path
