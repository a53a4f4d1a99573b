"""A customer who shared their own phone number in Telegram and later signs in to the
internet bank's chat (the bank's token carries the same number) is one customer: the
operator sees both dialogs in one history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.channels.models import Channel
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, in_db, staff_token
from tests.channels.fakes.telegram import TOKEN, FakeTelegram, message_update
from tests.channels.telegram_live import add_channel, conversations, eventually

SECRET = "bank-identity-secret-0123456789-abcdef"
HOOK_SECRET = "phone-link-hook"


@pytest.fixture
def live(settings: Settings, staff: Staff) -> Iterator[TestClient]:
    fake = FakeTelegram().start()

    async def trust_bank(session: AsyncSession) -> None:
        channel = await session.get(Channel, staff.widget_id)
        assert channel is not None
        channel.config = {**(channel.config or {}), "identity_secret": SECRET}

    in_db(settings, trust_bank)
    telegram = add_channel(
        settings, "telegram", bot_token=TOKEN, webhook_secret=HOOK_SECRET, api_base=fake.url
    )
    with TestClient(create_app(settings)) as client:
        client.telegram_id = telegram  # type: ignore[attr-defined]
        yield client
    fake.stop()


def bank_token(sub: str, phone: str | None) -> str:
    now = datetime.now(UTC)
    claims: dict[str, object] = {"sub": sub, "iat": now, "exp": now + timedelta(minutes=30)}
    if phone:
        claims["phone_number"] = phone
    return jwt.encode(claims, SECRET, "HS256")


def widget_says(client: TestClient, token: str, text: str) -> None:
    session = client.post(
        "/api/v1/widget/sessions", json={"widget_key": "acme", "customer_token": token}
    )
    assert session.status_code == 200, session.text
    sent = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": text},
        headers=bearer(session.json()["session_token"]),
    )
    assert sent.status_code == 201, sent.text


def test_the_same_verified_phone_in_telegram_and_the_signed_in_chat_is_one_customer(
    live: TestClient,
) -> None:
    shared = message_update(
        None,
        chat_id=600100,
        contact={"phone_number": "79001234567", "first_name": "Иван", "user_id": 600100},
    )
    hooked = live.post(
        f"/hooks/telegram/{live.telegram_id}",  # type: ignore[attr-defined]
        json=shared,
        headers={"X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET},
    )
    assert hooked.status_code == 200
    widget_says(live, bank_token("C-42", "+7 (900) 123-45-67"), "Это снова я, из интернет-банка")
    dialogs = eventually(
        lambda: len(conversations(live, "root")) == 2 and conversations(live, "root")
    )
    assert len({d["customer"]["id"] for d in dialogs}) == 1
    root = staff_token(live, "root")
    customer_id = dialogs[0]["customer"]["id"]
    timeline = live.get(f"/api/v1/customers/{customer_id}/timeline", headers=bearer(root))
    assert timeline.status_code == 200, timeline.text
    items = timeline.json()["items"]
    assert ("widget", "Это снова я, из интернет-банка") in {
        (m["channel_kind"], m["text"]) for m in items
    }
    assert {m["channel_kind"] for m in items} == {"telegram", "widget"}


def test_a_different_phone_or_none_keeps_them_apart(live: TestClient) -> None:
    shared = message_update(
        None,
        chat_id=600200,
        contact={"phone_number": "79001234567", "first_name": "Иван", "user_id": 600200},
    )
    live.post(
        f"/hooks/telegram/{live.telegram_id}",  # type: ignore[attr-defined]
        json=shared,
        headers={"X-Telegram-Bot-Api-Secret-Token": HOOK_SECRET},
    )
    widget_says(live, bank_token("C-43", "+79007654321"), "Другой человек")
    widget_says(live, bank_token("C-44", None), "И ещё один")
    dialogs = eventually(
        lambda: len(conversations(live, "root")) == 3 and conversations(live, "root")
    )
    assert len({d["customer"]["id"] for d in dialogs}) == 3


def test_a_phone_claim_that_is_not_text_is_refused(live: TestClient) -> None:
    now = datetime.now(UTC)
    token = jwt.encode(
        {"sub": "C-45", "exp": now + timedelta(minutes=5), "phone_number": {"x": 1}},
        SECRET,
        "HS256",
    )
    r = live.post("/api/v1/widget/sessions", json={"widget_key": "acme", "customer_token": token})
    assert r.status_code == 401 and r.json()["code"] == "customer_token_invalid"
