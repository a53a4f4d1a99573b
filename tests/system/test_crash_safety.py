"""Crash safety of a real ``okno serve``: SIGKILL loses nothing acknowledged, and retries
after the crash store every message exactly once. SQLite (default) and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.builders import bearer
from tests.system.conftest import BACKENDS, Storage
from tests.system.server import (
    EventStream,
    OknoServer,
    message_event,
    staff_token,
    widget_session,
)

pytestmark = pytest.mark.slow

TIMEOUT = httpx.Timeout(10.0)


async def widget_history(http: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    response = await http.get(
        "/api/v1/widget/messages", params={"after_seq": 0, "limit": 1000}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def by_client_id(messages: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for message in messages:
        if message.get("client_msg_id"):
            found.setdefault(message["client_msg_id"], []).append(message)
    return found


# -- a. kill -9 keeps acknowledged messages ---------------------------------------------------


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
async def test_kill9_keeps_acknowledged_messages(storage: Storage, okno_server: Any) -> None:
    """A customer's message and the operator's reply, each seen live by the other side,
    are both still there exactly once after the server is SIGKILLed and restarted; the
    tokens issued before the crash still work and a reconnecting widget catches up."""
    server: OknoServer = okno_server(storage)
    await asyncio.to_thread(server.start)
    question_id, reply_id = f"c-{uuid.uuid4().hex}", f"o-{uuid.uuid4().hex}"
    question, reply = "Где моя карта? № заявки 4711", "Карта уже в отделении, <b>ждём вас</b>"

    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        operator = await staff_token(http)
        customer = await widget_session(http)
        async with (
            EventStream(f"{server.ws_url}/api/v1/ws?token={operator}", label="operator") as op_ws,
            EventStream(
                f"{server.ws_url}/api/v1/widget/ws?token={customer}", label="customer"
            ) as cust_ws,
        ):
            sent = await http.post(
                "/api/v1/widget/messages",
                json={"client_msg_id": question_id, "text": question},
                headers=bearer(customer),
            )
            assert sent.status_code == 201, sent.text
            asked = sent.json()["message"]
            conversation_id = asked["conversation_id"]

            seen = await op_ws.wait_for(message_event(question_id), within=5)
            assert seen["conversation_id"] == conversation_id
            assert seen["payload"]["message"]["text"] == question

            answered = await http.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"client_msg_id": reply_id, "text": reply},
                headers=bearer(operator),
            )
            assert answered.status_code == 201, answered.text
            answer = answered.json()["message"]

            got = await cust_ws.wait_for(message_event(reply_id), within=5)
            assert got["payload"]["message"]["text"] == reply
            assert got["payload"]["message"]["author_kind"] == "operator"

            server.kill9()  # while both sockets are connected
            assert server.returncode == -signal.SIGKILL, server.log_tail()

        await asyncio.to_thread(server.restart)

        expected = {question_id: (asked, question), reply_id: (answer, reply)}
        # The customer's view (same session token as before the crash).
        history = await widget_history(http, customer)
        _assert_exactly(history, expected)
        # The operator's view (same access token as before the crash).
        response = await http.get(
            f"/api/v1/conversations/{conversation_id}/messages", headers=bearer(operator)
        )
        assert response.status_code == 200, response.text
        _assert_exactly(response.json()["messages"], expected)

        # A widget reconnecting from the start replays the dialog from the database.
        async with EventStream(
            f"{server.ws_url}/api/v1/widget/ws?token={customer}&after_seq=0", label="customer"
        ) as again:
            await again.wait_for(message_event(reply_id), within=5)
            await again.wait_for(message_event(question_id), within=1)


def _assert_exactly(
    messages: list[dict[str, Any]], expected: dict[str, tuple[dict[str, Any], str]]
) -> None:
    stored = by_client_id(messages)
    assert set(stored) == set(expected), f"stored client_msg_ids: {sorted(stored)}"
    for client_id, (acked, text) in expected.items():
        assert len(stored[client_id]) == 1, f"{client_id} stored {len(stored[client_id])}x"
        (message,) = stored[client_id]
        assert message["id"] == acked["id"]
        assert message["seq"] == acked["seq"]
        assert message["text"] == text
    order = [m["client_msg_id"] for m in messages if m.get("client_msg_id")]
    assert order == list(expected), "messages are not in the order they were sent"


# -- b. a burst of sends, SIGKILL in the middle -----------------------------------------------

CUSTOMERS = 20
PER_CUSTOMER = 15  # 300 sends: enough to kill mid-burst, few enough to re-send in seconds
KILL_LATEST = 1.0  # seconds into the burst, or earlier once a third is acknowledged


@pytest.mark.parametrize("storage", BACKENDS, indirect=True)
async def test_burst_under_sigkill_loses_and_duplicates_nothing(
    storage: Storage, okno_server: Any
) -> None:
    """20 customers send 15 messages each at once; the server is SIGKILLed in the
    middle. After a restart every acknowledged message is stored (same id and seq as
    acknowledged); re-sending every message with its client_msg_id then stores each one
    exactly once, and acknowledged ones come back as duplicates."""
    server: OknoServer = okno_server(storage)
    await asyncio.to_thread(server.start)
    limits = httpx.Limits(max_connections=CUSTOMERS * 2, max_keepalive_connections=CUSTOMERS * 2)

    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, limits=limits) as http:
        tokens = await asyncio.gather(*(widget_session(http) for _ in range(CUSTOMERS)))
        run = uuid.uuid4().hex[:8]
        plan = [
            [(f"b{run}-{c}-{n}", f"Клиент {c}, сообщение {n}") for n in range(PER_CUSTOMER)]
            for c in range(CUSTOMERS)
        ]
        acked: dict[str, dict[str, Any]] = {}
        unexpected: list[str] = []
        burst_done = 0
        total = CUSTOMERS * PER_CUSTOMER
        third_acked = asyncio.Event()

        async def sender(customer: int) -> None:
            nonlocal burst_done
            for client_id, text in plan[customer]:
                try:
                    response = await http.post(
                        "/api/v1/widget/messages",
                        json={"client_msg_id": client_id, "text": text},
                        headers=bearer(tokens[customer]),
                    )
                except httpx.HTTPError:
                    return  # the server is gone; the rest of this customer's sends never left
                if response.status_code == 201:
                    acked[client_id] = response.json()["message"]
                    if len(acked) >= total // 3:
                        third_acked.set()
                else:
                    unexpected.append(f"{client_id}: {response.status_code} {response.text}")
            burst_done += 1

        started = time.monotonic()
        senders = [asyncio.create_task(sender(c)) for c in range(CUSTOMERS)]
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(third_acked.wait(), timeout=KILL_LATEST)
            server.kill9()
            killed_at = time.monotonic() - started
            assert server.returncode == -signal.SIGKILL, server.log_tail()
            await asyncio.wait_for(asyncio.gather(*senders), timeout=30)
        finally:
            for task in senders:
                task.cancel()

        assert not unexpected, f"non-2xx answers before the crash: {unexpected[:5]}"
        assert acked, f"nothing was acknowledged in {killed_at:.2f}s"
        assert len(acked) < total and burst_done < CUSTOMERS, (
            f"the burst ended ({len(acked)} acks) before the kill at {killed_at:.2f}s; "
            "raise PER_CUSTOMER"
        )

        await asyncio.to_thread(server.restart)

        # 1. Everything acknowledged survived, with the id and seq it was acknowledged with.
        histories = await asyncio.gather(*(widget_history(http, t) for t in tokens))
        for customer, history in enumerate(histories):
            stored = by_client_id(history)
            twice = {k: len(v) for k, v in stored.items() if len(v) > 1}
            assert not twice, f"customer {customer}: stored more than once: {twice}"
            for client_id, _ in plan[customer]:
                if client_id in acked:
                    assert client_id in stored, f"acknowledged {client_id} lost in the crash"
                    assert stored[client_id][0]["id"] == acked[client_id]["id"]
                    assert stored[client_id][0]["seq"] == acked[client_id]["seq"]

        # 2. The clients retry everything (as a widget does after reconnecting).
        retried: dict[str, tuple[int, dict[str, Any]]] = {}

        async def resend(customer: int) -> None:
            for client_id, text in plan[customer]:
                response = await http.post(
                    "/api/v1/widget/messages",
                    json={"client_msg_id": client_id, "text": text},
                    headers=bearer(tokens[customer]),
                )
                retried[client_id] = (response.status_code, response.json())

        await asyncio.wait_for(asyncio.gather(*(resend(c) for c in range(CUSTOMERS))), timeout=60)
        statuses = Counter(status for status, _ in retried.values())
        assert set(statuses) <= {200, 201}, f"retry answers: {statuses}"
        for client_id, first in acked.items():
            status, body = retried[client_id]
            assert status == 200 and body["duplicate"] is True, (client_id, status, body)
            assert body["message"]["id"] == first["id"]

        # 3. Each client_msg_id is stored exactly once, with its text.
        histories = await asyncio.gather(*(widget_history(http, t) for t in tokens))
        for customer, history in enumerate(histories):
            stored = by_client_id(history)
            counts = Counter({k: len(v) for k, v in stored.items()})
            assert counts == Counter({client_id: 1 for client_id, _ in plan[customer]}), (
                f"customer {customer}: {len(stored)} distinct ids, "
                f"duplicates {[k for k, n in counts.items() if n > 1][:5]}"
            )
            for client_id, text in plan[customer]:
                assert stored[client_id][0]["text"] == text
