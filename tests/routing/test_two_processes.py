"""Two real ``okno serve`` processes on one PostgreSQL and Redis, each running its own
worker and dispatch passes: a rush of customers split between them never gives an
operator more dialogs than their capacity."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests import services
from tests.builders import bearer
from tests.system.conftest import (  # noqa: F401  (fixtures used by name)
    Storage,
    okno_server,
    postgres_seeded,
    sqlite_seeded,
    storage_factory,
)
from tests.system.server import (
    PASSWORD,
    SECRET_KEY,
    EventStream,
    OknoServer,
    staff_token,
    widget_session,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

OPERATORS = ("op1", "op2", "op3")
CAPACITY = 3
CUSTOMERS = 40
TIMEOUT = httpx.Timeout(20.0)
SETTLE = 30.0  # seconds the passes may take to fill every place


async def _first_message(http: httpx.AsyncClient, i: int) -> int:
    token = await widget_session(http)
    response = await http.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": f"rush-{i}", "text": f"Вопрос номер {i}"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return int(response.json()["message"]["conversation_id"])


async def _dialogs(http: httpx.AsyncClient, token: str, status: str) -> list[dict[str, Any]]:
    response = await http.get(
        "/api/v1/conversations", params={"status": status}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["conversations"]
    return rows


async def test_a_rush_split_between_two_processes_never_exceeds_capacity(
    storage_factory: Any,  # noqa: F811
    okno_server: Any,  # noqa: F811
) -> None:
    redis_url = services.require_redis()
    storage: Storage = storage_factory("postgres")
    a: OknoServer = okno_server(storage, redis_url=redis_url, secret_key=SECRET_KEY, name="a")
    b: OknoServer = okno_server(storage, redis_url=redis_url, secret_key=SECRET_KEY, name="b")
    for login in OPERATORS:
        role = ["--role", "operator", "--capacity", str(CAPACITY)]
        a.cli(["users", "create", "--login", login, "--password", PASSWORD, *role])
    a.cli(["users", "create", "--login", "boss", "--password", PASSWORD, "--role", "supervisor"])
    for server in (a, b):
        server.spawn()
    await asyncio.gather(*(asyncio.to_thread(s.wait_ready) for s in (a, b)))

    async with (
        httpx.AsyncClient(base_url=a.url, timeout=TIMEOUT) as on_a,
        httpx.AsyncClient(base_url=b.url, timeout=TIMEOUT) as on_b,
    ):
        tokens = {login: await staff_token(on_a, login) for login in (*OPERATORS, "boss")}
        # each operator's workspace is open (which brings them online) on one process
        sockets = [
            EventStream(f"{(a, b)[i % 2].ws_url}/api/v1/ws?token={tokens[login]}", label=login)
            for i, login in enumerate(OPERATORS)
        ]
        async with sockets[0], sockets[1], sockets[2]:
            ids = await asyncio.gather(
                *(_first_message((on_a, on_b)[i % 2], i) for i in range(CUSTOMERS))
            )
            assert len(set(ids)) == CUSTOMERS

            deadline = time.monotonic() + SETTLE
            assigned: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                assigned = await _dialogs(on_b, tokens["boss"], "assigned")
                waiting = await _dialogs(on_a, tokens["boss"], "waiting")
                if not waiting or len(assigned) >= CAPACITY * len(OPERATORS):
                    break
                await asyncio.sleep(0.25)
            await asyncio.sleep(2)  # let any pass still running (either process) land
            assigned = await _dialogs(on_b, tokens["boss"], "assigned")

    per_operator: dict[str, int] = {}
    for row in assigned:
        name = row["assignee"]["name"]
        per_operator[name] = per_operator.get(name, 0) + 1
    assert all(n <= CAPACITY for n in per_operator.values()), per_operator
    # every place filled, and only by operators whose workspace is open (not anna)
    assert per_operator == {login: CAPACITY for login in OPERATORS}, per_operator
