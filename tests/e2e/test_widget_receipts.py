"""What the widget reports back, in real Chromium: the customer's typing reaches staff
(throttled, never for an empty box), what the customer has seen becomes the dialog's
``customer_read_seq`` (only with the panel open and the tab visible), and staff typing
shows as "Оператор печатает…" in the widget."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from itertools import pairwise
from typing import Any

import httpx
import pytest

from tests.e2e import test_widget_browser as widget_tests
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# Records, inside the page, the frames the widget sends on its sockets and its read marks.
RECORDER = """
window.__sent = { frames: [], reads: [] };
const originalSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  window.__sent.frames.push({ at: Date.now(), data: String(data) });
  return originalSend.call(this, data);
};
const originalFetch = window.fetch;
window.fetch = function (input, init) {
  const url = typeof input === "string" ? input : input.url;
  if (url.includes("/api/v1/widget/read")) {
    window.__sent.reads.push({ at: Date.now(), body: JSON.parse((init && init.body) || "{}") });
  }
  return originalFetch.apply(this, arguments);
};
"""


class StaffStream(srv.EventStream):
    """The staff event stream, which can also send (typing signals)."""

    async def send(self, message: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(message))


async def typing_frames(page: Any) -> list[int]:
    """When (ms) the widget sent a typing signal."""
    frames = await page.evaluate("window.__sent.frames")
    return [f["at"] for f in frames if json.loads(f["data"] or "null") == {"type": "typing"}]


async def read_marks(page: Any) -> list[dict[str, Any]]:
    marks: list[dict[str, Any]] = await page.evaluate("window.__sent.reads")
    return marks


async def customer_read_seq(http: httpx.AsyncClient, conversation: int) -> int:
    response = await http.get(f"/api/v1/conversations/{conversation}")
    assert response.status_code == 200, response.text
    seq: int = response.json()["customer_read_seq"]
    return seq


async def wait_read_seq(http: httpx.AsyncClient, conversation: int, seq: int) -> None:
    deadline = time.monotonic() + 10
    while (current := await customer_read_seq(http, conversation)) < seq:
        assert time.monotonic() < deadline, f"customer_read_seq {current}, expected {seq}"
        await asyncio.sleep(0.2)
    assert current == seq


async def reply(http: httpx.AsyncClient, conversation: int, text: str) -> int:
    response = await http.post(
        f"/api/v1/conversations/{conversation}/messages",
        json={"client_msg_id": uuid.uuid4().hex, "text": text},
    )
    assert response.status_code == 201, response.text
    seq: int = response.json()["message"]["seq"]
    return seq


async def start_dialog(page: Any, server: srv.OknoServer, ops: srv.EventStream, text: str) -> int:
    """The customer opens the widget and writes; the dialog's id from the staff stream."""
    await page.add_init_script(RECORDER)
    await widget_tests.open_widget(page, server)
    await page.locator("[data-okno=status][data-state=online]").wait_for()
    await widget_tests.customer_types(page, text)
    created = await ops.wait_for(
        lambda e: e["type"] == "message.created" and e["payload"]["message"]["text"] == text,
        within=15,
    )
    conversation: int = created["conversation_id"]
    return conversation


def staff_client(server: srv.OknoServer) -> httpx.AsyncClient:
    token = widget_tests.operator_token(server)
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


async def test_customer_typing_reaches_staff_throttled(page: Any, okno: srv.OknoServer) -> None:
    token = widget_tests.operator_token(okno)
    async with srv.EventStream(f"{okno.ws_url}/api/v1/ws?token={token}", label="staff") as ops:
        conversation = await start_dialog(page, okno, ops, "Здравствуйте")
        box = page.locator("[data-okno=input]")
        began = await page.evaluate("Date.now()")
        # about six seconds of steady typing
        await box.press_sequentially("Хочу узнать, когда придёт карта", delay=200)
        typing = await ops.wait_for(
            lambda e: e["type"] == "typing.started" and e["conversation_id"] == conversation,
            within=10,
        )
        assert typing["seq"] is None and typing["payload"] == {"who": "customer"}

        sent = await typing_frames(page)
        while_typing = [t for t in sent if t >= began]
        assert 2 <= len(while_typing) <= 4, sent  # kept alive, but not once per key
        gaps = [b - a for a, b in pairwise(sent)]
        assert all(gap >= 2400 for gap in gaps), gaps

        await box.fill("")  # an emptied box says nothing more
        cleared = await page.evaluate("Date.now()")
        await asyncio.sleep(3.5)
        assert [t for t in await typing_frames(page) if t > cleared] == []


async def test_what_the_customer_sees_is_marked_read(page: Any, okno: srv.OknoServer) -> None:
    token = widget_tests.operator_token(okno)
    async with (
        srv.EventStream(f"{okno.ws_url}/api/v1/ws?token={token}", label="staff") as ops,
        staff_client(okno) as http,
    ):
        conversation = await start_dialog(page, okno, ops, "Когда придёт карта?")
        assert await customer_read_seq(http, conversation) == 0

        # shown in the open widget: read
        first = await reply(http, conversation, "Карта будет готова через три дня")
        await widget_tests.widget_messages(page, "operator").filter(has_text="три дня").wait_for()
        await wait_read_seq(http, conversation, first)

        # the panel closed: arrives, but nobody has seen it
        await page.locator("[data-okno=close]").click()
        second = await reply(http, conversation, "Курьер позвонит заранее")
        line = widget_tests.widget_messages(page, "operator").filter(has_text="Курьер позвонит")
        await line.wait_for(state="attached")
        await page.locator("[data-okno=unread]").filter(has_text="1").wait_for()
        await asyncio.sleep(2.5)
        assert await customer_read_seq(http, conversation) == first
        assert all(m["body"]["up_to_seq"] < second for m in await read_marks(page))

        # opening the panel shows it: read
        await page.locator("[data-okno=bubble]").click()
        await line.wait_for()
        await wait_read_seq(http, conversation, second)

        # a hidden tab sees nothing; becoming visible again reads what came meanwhile
        await page.evaluate(
            """() => {
              Object.defineProperty(document, "visibilityState", {
                configurable: true, get: () => "hidden" });
              Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
              document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
        third = await reply(http, conversation, "Возьмите паспорт")
        await widget_tests.widget_messages(page, "operator").filter(has_text="паспорт").wait_for()
        await asyncio.sleep(2.5)
        assert await customer_read_seq(http, conversation) == second
        await page.evaluate(
            """() => {
              delete document.visibilityState;
              delete document.hidden;
              document.dispatchEvent(new Event("visibilitychange"));
            }"""
        )
        await wait_read_seq(http, conversation, third)

        marks = await read_marks(page)
        assert [m["body"]["up_to_seq"] for m in marks] == [first, second, third]
        gaps = [b["at"] - a["at"] for a, b in pairwise(marks)]
        assert all(gap >= 1000 for gap in gaps), gaps


async def test_staff_typing_shows_in_the_widget(page: Any, okno: srv.OknoServer) -> None:
    token = widget_tests.operator_token(okno)
    async with (
        StaffStream(f"{okno.ws_url}/api/v1/ws?token={token}", label="staff") as ops,
        staff_client(okno) as http,
    ):
        conversation = await start_dialog(page, okno, ops, "Можно вопрос?")
        indicator = page.locator("[data-okno=typing]")
        assert not await indicator.is_visible()

        await ops.send({"type": "typing", "conversation_id": conversation})
        signalled = time.monotonic()
        await indicator.wait_for(state="visible")
        assert "печатает" in await indicator.inner_text()
        widget_tests.ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(widget_tests.ARTIFACTS / "widget-staff-typing.png"))

        # the operator's message replaces the indicator at once
        await reply(http, conversation, "Конечно, спрашивайте")
        await (
            widget_tests.widget_messages(page, "operator").filter(has_text="спрашивайте").wait_for()
        )
        await indicator.wait_for(state="hidden", timeout=2000)

        # without a message it goes away by itself after about five seconds
        await asyncio.sleep(max(0.0, 2.2 - (time.monotonic() - signalled)))  # server throttle
        await ops.send({"type": "typing", "conversation_id": conversation})
        await indicator.wait_for(state="visible")
        shown = time.monotonic()
        await indicator.wait_for(state="hidden", timeout=9000)
        assert time.monotonic() - shown > 3.5
