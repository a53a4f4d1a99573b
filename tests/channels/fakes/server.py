"""A local stand-in for a messenger platform's HTTP API, on loopback, for contract tests.

Each platform's fake (telegram.py, viber.py, ...) answers the calls okno makes with the
bodies that platform documents, and records every request exactly as it arrived, so a test
can check the precise HTTP okno sent. Faults are scripted: the next N calls answer 429 with
Retry-After, 5xx, or hang past okno's timeout.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    """One request okno made."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, Any]:
        """A multipart/form-data or urlencoded body: field -> str, file -> (name, bytes)."""
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + self.body
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            fields[str(name)] = (filename, payload) if filename else payload.decode()
        return fields


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (a hang past the timeout)


Route = Callable[[Recorded, re.Match[str]], Reply]


class FakePlatform:
    """Subclasses add routes with ``self.route(method, pattern, fn)``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: list[tuple[str, re.Pattern[str], Route]] = []
        self._faults: list[tuple[re.Pattern[str], Reply]] = []
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                reply = fake._dispatch(recorded)
                if reply.delay:
                    time.sleep(reply.delay)
                data: bytes
                if isinstance(reply.body, dict | list):
                    data = json.dumps(reply.body).encode()
                    ctype = "application/json"
                elif isinstance(reply.body, str):
                    data, ctype = reply.body.encode(), "text/plain; charset=utf-8"
                else:
                    data, ctype = reply.body or b"", "application/octet-stream"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.headers.get("Content-Type", ctype))
                    for k, v in reply.headers.items():
                        if k != "Content-Type":
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # okno gave up waiting (a timeout test)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakePlatform:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def route(self, method: str, pattern: str, fn: Route) -> None:
        self._routes.append((method, re.compile(pattern), fn))

    def fail_next(self, pattern: str, reply: Reply, times: int = 1) -> None:
        """The next ``times`` requests whose path matches ``pattern`` get ``reply`` (and are
        not processed: a 429, a 500 or a hang leaves no trace on the platform)."""
        with self._lock:
            self._faults.extend((re.compile(pattern), reply) for _ in range(times))

    def _dispatch(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            for i, (pattern, reply) in enumerate(self._faults):
                if pattern.search(recorded.path):
                    del self._faults[i]
                    return reply
        for method, pattern, fn in self._routes:
            if method == recorded.method and (m := pattern.fullmatch(recorded.path)):
                return fn(recorded, m)
        return Reply(404, {"error": f"no route {recorded.method} {recorded.path}"})

    def calls(self, suffix: str) -> list[Recorded]:
        """Requests whose path ends with ``suffix`` (e.g. "/sendMessage")."""
        with self._lock:
            return [r for r in self.requests if r.path.endswith(suffix)]

    def wait_for(self, suffix: str, count: int = 1, within: float = 15.0) -> list[Recorded]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.calls(suffix)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"{count} call(s) to {suffix} not within {within} s; "
            f"got {[r.path for r in self.requests]}"
        )
