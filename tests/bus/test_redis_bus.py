"""The Redis bus against a real Redis: cross-process delivery, no echo, gap recovery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from okno.app import create_app
from okno.bus.redis import RedisBus
from okno.settings import Settings
from tests import services
from tests.builders import staff_token

pytestmark = pytest.mark.redis


def event(seq: int) -> dict[str, Any]:
    return {"seq": seq, "type": "test.happened", "conversation_id": None, "payload": {}}


async def wait_until(predicate: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_events_reach_the_other_process_once_and_the_publisher_once() -> None:
    url = services.require_redis()
    a, b = RedisBus(url), RedisBus(url)
    got_a: list[int] = []
    got_b: list[int] = []
    a.subscribe(lambda e: got_a.append(e["seq"]))
    b.subscribe(lambda e: got_b.append(e["seq"]))
    await a.start()
    await b.start()
    try:
        await a.publish([event(1), event(2)])
        await wait_until(lambda: got_b == [1, 2])
        await asyncio.sleep(0.2)  # an echo from Redis would arrive by now
        assert got_a == [1, 2]
    finally:
        await a.stop()
        await b.stop()


async def test_a_lost_subscription_tells_clients_to_catch_up() -> None:
    url = services.require_redis()
    bus = RedisBus(url)
    gaps: list[float] = []
    bus.on_gap(lambda: gaps.append(time.monotonic()))
    await bus.start()
    admin = Redis.from_url(url)
    try:
        await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        await wait_until(lambda: len(gaps) == 1, seconds=15)
    finally:
        await admin.aclose()
        await bus.stop()


def test_staff_socket_is_asked_to_resync_after_a_bus_gap(settings: Settings, staff: object) -> None:
    url = services.require_redis()
    app = create_app(settings.model_copy(update={"redis_url": url}))
    with TestClient(app) as client:
        token = staff_token(client, "anna")
        with client.websocket_connect(f"/api/v1/ws?token={token}") as ws:
            assert ws.receive_json()["type"] == "stream.ready"
            import redis

            with redis.Redis.from_url(url) as admin:  # cut the bus's subscription
                admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            message = ws.receive_json()
        assert message["type"] == "stream.error"
        assert message["payload"]["code"] == "resync"


@pytest.mark.parametrize("down", ["redis://127.0.0.1:1/0"])
def test_ready_check_reports_redis_down(settings: Settings, staff: object, down: str) -> None:
    app = create_app(settings.model_copy(update={"redis_url": down}))
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "down"
