"""The event bus: fan-out of committed events to every app process.

The database is the source of truth; the bus is only the fast path. A process publishes the
events it committed; every process (itself included) hands them to its local hub, which
delivers to the sockets connected there. A client that missed something catches up from the
database by ``seq``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

EventDict = dict[str, Any]
Handler = Callable[[EventDict], None]


class Bus(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def publish(self, events: list[EventDict]) -> None: ...

    def subscribe(self, handler: Handler) -> None: ...

    def on_gap(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when events from other processes may have been missed."""

    async def ping(self) -> bool: ...
