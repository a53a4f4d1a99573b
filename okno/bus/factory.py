"""Pick the bus from settings."""

from okno.bus.base import Bus
from okno.bus.memory import MemoryBus
from okno.settings import Settings


def make_bus(settings: Settings) -> Bus:
    if settings.redis_url:
        from okno.bus.redis import RedisBus

        return RedisBus(settings.redis_url, prefix=settings.redis_prefix)
    return MemoryBus()
