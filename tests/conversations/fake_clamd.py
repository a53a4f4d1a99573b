"""A stand-in for ClamAV's clamd on loopback, speaking its documented protocol.

A real clamd is unusable offline: it refuses to start without a virus database, which
freshclam downloads at run time. This server models what okno relies on, and nothing
more:

**The wire protocol** (clamd(8)): ``zINSTREAM\\0`` / ``nINSTREAM\\n``, chunks each prefixed
by a 4-byte big-endian length, a zero-length terminator, one reply line ``stream: OK`` or
``stream: <Name> FOUND`` (NUL- or newline-terminated as the command was); ``PING`` →
``PONG``; a stream longer than ``StreamMaxLength`` answered with clamd's own
``INSTREAM size limit exceeded. ERROR``; ``break_down()`` makes it answer every scan with
an ``ERROR`` (a clamd that is up but cannot scan).

**The signature database**, given as lines in two of ClamAV's real formats
(``sigtool --help``, "Creating signatures for ClamAV"), matched the way ClamAV matches them:

- ``.hdb`` — ``MD5:Size:Name``: the MD5 and size of the *whole* stream. This is how the
  official database recognises the EICAR test file (``Win.Test.EICAR_HDB-1``): only the
  exact 68-byte file, never the EICAR string inside a bigger file. (okno refuses the
  plain EICAR file as text before any scan, so EICAR cannot test okno end to end.)
- ``.ndb`` — ``Name:TargetType:Offset:HexSignature``, what a bank puts in a custom
  ``local.ndb``: the bytes anywhere in the stream (offset ``*``) or at a fixed offset
  (``n``). Only target type 0 (any file) and plain hex are modelled; ClamAV's wildcards,
  alternatives, other target types, logical signatures, unpacking of archives and
  heuristics are not, and a line using them is refused rather than misread.

The tests' infected files carry :data:`MARKER`, matched by the custom signature
:data:`TEST_NDB` (name :data:`SIGNATURE`): a real clamd given the same line in a
``local.ndb`` reports the same files the same way.
"""

from __future__ import annotations

import hashlib
import re
import socket
import socketserver
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Built from two halves so this source file itself is not flagged by a scanner on the box.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Win.Test.EICAR_HDB-1"
# The official database's line for the EICAR test file (whole-file MD5 and size).
EICAR_HDB = f"{hashlib.md5(EICAR).hexdigest()}:{len(EICAR)}:{EICAR_SIGNATURE}"

# The tests' custom signature: bytes no real file carries, as a bank's local.ndb would.
MARKER = b"OKNO-TEST-" + b"MALWARE-MARKER-5d1c7e"
SIGNATURE = "Okno.Test.Infected-1"
TEST_NDB = f"{SIGNATURE}:0:*:{MARKER.hex()}"

DEFAULT_DATABASE = (EICAR_HDB, TEST_NDB)


@dataclass(frozen=True)
class _Hash:
    md5: str
    size: int | None
    name: str

    def matches(self, data: bytes) -> bool:
        if self.size is not None and len(data) != self.size:
            return False
        return hashlib.md5(data).hexdigest() == self.md5


@dataclass(frozen=True)
class _Body:
    name: str
    offset: int | None  # None: anywhere
    pattern: bytes

    def matches(self, data: bytes) -> bool:
        if self.offset is None:
            return self.pattern in data
        return data[self.offset : self.offset + len(self.pattern)] == self.pattern


def parse_database(lines: Iterable[str]) -> list[_Hash | _Body]:
    """Signatures from ``.hdb`` and ``.ndb`` lines; ValueError for what is not modelled."""
    out: list[_Hash | _Body] = []
    for raw in lines:
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) == 3 and re.fullmatch(r"[0-9a-fA-F]{32}", fields[0]):
            md5, size, name = fields
            out.append(_Hash(md5.lower(), None if size == "*" else int(size), name))
        elif len(fields) == 4:
            name, target, offset, hexsig = fields
            if target != "0":
                raise ValueError(f"target type {target} is not modelled: {line}")
            if not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", hexsig):
                raise ValueError(f"only plain hex signatures are modelled: {line}")
            if offset != "*" and not offset.isdigit():
                raise ValueError(f"only offsets * and n are modelled: {line}")
            out.append(_Body(name, None if offset == "*" else int(offset), bytes.fromhex(hexsig)))
        else:
            raise ValueError(f"not an .hdb or .ndb line: {line}")
    return out


class _Handler(socketserver.BaseRequestHandler):
    server: Any

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(5)
        stream = sock.makefile("rb")
        command = _read_command(stream)
        if command is None:
            return
        name, end = command
        if name == b"PING":
            sock.sendall(b"PONG" + end)
            return
        if name != b"INSTREAM":
            sock.sendall(b"UNKNOWN COMMAND" + end)
            return
        data = bytearray()
        while True:
            header = stream.read(4)
            if len(header) < 4:
                return
            (length,) = struct.unpack(">I", header)
            if length == 0:
                break
            if len(data) + length > self.server.max_length:
                sock.sendall(b"INSTREAM size limit exceeded. ERROR" + end)
                return
            chunk = stream.read(length)
            if len(chunk) < length:
                return
            data += chunk
        self.server.scanned.append(bytes(data))
        if self.server.broken:
            sock.sendall(b"Can't allocate memory ERROR" + end)
            return
        found = next((s.name for s in self.server.database if s.matches(bytes(data))), None)
        if found:
            sock.sendall(f"stream: {found} FOUND".encode() + end)
        else:
            sock.sendall(b"stream: OK" + end)


def _read_command(stream: Any) -> tuple[bytes, bytes] | None:
    """``z<CMD>\\0`` or ``n<CMD>\\n``: the command and the terminator its reply uses."""
    first = stream.read(1)
    if first not in (b"z", b"n"):
        return None
    end = b"\0" if first == b"z" else b"\n"
    name = bytearray()
    while True:
        c = stream.read(1)
        if not c:
            return None
        if c == end:
            return bytes(name), end
        name += c


class _TCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Unix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


class FakeClamd:
    """``FakeClamd().start()``; ``address`` is what OKNO_CLAMD_ADDRESS takes.

    ``database``: signature lines (``.hdb``/``.ndb``), by default the official EICAR line
    and the tests' custom signature."""

    def __init__(
        self,
        *,
        unix_path: Path | None = None,
        port: int = 0,
        max_length: int = 25 * 1024 * 1024,
        database: Iterable[str] = DEFAULT_DATABASE,
    ) -> None:
        self.unix_path = unix_path
        self.port = port
        self.max_length = max_length
        self.database = parse_database(database)
        self.server: socketserver.BaseServer | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> FakeClamd:
        server: Any
        if self.unix_path is not None:
            server = _Unix(str(self.unix_path), _Handler)
        else:
            server = _TCP(("127.0.0.1", self.port), _Handler)
        server.scanned = []
        server.broken = False
        server.max_length = self.max_length
        server.database = self.database
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def address(self) -> str:
        assert self.server is not None
        if self.unix_path is not None:
            return f"unix:{self.unix_path}"
        host, port = self.server.server_address  # type: ignore[misc]
        return f"{host}:{port}"

    @property
    def scanned(self) -> list[bytes]:
        """Every stream scanned so far, in order."""
        return self.server.scanned  # type: ignore[union-attr]

    def break_down(self, broken: bool = True) -> None:
        """Answer every scan with an ERROR (a clamd that is up but cannot scan)."""
        self.server.broken = broken  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()  # type: ignore[attr-defined]
            self.server = None


def free_port() -> int:
    """A loopback port nobody listens on: clamd down."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
