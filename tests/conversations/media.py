"""Tiny but well-formed files of the accepted picture, voice and video types, built byte
by byte so a test shows exactly what okno recognises by content."""

from __future__ import annotations

import struct

# A 1x1 GIF89a: header, logical screen, 2-colour table, graphic control, image, trailer.
GIF = bytes.fromhex(
    "47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b"
)

# A 1x1 lossless WebP: RIFF container, WEBP form, one VP8L chunk (13 bytes + 1 pad byte).
_VP8L = bytes.fromhex("2f000000100710111188 88fe07".replace(" ", ""))
WEBP = (
    b"RIFF"
    + struct.pack("<I", 4 + 8 + len(_VP8L) + 1)
    + b"WEBP"
    + b"VP8L"
    + struct.pack("<I", len(_VP8L))
    + _VP8L
    + b"\0"
)

# An MP3: an empty ID3v2.4 tag, then one MPEG-1 Layer III frame (128 kbit/s, 44.1 kHz,
# 417 bytes with its 4-byte header).
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes.fromhex("fffb9064") + b"\0" * 413


def box(kind: bytes, payload: bytes) -> bytes:
    """One ISO base media file box: 32-bit size, four-letter type, payload."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def iso_media(major: bytes, compatible: list[bytes], size: int = 0) -> bytes:
    """An ``ftyp`` box naming the brands, then an ``mdat`` box padding to ``size`` bytes."""
    ftyp = box(b"ftyp", major + struct.pack(">I", 0x200) + b"".join(compatible))
    return ftyp + box(b"mdat", b"\0" * max(0, size - len(ftyp) - 8))


# An M4A voice message (audio-only MP4: brand "M4A ") and an MP4 video (brand "isom").
M4A = iso_media(b"M4A ", [b"M4A ", b"mp42", b"isom"], 64)
MP4 = iso_media(b"isom", [b"isom", b"iso2", b"avc1", b"mp41"], 64)


def mp4_of(size: int) -> bytes:
    """An MP4 video of exactly ``size`` bytes."""
    return iso_media(b"isom", [b"isom", b"iso2", b"avc1", b"mp41"], size)
