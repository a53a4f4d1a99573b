"""Keeping within each platform's send limits, per process.

Each channel gets a token bucket at its adapter's published rate, and each customer a
least gap between two messages (Telegram: about one a second to one chat). A 429 pauses
the whole channel for the time the platform asked. With several worker processes each
keeps its own buckets, so the rate setting is per process (docs/channels.md).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float
    paused_until: float = 0.0
    last_to: dict[str, float] = field(default_factory=dict)


class Limiter:
    def __init__(self) -> None:
        self._buckets: dict[int, _Bucket] = {}
        self._lock = asyncio.Lock()

    def pause(self, channel_id: int, seconds: float) -> None:
        bucket = self._bucket(channel_id, 1.0)
        bucket.paused_until = max(bucket.paused_until, time.monotonic() + min(seconds, 3600.0))

    def _bucket(self, channel_id: int, rate: float) -> _Bucket:
        bucket = self._buckets.get(channel_id)
        if bucket is None:
            bucket = self._buckets[channel_id] = _Bucket(tokens=max(rate, 1.0), updated=0.0)
        return bucket

    async def wait(self, *, channel_id: int, recipient: str, rate: float, gap: float) -> None:
        """Return when one more message to ``recipient`` may go out."""
        while True:
            async with self._lock:
                now = time.monotonic()
                bucket = self._bucket(channel_id, rate)
                if bucket.updated:
                    bucket.tokens = min(
                        max(rate, 1.0), bucket.tokens + (now - bucket.updated) * rate
                    )
                bucket.updated = now
                delay = bucket.paused_until - now
                since = now - bucket.last_to.get(recipient, -1e9)
                delay = max(delay, gap - since, (1.0 - bucket.tokens) / rate)
                if delay <= 0:
                    bucket.tokens -= 1.0
                    bucket.last_to[recipient] = now
                    if len(bucket.last_to) > 10000:
                        cutoff = now - max(gap, 1.0)
                        bucket.last_to = {k: v for k, v in bucket.last_to.items() if v > cutoff}
                    return
            await asyncio.sleep(min(delay, 5.0))


limiter = Limiter()
