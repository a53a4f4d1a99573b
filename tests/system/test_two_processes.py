"""Several ``okno serve`` processes act as one system through PostgreSQL and Redis: what a
customer writes to one process reaches an operator connected to another, and back."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from tests import services
from tests.builders import bearer
from tests.system.conftest import Storage
from tests.system.server import (
    SECRET_KEY,
    EventStream,
    OknoServer,
    message_event,
    staff_token,
    widget_session,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis]

TIMEOUT = httpx.Timeout(10.0)
DELIVERY = 5.0  # seconds an event may take from one process to a socket on another


async def customer_says(http: httpx.AsyncClient, token: str, text: str) -> dict[str, Any]:
    client_id = f"c-{uuid.uuid4().hex}"
    response = await http.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": client_id, "text": text},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()["message"]
    return message


async def start_all(*servers: OknoServer) -> list[dict[str, Any]]:
    """Spawn all at once (they migrate concurrently, under the migration lock) and wait."""
    for server in servers:
        server.spawn()
    return list(await asyncio.gather(*(asyncio.to_thread(s.wait_ready) for s in servers)))


@pytest.mark.postgres
async def test_two_processes_deliver_each_others_events(
    storage_factory: Any, okno_server: Any
) -> None:
    """Process A takes the customer, process B the operator (B runs no worker): the
    customer's message posted to A reaches the operator's socket on B, the operator's
    reply posted to B reaches the customer's socket on A; both report Redis ready."""
    redis_url = services.require_redis()
    storage: Storage = storage_factory("postgres")
    a: OknoServer = okno_server(storage, redis_url=redis_url, secret_key=SECRET_KEY, name="a")
    b: OknoServer = okno_server(
        storage,
        redis_url=redis_url,
        secret_key=SECRET_KEY,
        name="b",
        extra_env={"OKNO_WORKER_IN_PROCESS": "false"},
    )
    for ready in await start_all(a, b):
        assert ready["status"] == "ready"
        assert ready["checks"] == {"database": "ok", "redis": "ok"}

    async with (
        httpx.AsyncClient(base_url=a.url, timeout=TIMEOUT) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=TIMEOUT) as on_b,
    ):
        operator = await staff_token(on_a)  # signed by A, used on B: one shared key
        customer = await widget_session(on_a)
        async with (
            EventStream(f"{b.ws_url}/api/v1/ws?token={operator}", label="operator@B") as op_ws,
            EventStream(
                f"{a.ws_url}/api/v1/widget/ws?token={customer}", label="customer@A"
            ) as cust_ws,
        ):
            asked = await customer_says(on_a, customer, "Здравствуйте, вопрос по вкладу")
            seen = await op_ws.wait_for(message_event(asked["client_msg_id"]), within=DELIVERY)
            assert seen["payload"]["message"]["id"] == asked["id"]
            conversation_id = asked["conversation_id"]

            reply_id = f"o-{uuid.uuid4().hex}"
            response = await on_b.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"client_msg_id": reply_id, "text": "Добрый день! Слушаю вас."},
                headers=bearer(operator),
            )
            assert response.status_code == 201, response.text
            got = await cust_ws.wait_for(message_event(reply_id), within=DELIVERY)
            assert got["payload"]["message"]["text"] == "Добрый день! Слушаю вас."
            assert got["payload"]["message"]["id"] == response.json()["message"]["id"]

        for server in (a, b):
            response = await (on_a if server is a else on_b).get("/readyz")
            assert response.status_code == 200
            assert response.json()["checks"]["redis"] == "ok"


class LeakedEvent(AssertionError):
    """A socket received an event of another installation."""


async def assert_never(stream: EventStream, predicate: Any, *, within: float) -> None:
    try:
        leaked = await stream.wait_for(predicate, within=within)
    except AssertionError as exc:
        if "no matching event" in str(exc):
            return
        raise
    raise LeakedEvent(f"{stream.label} received another deployment's event: {leaked}")


def _other_redis_db(url: str) -> str:
    parsed = urlparse(url)
    db = int(parsed.path.lstrip("/") or 0)
    return parsed._replace(path=f"/{14 if db == 15 else 15}").geturl()


async def test_deployments_on_one_redis_server_stay_apart(
    storage_factory: Any, okno_server: Any
) -> None:
    """Two separate okno installations (own databases, own Redis database numbers) that
    share one Redis server: a customer of one never sees what a customer of the other
    writes, and neither does its staff."""
    redis_url = services.require_redis()
    x: OknoServer = okno_server(storage_factory("sqlite"), redis_url=redis_url, name="x")
    y: OknoServer = okno_server(
        storage_factory("sqlite"), redis_url=_other_redis_db(redis_url), name="y"
    )
    await start_all(x, y)

    async with (
        httpx.AsyncClient(base_url=x.url, timeout=TIMEOUT) as on_x,
        httpx.AsyncClient(base_url=y.url, timeout=TIMEOUT) as on_y,
    ):
        x_customer, x_operator = await widget_session(on_x), await staff_token(on_x)
        y_customer = await widget_session(on_y)
        async with (
            EventStream(f"{x.ws_url}/api/v1/widget/ws?token={x_customer}", label="cust@X") as cw,
            EventStream(f"{x.ws_url}/api/v1/ws?token={x_operator}", label="staff@X") as sw,
        ):
            # (Y is a little ahead in event numbers, as a busier installation would be.)
            await customer_says(on_y, y_customer, "Добрый день")
            await customer_says(on_y, y_customer, "Вопрос по паспорту")
            secret = await customer_says(on_y, y_customer, "Мой паспорт 4510 123456")
            for stream in (cw, sw):
                await assert_never(stream, message_event(secret["client_msg_id"]), within=2)
            # The sockets on X do work: X's own customer's message arrives.
            own = await customer_says(on_x, x_customer, "Здравствуйте")
            await cw.wait_for(message_event(own["client_msg_id"]), within=DELIVERY)
            await sw.wait_for(message_event(own["client_msg_id"]), within=DELIVERY)
