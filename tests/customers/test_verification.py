"""Customer verification against a fake bank back-end on loopback (a real HTTP server
speaking the documented /send-code and /check contract), and unmasking after it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.conversations.models import Message
from okno.customers.models import CustomerVerification
from okno.security.audit_models import AuditEntry
from okno.settings import Settings
from tests.builders import Staff, bearer, customer_says, in_db, staff_token, widget_session
from tests.channels.fakes.server import FakePlatform, Recorded, Reply

SECRET_WORD = "Тюльпан"
CODE = "482913"
CARD = "4276 3800 1234 5679"
BANK_TOKEN = "verification-gateway-token"


class FakeBank(FakePlatform):
    """The bank's verification service: customer C-1001's secret word is SECRET_WORD; a
    code sent by /send-code is CODE."""

    def __init__(self) -> None:
        super().__init__()
        self.codes_sent: list[str] = []
        self.route("POST", "/verify/send-code", self._send)
        self.route("POST", "/verify/check", self._check)

    def _send(self, req: Recorded, _m: Any) -> Reply:
        self.codes_sent.append(req.json()["customer_id"])
        return Reply(200, {"sent": True})

    def _check(self, req: Recorded, _m: Any) -> Reply:
        body = req.json()
        if body["customer_id"] != "C-1001":
            return Reply(200, {"verified": False})
        expected = SECRET_WORD if body["method"] == "secret_word" else CODE
        return Reply(200, {"verified": body["answer"].strip().casefold() == expected.casefold()})


@pytest.fixture
def bank() -> Iterator[FakeBank]:
    fake = FakeBank().start()
    yield fake
    fake.stop()


@pytest.fixture
def live(settings: Settings, staff: Staff, bank: FakeBank) -> Iterator[TestClient]:
    configured = settings.model_copy(
        update={
            "worker_in_process": True,
            "verification_url": bank.url + "/verify",
            "verification_token": BANK_TOKEN,
            "verification_timeout_seconds": 1.0,
            "verification_attempts": 2,
        }
    )
    with TestClient(create_app(configured)) as client:
        yield client


def wait_until(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("the condition did not come true in time")


def state(client: TestClient, conv: int, who: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/api/v1/conversations/{conv}/verification", headers=who)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def start(
    client: TestClient, conv: int, who: dict[str, str], method: str = "secret_word"
) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/conversations/{conv}/verification",
        json={"method": method, "bank_customer_id": "C-1001"},
        headers=who,
    )
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def customer_dialog(client: TestClient, text: str) -> tuple[str, int, int]:
    """A widget customer who wrote ``text``: (session token, conversation id, message id)."""
    token = widget_session(client)["session_token"]
    message = customer_says(client, token, text)
    return token, message["conversation_id"], message["id"]


def widget_texts(client: TestClient, token: str) -> list[str]:
    response = client.get("/api/v1/widget/messages?after_seq=0", headers=bearer(token))
    return [m["text"] for m in response.json()["messages"]]


def test_secret_word_verifies_the_dialog_and_lets_a_supervisor_unmask(
    live: TestClient, bank: FakeBank, settings: Settings
) -> None:
    token, conv, card_message = customer_dialog(live, f"Списали дважды с карты {CARD}")
    sveta = bearer(staff_token(live, "sveta"))
    before = state(live, conv, sveta)
    assert before == {"available": True, "verified": False, "may_unmask": True, "current": None}
    # not verified yet: the supervisor may not see the number, and that is audited
    refused = live.post(
        f"/api/v1/conversations/{conv}/messages/{card_message}/unmask", headers=sveta
    )
    assert refused.status_code == 403 and refused.json()["code"] == "verification_required"

    started = start(live, conv, sveta)
    assert started["status"] == "awaiting_answer" and started["attempts_left"] == 2
    # the customer is asked for the word in their chat
    assert any("кодовое слово" in t for t in widget_texts(live, token))
    answer = customer_says(live, token, SECRET_WORD)
    # the answer is neither stored nor echoed: the bank checks it
    assert SECRET_WORD not in answer["text"]
    done = wait_until(lambda: (s := state(live, conv, sveta))["verified"] and s)
    assert done["current"]["status"] == "verified" and done["current"]["verified_until"]
    assert wait_until(lambda: "Спасибо, проверка пройдена." in widget_texts(live, token))

    (check,) = bank.calls("/verify/check")
    assert check.headers["authorization"] == f"Bearer {BANK_TOKEN}"
    assert check.json() == {
        "customer_id": "C-1001",
        "conversation_id": conv,
        "verification_id": started["id"],
        "method": "secret_word",
        "answer": SECRET_WORD,
    }
    assert check.headers["idempotency-key"] == f"okno-verification-{started['id']}-check-1"

    unmasked = live.post(
        f"/api/v1/conversations/{conv}/messages/{card_message}/unmask", headers=sveta
    )
    assert unmasked.status_code == 200, unmasked.text
    assert unmasked.json()["text"] == f"Списали дважды с карты {CARD}"

    async def stored(session: AsyncSession) -> tuple[list[str], list[str | None], list[Any]]:
        texts = list(
            await session.scalars(select(Message.text).where(Message.conversation_id == conv))
        )
        answers = list(await session.scalars(select(CustomerVerification.answer)))
        audit = list(
            await session.execute(
                select(AuditEntry.action, AuditEntry.outcome, AuditEntry.object_id)
            )
        )
        return texts, answers, audit

    texts, answers, audit = in_db(settings, stored)
    assert not any(SECRET_WORD in t for t in texts)  # nowhere in the database
    assert answers == [None]
    unmask_entries = [(a, o, i) for a, o, i in audit if a == "pii.unmasked"]
    assert unmask_entries == [
        ("pii.unmasked", "denied", str(card_message)),
        ("pii.unmasked", "success", str(card_message)),
    ]


def test_the_serving_operator_verifies_and_unmasks_an_integration_token_never_does(
    live: TestClient,
) -> None:
    token, conv, card_message = customer_dialog(live, f"карта {CARD}")
    anna = bearer(staff_token(live, "anna"))
    assert (
        live.post(f"/api/v1/conversations/{conv}/assign", json={}, headers=anna).status_code == 200
    )
    start(live, conv, anna)
    customer_says(live, token, SECRET_WORD)
    assert wait_until(lambda: state(live, conv, anna)["verified"])
    shown = live.post(f"/api/v1/conversations/{conv}/messages/{card_message}/unmask", headers=anna)
    assert shown.status_code == 200 and shown.json()["text"] == f"карта {CARD}"

    # the bank's CRM reads dialogs through an API token: it never gets personal data unmasked
    created = live.post(
        "/api/v1/tokens",
        json={"name": "CRM", "scopes": ["conversations.read_all", "conversations.read_team"]},
        headers=bearer(staff_token(live, "root")),
    )
    assert created.status_code == 201, created.text
    crm = bearer(created.json()["token"])
    assert state(live, conv, crm)["may_unmask"] is False
    refused = live.post(f"/api/v1/conversations/{conv}/messages/{card_message}/unmask", headers=crm)
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden_role"
    (listed,) = [
        m
        for m in live.get(f"/api/v1/conversations/{conv}/messages", headers=crm).json()["messages"]
        if m["id"] == card_message
    ]
    assert listed["text"] == "карта •••• 5679"


def test_wrong_answers_use_up_the_attempts_and_fail(live: TestClient, bank: FakeBank) -> None:
    token, conv, _ = customer_dialog(live, "хочу узнать номер счёта")
    sveta = bearer(staff_token(live, "sveta"))
    start(live, conv, sveta)
    customer_says(live, token, "Ромашка")
    retry = wait_until(
        lambda: (
            (s := state(live, conv, sveta))["current"]["status"] == "awaiting_answer"
            and s["current"]["reason"] == "wrong_answer"
            and s
        )
    )
    assert retry["current"]["attempts_left"] == 1 and not retry["verified"]
    assert wait_until(
        lambda: "Ответ не подошёл. Попробуйте, пожалуйста, ещё раз." in widget_texts(live, token)
    )
    customer_says(live, token, "Лютик")
    failed = wait_until(
        lambda: (s := state(live, conv, sveta))["current"]["status"] == "failed" and s
    )
    assert failed["current"]["reason"] == "wrong_answer" and failed["verified"] is False
    # the next message is an ordinary message again, not an answer
    later = customer_says(live, token, SECRET_WORD)
    assert later["text"] == SECRET_WORD
    assert len(bank.calls("/verify/check")) == 2


def test_one_time_code_is_sent_by_the_bank_and_checked(live: TestClient, bank: FakeBank) -> None:
    token, conv, _ = customer_dialog(live, "подтвердите перевод")
    sveta = bearer(staff_token(live, "sveta"))
    start(live, conv, sveta, method="one_time_code")
    bank.wait_for("/verify/send-code")
    assert bank.codes_sent == ["C-1001"]
    assert any("одноразовый код" in t for t in widget_texts(live, token))
    customer_says(live, token, CODE)
    assert wait_until(lambda: state(live, conv, sveta)["verified"])
    assert bank.calls("/verify/check")[0].json()["method"] == "one_time_code"


def test_a_bank_that_does_not_answer_fails_the_verification(
    live: TestClient, bank: FakeBank
) -> None:
    token, conv, _ = customer_dialog(live, "здравствуйте")
    sveta = bearer(staff_token(live, "sveta"))
    start(live, conv, sveta)
    bank.fail_next("/verify/check", Reply(503, {"error": "maintenance"}))
    customer_says(live, token, SECRET_WORD)
    failed = wait_until(
        lambda: (s := state(live, conv, sveta))["current"]["status"] == "failed" and s
    )
    assert failed["current"]["reason"] == "backend_unavailable"
    assert wait_until(
        lambda: (
            "Сейчас проверку выполнить не удалось. Оператор продолжит разговор."
            in widget_texts(live, token)
        )
    )


def test_bad_requests_get_clear_codes(client: TestClient, live: TestClient) -> None:
    # client: verification not configured; live: configured
    _, conv, _ = customer_dialog(client, "привет")
    sveta = bearer(staff_token(client, "sveta"))
    off = client.post(
        f"/api/v1/conversations/{conv}/verification", json={"method": "secret_word"}, headers=sveta
    )
    assert off.status_code == 409 and off.json()["code"] == "verification_not_configured"
    assert state(client, conv, sveta)["available"] is False

    _, conv, _ = customer_dialog(live, "привет")
    sveta = bearer(staff_token(live, "sveta"))
    unknown = live.post(
        f"/api/v1/conversations/{conv}/verification", json={"method": "secret_word"}, headers=sveta
    )
    assert unknown.status_code == 422 and unknown.json()["code"] == "bank_customer_unknown"
    bad = live.post(
        f"/api/v1/conversations/{conv}/verification", json={"method": "sms"}, headers=sveta
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"
    missing = live.post(f"/api/v1/conversations/{conv}/messages/999999/unmask", headers=sveta)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
