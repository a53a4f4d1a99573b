"""A small client for ClamAV's daemon, clamd, speaking its documented INSTREAM command.

The exchange (clamd(8), "INSTREAM"): send ``zINSTREAM\\0``, then the file in chunks, each
prefixed by its length as a 4-byte big-endian integer, then a zero-length chunk. clamd
answers one NUL-terminated line: ``stream: OK``, ``stream: <Signature> FOUND`` or
``<reason> ERROR`` (for example when the stream is longer than its ``StreamMaxLength``).
``zPING\\0`` is answered ``PONG``: :func:`ping` uses it for the readiness probe.

okno streams the bytes it already holds in memory (uploads are size-checked first), so
clamd never needs access to okno's data directory: it may run on another host.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass

CHUNK = 64 * 1024
MAX_REPLY = 4096


class ScannerUnavailable(Exception):
    """clamd could not be reached, timed out, or answered with an error: nothing is known
    about the file, so it must not be treated as clean."""

    code = "scanner_unavailable"


@dataclass(frozen=True)
class Verdict:
    """What clamd said of one file: clean, or infected with the named signature."""

    infected: bool
    signature: str | None = None


@dataclass(frozen=True)
class Address:
    """Where clamd listens: a TCP ``host``/``port`` or a Unix socket ``path``."""

    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


def parse_address(value: str) -> Address:
    """``host:port``, ``[v6]:port``, ``unix:/path`` or ``/path``; ValueError when malformed."""
    value = value.strip()
    if value.startswith("unix:"):
        value = value[5:]
        if not value.startswith("/"):
            raise ValueError("a Unix socket address needs an absolute path: unix:/run/clamd.ctl")
    if value.startswith("/"):
        return Address(path=value)
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("use host:port (clamd's TCPSocket, usually 3310) or unix:/path")
    return Address(host=host, port=int(port))


def parse_reply(reply: str) -> Verdict:
    """Turn clamd's reply line into a verdict; ScannerUnavailable for an ERROR or nonsense."""
    reply = reply.strip("\0\r\n ")
    _, _, result = reply.partition(": ") if reply.startswith("stream") else ("", "", reply)
    if result == "OK":
        return Verdict(infected=False)
    if result.endswith(" FOUND"):
        signature = result[: -len(" FOUND")].strip() or "unknown"
        return Verdict(infected=True, signature=signature[:200])
    raise ScannerUnavailable(f"clamd answered: {reply[:200] or '(nothing)'}")


async def scan(address: Address, data: bytes, *, seconds: float) -> Verdict:
    """Scan ``data`` with clamd at ``address``; ScannerUnavailable when that is not possible."""
    try:
        return await asyncio.wait_for(_scan(address, data), timeout=seconds)
    except TimeoutError:
        raise ScannerUnavailable(f"clamd at {address} did not answer in {seconds:g} s") from None
    except OSError as exc:
        raise ScannerUnavailable(f"clamd at {address}: {type(exc).__name__}") from None


async def ping(address: Address, *, seconds: float) -> None:
    """Ask clamd ``PING``; returns when it answers ``PONG``, else ScannerUnavailable."""
    try:
        reply = await asyncio.wait_for(_ping(address), timeout=seconds)
    except TimeoutError:
        raise ScannerUnavailable(f"clamd at {address} did not answer in {seconds:g} s") from None
    except OSError as exc:
        raise ScannerUnavailable(f"clamd at {address}: {type(exc).__name__}") from None
    if reply != "PONG":
        raise ScannerUnavailable(f"clamd at {address} answered: {reply[:200] or '(nothing)'}")


async def _connect(address: Address) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.path:
        return await asyncio.open_unix_connection(address.path)
    return await asyncio.open_connection(address.host, address.port)


async def _read_reply(reader: asyncio.StreamReader) -> str:
    reply = bytearray()
    while b"\0" not in reply and len(reply) < MAX_REPLY:
        part = await reader.read(MAX_REPLY)
        if not part:
            break
        reply += part
    return reply.split(b"\0", 1)[0].decode("utf-8", "replace")


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass


async def _ping(address: Address) -> str:
    reader, writer = await _connect(address)
    try:
        writer.write(b"zPING\0")
        await writer.drain()
        return (await _read_reply(reader)).strip()
    finally:
        await _close(writer)


async def _scan(address: Address, data: bytes) -> Verdict:
    reader, writer = await _connect(address)
    try:
        writer.write(b"zINSTREAM\0")
        for start in range(0, len(data), CHUNK):
            chunk = data[start : start + CHUNK]
            writer.write(struct.pack(">I", len(chunk)) + chunk)
            await writer.drain()
        writer.write(struct.pack(">I", 0))
        await writer.drain()
        reply = await _read_reply(reader)
    except (ConnectionResetError, BrokenPipeError):
        # clamd closes the stream it refuses (over StreamMaxLength) before we finish
        raise ScannerUnavailable(f"clamd at {address} closed the connection") from None
    finally:
        await _close(writer)
    return parse_reply(reply)
