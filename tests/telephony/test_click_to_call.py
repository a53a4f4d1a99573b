"""The "Позвонить" button: okno asks the bank's PBX gateway (a fake on loopback) to call the
customer; the number travels from okno to the PBX only, never to the operator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.channels.models import Channel
from okno.settings import Settings
from tests.builders import (
    Staff,
    bearer,
    customer_says,
    in_db,
    make_message,
    staff_token,
    widget_session,
)
from tests.channels.fakes.server import FakePlatform, Recorded, Reply

PBX_TOKEN = "pbx-gateway-token"


class FakePbx(FakePlatform):
    def __init__(self) -> None:
        super().__init__()
        self.route("POST", "/click-to-call", self._call)

    def _call(self, req: Recorded, _m: Any) -> Reply:
        return Reply(200, {"call_id": f"call-{len(self.requests)}"})


@pytest.fixture
def pbx() -> Iterator[FakePbx]:
    fake = FakePbx().start()
    yield fake
    fake.stop()


@pytest.fixture
def live(settings: Settings, staff: Staff, pbx: FakePbx) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "click_to_call_url": pbx.url + "/click-to-call",
            "click_to_call_token": PBX_TOKEN,
        }
    )
    with TestClient(create_app(configured)) as client:
        yield client


def whatsapp_dialog(settings: Settings) -> int:
    async def make(session: AsyncSession) -> int:
        wa = Channel(kind="whatsapp", name="WhatsApp", config={})
        session.add(wa)
        await session.flush()
        message = await make_message(
            session, channel_id=wa.id, visitor="79161234567", text="Перезвоните"
        )
        return message.conversation_id

    return in_db(settings, make)


def test_the_call_button_sends_the_number_to_the_pbx_not_to_the_operator(
    live: TestClient, pbx: FakePbx, settings: Settings, staff: Staff
) -> None:
    conv = whatsapp_dialog(settings)
    anna = bearer(staff_token(live, "anna"))
    assert (
        live.post(f"/api/v1/conversations/{conv}/assign", json={}, headers=anna).status_code == 200
    )
    customer = live.get(f"/api/v1/conversations/{conv}", headers=anna).json()["customer"]["id"]
    card = live.get(f"/api/v1/customers/{customer}", headers=anna).json()
    assert card["can_call"] is True
    assert "9161234567" not in str(card)

    placed = live.post(
        f"/api/v1/customers/{customer}/call", json={"conversation_id": conv}, headers=anna
    )
    assert placed.status_code == 200, placed.text
    assert placed.json() == {"status": "calling", "call_id": "call-1"}
    assert "9161234567" not in placed.text
    (request,) = pbx.calls("/click-to-call")
    assert request.headers["authorization"] == f"Bearer {PBX_TOKEN}"
    assert request.json() == {
        "customer_id": customer,
        "bank_customer_id": None,
        "phone": "+79161234567",
        "conversation_id": conv,
        "operator": {"id": staff["anna"], "login": "anna"},
    }


def test_a_customer_without_a_known_number_cannot_be_called(live: TestClient, pbx: FakePbx) -> None:
    token = widget_session(live)["session_token"]
    conv = customer_says(live, token, "Здравствуйте")["conversation_id"]
    sveta = bearer(staff_token(live, "sveta"))
    customer = live.get(f"/api/v1/conversations/{conv}", headers=sveta).json()["customer"]["id"]
    refused = live.post(f"/api/v1/customers/{customer}/call", headers=sveta)
    assert refused.status_code == 409 and refused.json()["code"] == "no_phone"
    # with the bank's id the PBX can look the number up itself
    live.patch(
        f"/api/v1/customers/{customer}",
        json={"attributes": {"bank_customer_id": "C-1001"}},
        headers=sveta,
    )
    assert live.post(f"/api/v1/customers/{customer}/call", headers=sveta).status_code == 200
    assert pbx.calls("/click-to-call")[-1].json()["bank_customer_id"] == "C-1001"
    assert pbx.calls("/click-to-call")[-1].json()["phone"] is None


def test_a_pbx_that_refuses_gives_a_clear_error_and_no_gateway_gives_409(
    live: TestClient, client: TestClient, pbx: FakePbx, settings: Settings
) -> None:
    conv = whatsapp_dialog(settings)
    sveta = bearer(staff_token(live, "sveta"))
    customer = live.get(f"/api/v1/conversations/{conv}", headers=sveta).json()["customer"]["id"]
    pbx.fail_next("/click-to-call", Reply(503, {"error": "busy"}))
    failed = live.post(f"/api/v1/customers/{customer}/call", headers=sveta)
    assert failed.status_code == 502 and failed.json()["code"] == "pbx_unavailable"
    assert "503" in failed.json()["detail"]

    off = client.post(
        f"/api/v1/customers/{customer}/call", headers=bearer(staff_token(client, "sveta"))
    )
    assert off.status_code == 409 and off.json()["code"] == "click_to_call_not_configured"
    card = client.get(f"/api/v1/customers/{customer}", headers=bearer(staff_token(client, "sveta")))
    assert card.json()["can_call"] is False
    missing = live.post("/api/v1/customers/999999/call", headers=sveta)
    assert missing.status_code == 404
