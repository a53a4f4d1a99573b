"""A stand-in for ClamAV's clamd on loopback, speaking its documented protocol.

A real clamd is unusable offline: it refuses to start without a virus database, which
freshclam downloads at run time. This server speaks the same wire protocol (clamd(8)):
``zINSTREAM\\0`` / ``nINSTREAM\\n``, chunks each prefixed by a 4-byte big-endian length, a
zero-length terminator, one reply line ``stream: OK`` or ``stream: <Name> FOUND`` (NUL- or
newline-terminated as the command was), plus ``PING`` → ``PONG``. It flags the EICAR test
string (the industry's harmless "test virus") as ``Eicar-Test-Signature``, as ClamAV does,
and enforces a ``StreamMaxLength`` with clamd's own error reply.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
from pathlib import Path
from typing import Any

# Built from two halves so this source file itself is not flagged by a scanner on the box.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Eicar-Test-Signature"


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
        elif EICAR in data:
            sock.sendall(f"stream: {SIGNATURE} FOUND".encode() + end)
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
    """``FakeClamd().start()``; ``address`` is what OKNO_CLAMD_ADDRESS takes."""

    def __init__(
        self,
        *,
        unix_path: Path | None = None,
        port: int = 0,
        max_length: int = 25 * 1024 * 1024,
    ) -> None:
        self.unix_path = unix_path
        self.port = port
        self.max_length = max_length
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
