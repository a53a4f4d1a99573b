"""Redis pub/sub bus: several ``okno serve`` processes act as one system.

Each process delivers its own events locally at once (no round trip) and publishes them on
one channel; the others receive and deliver them to their sockets. A message tagged with the
publisher's origin id is skipped by that publisher. If Redis is unreachable the local
delivery still happens and remote clients catch up from the database when they reconnect.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from contextlib import suppress
from urllib.parse import urlparse

import structlog
from redis.asyncio import Redis

from okno.bus.base import EventDict, Handler
from okno.bus.memory import deliver

log = structlog.get_logger(__name__)


def channel_name(url: str, prefix: str = "okno") -> str:
    """The pub/sub channel of one installation: pub/sub is server-wide (it ignores the
    database number), so the number goes into the name to keep installations apart."""
    path = urlparse(url).path.strip("/")
    db = path if path.isdigit() else "0"
    return f"{prefix}:{db}:events"


class RedisBus:
    def __init__(self, url: str, *, prefix: str = "okno") -> None:
        self._redis = Redis.from_url(url, decode_responses=True, health_check_interval=15)
        self.channel = channel_name(url, prefix)
        self._handlers: list[Handler] = []
        self._origin = uuid.uuid4().hex
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._gap_callbacks: list[Callable[[], None]] = []
        self.publish_failures = 0

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def on_gap(self, callback: Callable[[], None]) -> None:
        self._gap_callbacks.append(callback)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="okno-redis-bus")
        with suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._redis.aclose()

    async def publish(self, events: list[EventDict]) -> None:
        deliver(self._handlers, events)
        body = json.dumps({"origin": self._origin, "events": events}, default=str)
        try:
            await self._redis.publish(self.channel, body)
        except Exception as exc:  # Redis down: remote clients will catch up from the DB
            self.publish_failures += 1
            log.warning("bus.publish_failed", error=type(exc).__name__)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def _listen(self) -> None:
        delay = 0.5
        failed_before = False
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                self._ready.set()
                delay = 0.5
                if failed_before:
                    # Whatever was published while we were away is gone from pub/sub;
                    # clients must fetch it from the database.
                    for callback in self._gap_callbacks:
                        callback()
                    failed_before = False
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    data = json.loads(message["data"])
                    if data.get("origin") == self._origin:
                        continue
                    deliver(self._handlers, data["events"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failed_before = True
                log.warning("bus.listen_failed", error=type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
