"""The in-process bus of the embedded default: one process, direct delivery."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from okno.bus.base import EventDict, Handler

log = structlog.get_logger(__name__)


class MemoryBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def publish(self, events: list[EventDict]) -> None:
        deliver(self._handlers, events)

    async def ping(self) -> bool:
        return True

    def on_gap(self, callback: Callable[[], None]) -> None:
        return None  # one process: nothing can be missed


def deliver(handlers: list[Handler], events: list[EventDict]) -> None:
    """Hand events to handlers; one failing handler does not stop the others."""
    for event in events:
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                log.exception("bus.handler_failed", event_type=event.get("type"))
