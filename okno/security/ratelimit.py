"""Rate limits as token buckets: in the process by default, in Redis when
``OKNO_REDIS_URL`` is set so that every ``okno serve`` process behind the load balancer
draws from the same buckets.

A bucket holds up to ``per_minute`` tokens and refills at ``per_minute`` a minute; each
request takes one. An empty bucket answers 429 ``rate_limited`` with ``Retry-After`` (the
seconds until a token is back). If Redis is unreachable the process falls back to its own
buckets (logged): a limit that blocks every sign-in when Redis is down would be worse than
a per-process one.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from okno.errors import TooManyRequests

log = structlog.get_logger("okno.ratelimit")
_MAX_KEYS = 100_000  # memory buckets kept; the fullest (idle) ones are dropped first


class RateLimited(TooManyRequests):
    """429 ``rate_limited``; the handler sends ``Retry-After``."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, scope: str) -> None:
        seconds = max(1, math.ceil(retry_after))
        super().__init__(message, retry_after=seconds, scope=scope)
        self.retry_after = seconds


@dataclass
class MemoryBuckets:
    """Token buckets in this process."""

    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    async def take(self, key: str, per_minute: int, now: float | None = None) -> float:
        """Take a token; 0 when granted, else the seconds until one is available."""
        now = time.monotonic() if now is None else now
        rate = per_minute / 60.0
        tokens, last = self.buckets.get(key, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            self._trim()
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / rate

    def _trim(self) -> None:
        if len(self.buckets) > _MAX_KEYS:
            for key in list(self.buckets)[: _MAX_KEYS // 10]:
                del self.buckets[key]

    async def close(self) -> None:
        self.buckets.clear()


# KEYS[1] bucket; ARGV: capacity, rate per second, now (s). Returns the wait in ms (0: ok).
_LUA = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(state[1]) or cap
local ts = tonumber(state[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 1)
return wait
"""


class RedisBuckets:
    """Token buckets in Redis, shared by every process (one Lua script call a take)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = f"{prefix}:rl:"
        self._client: Any = None
        self._script: Any = None
        self.fallback = MemoryBuckets()

    async def take(self, key: str, per_minute: int, now: float | None = None) -> float:
        try:
            if self._client is None:
                import redis.asyncio as redis

                self._client = redis.from_url(self.url, socket_timeout=1.0)
                self._script = self._client.register_script(_LUA)
            # Redis's own clock, so processes on hosts with skewed clocks agree
            seconds, micros = await self._client.time()
            wait_ms = await self._script(
                keys=[self.prefix + key],
                args=[per_minute, per_minute / 60.0, seconds + micros / 1e6],
            )
            return float(wait_ms) / 1000.0
        except Exception as exc:  # Redis away: keep limiting, per process
            log.warning("ratelimit.redis_unavailable", error=type(exc).__name__)
            return await self.fallback.take(key, per_minute, now)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


Buckets = MemoryBuckets | RedisBuckets


def make_buckets(redis_url: str, prefix: str) -> Buckets:
    """Redis buckets when a Redis URL is configured, else in-process ones."""
    return RedisBuckets(redis_url, prefix) if redis_url else MemoryBuckets()


async def limit(buckets: Buckets, *, scope: str, key: str, per_minute: int, what: str) -> None:
    """Take a token from bucket ``scope:key``; raise RateLimited when it is empty. A limit
    of 0 means no limit."""
    if per_minute <= 0:
        return
    wait = await buckets.take(f"{scope}:{key}", per_minute)
    if wait > 0:
        log.warning("ratelimit.hit", scope=scope)
        raise RateLimited(
            f"too many {what}; try again in {max(1, math.ceil(wait))} s",
            retry_after=wait,
            scope=scope,
        )


# --- the public customer endpoints: the web widget and the bank's mobile app -------------


@dataclass(frozen=True)
class _Limit:
    scope: str
    setting: str  # the Settings field with the per-minute number
    per: str  # "ip": per client address; "session": per session token
    what: str


_CUSTOMER_LIMITS: dict[str, _Limit] = {
    "/api/v1/widget/sessions": _Limit(
        "widget_sessions", "widget_sessions_per_ip_per_minute", "ip", "new chats from this address"
    ),
    "/api/v1/widget/messages": _Limit(
        "widget_messages", "widget_messages_per_minute", "session", "messages"
    ),
    "/api/v1/widget/attachments": _Limit(
        "widget_messages", "widget_messages_per_minute", "session", "messages"
    ),
    "/api/v1/mobile/sessions": _Limit(
        "mobile_sessions",
        "mobile_sessions_per_ip_per_minute",
        "ip",
        "new app sessions from this address",
    ),
    "/api/v1/mobile/messages": _Limit(
        "mobile_messages", "mobile_messages_per_minute", "session", "messages"
    ),
    "/api/v1/mobile/attachments": _Limit(
        "mobile_messages", "mobile_messages_per_minute", "session", "messages"
    ),
}


class CustomerRateLimit:
    """429 for a visitor of the bank's site or a customer's app opening sessions too fast
    (per address) or a session sending messages and files too fast (per session token),
    before the request reaches the database. Sits inside the CORS layer, so the widget on
    the bank's page can read the 429 and its Retry-After."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        rule = None
        if scope["type"] == "http" and scope.get("method") == "POST":
            rule = _CUSTOMER_LIMITS.get(scope.get("path", ""))
        if rule is None:
            await self.app(scope, receive, send)
            return
        state = scope["app"].state.okno
        try:
            if rule.per == "ip":
                client = scope.get("client")
                key = client[0] if client else "-"
            else:
                token = _bearer(scope)
                # no token: the endpoint answers 401 itself
                key = hashlib.sha256(token.encode()).hexdigest()[:32] if token else ""
            if key:
                await limit(
                    state.limits,
                    scope=rule.scope,
                    key=key,
                    per_minute=getattr(state.settings, rule.setting),
                    what=rule.what,
                )
        except RateLimited as exc:
            from starlette.responses import JSONResponse

            response = JSONResponse(
                exc.to_dict(), status_code=429, headers={"Retry-After": str(exc.retry_after)}
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _bearer(scope: Any) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""
