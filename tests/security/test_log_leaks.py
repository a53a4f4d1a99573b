"""Zero leaks of personal data into logs: realistic traffic (widget messages with card
numbers written every way, a Telegram webhook with a phone number and a shared contact,
an operator's reply, a verification answer, bad requests, a library error and a crash
inside a handler) runs through the app, then the captured log output is scanned for the
raw digits."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fastapi import APIRouter
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, customer_says, staff_token, widget_session
from tests.channels.fakes.telegram import TOKEN, FakeTelegram, message_update, user
from tests.channels.telegram_live import add_channel, eventually
from tests.conftest import make_settings
from tests.security.test_pii import LEAKS

SECRET = "wh-secret_0123456789"
CARD = "4276 3800 1234 5679"
# Every secret of the corpus as bare digits (or the address), however it was written.
SECRETS = sorted(
    {re.sub(r"\D", "", s) if any(c.isdigit() for c in s) else s for _, ss, _ in LEAKS for s in ss}
    | {"4276380012345679", "79161234567", "79001234567", "ivan.petrov@mail.ru"},
    key=len,
    reverse=True,
)


# A number as people and programs write it: digits with single separators between them.
NUMBER = re.compile(r"\+?\d(?:[\d()]|[ \-.\u00a0](?=[\d(]))*\d")


def leaks(output: str) -> list[str]:
    """The secrets found in ``output``: an address as is; digits inside any number written
    in the output, separators ignored."""
    numbers = [re.sub(r"\D", "", n) for n in NUMBER.findall(output)]
    found = []
    for secret in SECRETS:
        if not secret.isdigit():
            if secret in output:
                found.append(secret)
        elif len(secret) >= 6 and any(secret in n for n in numbers):
            found.append(secret)
    return found


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


def test_realistic_traffic_leaves_no_personal_data_in_the_logs(
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    staff: Staff,
    telegram: FakeTelegram,
) -> None:
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        log_level="debug",  # the most talkative level: everything that could leak does
        verification_url="http://127.0.0.1:9/verify",  # nothing listens: a failing back-end
        verification_timeout_seconds=0.5,
    )
    channel_id = add_channel(
        fast, "telegram", bot_token=TOKEN, webhook_secret=SECRET, api_base=telegram.url
    )
    app = create_app(fast)

    # a handler that crashes with personal data in its exception (a library quoting input)
    crash = APIRouter()

    @crash.get("/test-crash")
    async def _crash() -> None:
        raise ValueError(f"cannot parse card {CARD} for customer ivan.petrov@mail.ru")

    app.include_router(crash)
    stdlib = io.StringIO()
    root_handler = logging.getLogger().handlers[0]
    assert isinstance(root_handler, logging.StreamHandler)
    old_stream = root_handler.setStream(stdlib)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            _traffic(client, channel_id)
            # libraries log through stdlib; okno's own code through structlog
            logging.getLogger("httpx").warning("request failed for %s", f"card {CARD}")
            try:
                raise RuntimeError(f"paying from 40817810099910004312 to {CARD}")
            except RuntimeError:
                logging.getLogger("okno.test").exception("payment failed, phone +79161234567")
                structlog.get_logger("okno.test").error(
                    "payment.failed", exc_info=True, note=f"customer wrote {CARD}"
                )
    finally:
        root_handler.setStream(old_stream)  # type: ignore[arg-type]
    output = capsys.readouterr().out + stdlib.getvalue()

    # the traffic was real: the app logged, the crash and the library errors are there
    assert '"event": "http.unhandled"' in output or '"event":"http.unhandled"' in output
    assert "payment.failed" in output and "request failed for" in output
    assert "Traceback" in output
    assert leaks(output) == []
    assert "•••• 5679" in output  # masked, not dropped: the log still tells what happened


def _traffic(client: TestClient, channel_id: int) -> None:
    """Widget customers, a Telegram customer, an operator, a verification, bad input."""
    sveta = bearer(staff_token(client, "sveta"))
    conversation = 0
    for message, _, _ in LEAKS:
        token = widget_session(client)["session_token"]
        conversation = customer_says(client, token, message)["conversation_id"]
    # the operator answers quoting the card; the customer's history, card and search
    reply = client.post(
        f"/api/v1/conversations/{conversation}/messages",
        json={"client_msg_id": cmid(), "text": f"Карта {CARD} заблокирована"},
        headers=sveta,
    )
    assert reply.status_code == 201
    client.get(f"/api/v1/conversations/{conversation}/messages", headers=sveta)
    client.get("/api/v1/customers?q=4276380012345679", headers=sveta)
    client.get("/api/v1/customers?q=ivan.petrov@mail.ru", headers=sveta)
    # a verification whose back-end is down, answered with a code
    token = widget_session(client)["session_token"]
    verified = customer_says(client, token, "мой ИНН 500100732259")["conversation_id"]
    started = client.post(
        f"/api/v1/conversations/{verified}/verification",
        json={"method": "secret_word", "bank_customer_id": "C-1001"},
        headers=sveta,
    )
    assert started.status_code == 201
    customer_says(client, token, "мой телефон +79161234567")
    # a Telegram customer writes a phone number and shares a contact
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET}
    for update in (
        message_update("Позвоните мне 8 916 123-45-67, карта 5486 7300 0012 3459", chat_id=77),
        message_update(
            None,
            chat_id=78,
            sender=user(78, "Иван", "Петров"),
            contact={"phone_number": "+79001234567", "first_name": "Иван", "user_id": 78},
        ),
    ):
        hooked = client.post(
            f"/hooks/telegram/{channel_id}", content=json.dumps(update), headers=headers
        )
        assert hooked.status_code == 200
    # bad input carrying personal data: too long, malformed JSON, wrong types, bad paths
    client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": f"карта {CARD} " * 1000},
        headers=bearer(token),
    )
    client.post(
        "/api/v1/widget/messages",
        content=f'{{"text": "{CARD}"',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    client.post(
        "/api/v1/auth/token", json={"login": "ivan.petrov@mail.ru", "password": "4276380012345679"}
    )
    client.get("/api/v1/conversations/4276380012345679", headers=sveta)
    client.get("/api/v1/conversations?status=4276380012345679", headers=sveta)
    assert client.get("/test-crash").status_code == 500

    def settled() -> Any:
        state = client.get(f"/api/v1/conversations/{verified}/verification", headers=sveta)
        return state.json()["current"]["status"] == "failed"

    eventually(settled, what="the verification to fail against the unreachable back-end")
