"""Button flows in a real dialog, one test per step kind: choice (button, typed number,
typed label, a new question instead), message, article, location (shared point, typed
city), handoff and the self-service action (verified only; the bank's back-end answering,
failing, timing out). The back-end is a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.channels.models import Channel
from okno.settings import Settings
from tests.bot.test_flow import bot_lines, say, status, wait_for
from tests.builders import Staff, bearer, in_db, staff_token, widget_session

KB = """
articles:
  - id: card-block
    title: Как заблокировать карту
    questions: ["Как заблокировать карту?", "Потерял карту, что делать"]
    answer: Заблокировать карту можно в приложении.
    topic: cards
  - id: reissue
    title: Перевыпуск карты
    questions: ["Как перевыпустить карту"]
    answer: Перевыпуск бесплатный, закажите его в приложении.
    topic: cards
  - id: api-only
    title: Только для приложения
    questions: ["Секретный вопрос приложения"]
    answer: Этот ответ только для мобильного приложения.
    channels: [api]
  - id: atm-find
    title: Где ближайший банкомат
    questions: ["Где ближайший банкомат?", "Найти банкомат рядом"]
    answer: Банкоматы есть на карте в приложении.
    topic: cash
"""

FLOWS = """
flows:
  - id: block
    title: Заблокировать карту
    articles: [card-block]
    topic: cards
    start: what
    steps:
      what:
        kind: choice
        text: Что случилось с картой?
        options:
          - {label: Заблокировать на время, next: temporary}
          - {label: Карту украли, next: stolen}
          - {label: Позвать оператора, next: person}
      temporary:
        text: Блокировка в приложении — Карты → Настройки.
        next: more
      stolen:
        kind: article
        article: reissue
        next: hidden
      hidden:
        kind: article
        article: api-only
        next: more
      more:
        kind: choice
        text: Что-то ещё?
        options:
          - {label: Нет, next: bye}
      bye:
        text: До свидания!
      person:
        kind: handoff
        text: Соединяю со специалистом по картам.
        topic: fraud
  - id: atm
    title: Ближайший банкомат
    articles: [atm-find]
    topic: cash
    start: where
    steps:
      where:
        kind: location
        text: Поделитесь местоположением или напишите город.
        places: atm
        limit: 2
        next: after
      after:
        text: Снять наличные без комиссии можно в любом нашем банкомате.
  - id: balance
    title: Баланс карты
    questions: ["Какой у меня баланс", "Сколько денег на карте"]
    topic: cards
    start: ask
    steps:
      ask:
        kind: action
        action: balance
        params: {currency: RUB}
        text: "Баланс карты {card}: {balance} ₽."
        next: done
      done:
        text: Чем ещё помочь?
"""

PLACES = """id,kind,name,city,address,lat,lon,hours,services
m-atm-near,atm,Банкомат Манежная,Москва,"Манежная пл., 1",55.7557,37.6147,круглосуточно,приём наличных
m-atm-far,atm,Банкомат ВДНХ,Москва,"пр-т Мира, 119",55.8260,37.6377,круглосуточно,
m-atm-mid,atm,Банкомат Пушкинская,Москва,"Пушкинская пл., 2",55.7655,37.6055,круглосуточно,
m-branch,branch,Отделение Тверская,Москва,"ул. Тверская, 12",55.7611,37.6088,пн–пт 9–20,вклады
k-atm,atm,Банкомат Кремлёвская,Казань,"ул. Кремлёвская, 2",55.7960,49.1080,круглосуточно,
"""

SECRET = "bank-identity-secret-for-the-tests-0001"


class Backend:
    """The bank's self-service gateway: records each request, answers as told."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.body: Any = {"card": "•• 4417", "balance": "12 345,67"}
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "json": json.loads(self.rfile.read(length)),
                    }
                )
                time.sleep(outer.delay)
                payload = json.dumps(outer.body).encode()
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # okno gave up waiting (the timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/selfservice"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def backend() -> Iterator[Backend]:
    b = Backend()
    yield b
    b.server.shutdown()


@pytest.fixture
def live(settings: Settings, staff: Staff, backend: Backend) -> Iterator[TestClient]:
    """The app with its worker, the bot on, the KB, the flows and the directory imported."""

    async def bot_on(session: AsyncSession) -> None:
        channel = await session.get(Channel, staff.widget_id)
        assert channel is not None
        channel.config = {**(channel.config or {}), "bot": True, "identity_secret": SECRET}

    in_db(settings, bot_on)
    configured = settings.model_copy(
        update={
            "worker_in_process": True,
            "bot_actions_url": backend.url,
            "bot_actions_token": "gateway-token",
            "bot_actions_timeout_seconds": 0.5,
        }
    )
    with TestClient(create_app(configured)) as client:
        root = bearer(staff_token(client, "root"))
        for path, body, kind in (
            ("/api/v1/kb/import", KB, "application/yaml"),
            ("/api/v1/bot/flows/import", FLOWS, "application/yaml"),
            ("/api/v1/bot/places/import", PLACES, "text/csv"),
        ):
            response = client.post(
                path, content=body.encode(), headers={**root, "Content-Type": kind}
            )
            assert response.status_code == 200, response.text
        yield client


def last_bot(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return [m for m in messages if m["author_kind"] == "bot"][-1]


def buttons(message: dict[str, Any]) -> list[str]:
    return [b["label"] for b in (message.get("meta") or {}).get("buttons", [])]


def press(client: TestClient, token: str, message: dict[str, Any], label: str) -> None:
    (button,) = [b for b in message["meta"]["buttons"] if b["label"] == label]
    say(client, token, label, button=button["payload"])


def count_bot(n: int) -> Any:
    return lambda ms: len(bot_lines(ms)) >= n


def test_choice_buttons_lead_through_message_steps_to_the_end(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "как заблокировать карту")
    first = last_bot(wait_for(live, token, count_bot(1)))
    # the article's question started the flow instead of the article's answer
    assert first["text"] == "Что случилось с картой?"
    assert buttons(first) == ["Заблокировать на время", "Карту украли", "Позвать оператора"]
    press(live, token, first, "Заблокировать на время")
    messages = wait_for(live, token, count_bot(3))
    assert bot_lines(messages)[1:] == [
        "Блокировка в приложении — Карты → Настройки.",
        "Что-то ещё?",
    ]
    # the customer's button press is in the history as what they pressed
    pressed = [m for m in messages if m["author_kind"] == "customer"][-1]
    assert pressed["text"] == "Заблокировать на время"
    assert pressed["meta"]["button"].startswith("flow:block:what:")
    say(live, token, "нет")  # typed instead of pressed
    assert bot_lines(wait_for(live, token, count_bot(4)))[-1] == "До свидания!"
    assert status(live, conversation)["status"] == "bot"  # the bot settled it; no person


def test_typed_number_or_label_with_a_typo_picks_the_option(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    say(live, token, "как заблокировать карту")
    wait_for(live, token, count_bot(1))
    say(live, token, "1")
    assert bot_lines(wait_for(live, token, count_bot(3)))[1] == (
        "Блокировка в приложении — Карты → Настройки."
    )
    other = widget_session(live)["session_token"]
    say(live, other, "как заблокировать карту")
    wait_for(live, other, count_bot(1))
    say(live, other, "карту укради")
    lines = bot_lines(wait_for(live, other, count_bot(3)))
    # the article step said the article; the next one, for another channel only, was skipped
    assert lines[1:] == ["Перевыпуск бесплатный, закажите его в приложении.", "Что-то ещё?"]
    assert "мобильного приложения" not in " ".join(lines)


def test_a_new_question_inside_a_flow_leaves_it_and_is_answered(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    say(live, token, "как заблокировать карту")
    wait_for(live, token, count_bot(1))
    say(live, token, "как перевыпустить карту")
    lines = bot_lines(wait_for(live, token, count_bot(2)))
    assert lines[-1] == "Перевыпуск бесплатный, закажите его в приложении."


def test_handoff_step_passes_the_dialog_to_a_person_with_the_steps_topic(
    live: TestClient,
) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "как заблокировать карту")
    first = last_bot(wait_for(live, token, count_bot(1)))
    press(live, token, first, "Позвать оператора")
    messages = wait_for(
        live, token, lambda ms: any("специалистом по картам" in m["text"] for m in ms)
    )
    assert [m["author_kind"] for m in messages][-1] == "system"
    shown = status(live, conversation)
    assert (shown["status"], shown["topic"]) in {("waiting", "fraud"), ("assigned", "fraud")}


def test_an_old_button_further_up_still_works(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    say(live, token, "как заблокировать карту")
    first = last_bot(wait_for(live, token, count_bot(1)))
    press(live, token, first, "Заблокировать на время")
    wait_for(live, token, count_bot(3))
    press(live, token, first, "Карту украли")  # the first question's button, pressed later
    lines = bot_lines(wait_for(live, token, count_bot(5)))
    assert lines[3] == "Перевыпуск бесплатный, закажите его в приложении."


def test_location_step_lists_the_nearest_places_with_distances(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    say(live, token, "где ближайший банкомат")
    ask = last_bot(wait_for(live, token, count_bot(1)))
    assert ask["meta"] == {"ask_location": True}
    # standing on Tverskaya street, 12
    say(live, token, "Моё местоположение", location={"lat": 55.7611, "lon": 37.6088})
    messages = wait_for(live, token, count_bot(3))
    found = next(m for m in messages if (m.get("meta") or {}).get("places"))
    places = found["meta"]["places"]
    assert [p["id"] for p in places] == ["m-atm-mid", "m-atm-near"]  # ATMs only, nearest first
    assert 0.4 < places[0]["distance_km"] < 0.6 and 0.6 < places[1]["distance_km"] < 0.8
    assert found["text"].startswith("Ближайшие к вам:\n1. Банкомат Пушкинская")
    assert "м." in found["text"] or " м" in found["text"]
    assert bot_lines(messages)[-1] == "Снять наличные без комиссии можно в любом нашем банкомате."


def test_location_step_accepts_a_typed_city(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    say(live, token, "где ближайший банкомат")
    wait_for(live, token, count_bot(1))
    say(live, token, "я в Казани")
    messages = wait_for(live, token, count_bot(2))
    found = next(m for m in messages if (m.get("meta") or {}).get("places"))
    assert [p["id"] for p in found["meta"]["places"]] == ["k-atm"]


def test_a_shared_location_outside_any_flow_gets_the_nearest_places(live: TestClient) -> None:
    token = widget_session(live)["session_token"]
    say(live, token, "📍", location={"lat": 55.7960, "lon": 49.1090})
    found = last_bot(wait_for(live, token, count_bot(1)))
    assert found["meta"]["places"][0]["id"] == "k-atm"


def verified_session(client: TestClient, bank_id: str = "C-100500") -> str:
    now = datetime.now(UTC)
    token = jwt.encode(
        {"sub": bank_id, "iat": now, "exp": now + timedelta(minutes=10)}, SECRET, algorithm="HS256"
    )
    response = client.post(
        "/api/v1/widget/sessions", json={"widget_key": "acme", "customer_token": token}
    )
    assert response.status_code == 200, response.text
    session_token: str = response.json()["session_token"]
    return session_token


def test_action_calls_the_bank_for_a_verified_customer_and_says_the_answer(
    live: TestClient, backend: Backend
) -> None:
    token = verified_session(live)
    conversation = say(live, token, "какой у меня баланс")
    lines = bot_lines(wait_for(live, token, count_bot(2)))
    assert lines == ["Баланс карты •• 4417: 12 345,67 ₽.", "Чем ещё помочь?"]
    (request,) = backend.requests
    assert request["path"] == "/selfservice/balance"
    assert request["headers"]["Authorization"] == "Bearer gateway-token"
    assert request["headers"]["Idempotency-Key"].startswith(f"okno-{conversation}-")
    assert request["json"] == {
        "action": "balance",
        "customer_id": "C-100500",
        "conversation_id": conversation,
        "params": {"currency": "RUB"},
    }
    assert status(live, conversation)["status"] == "bot"


def test_action_for_an_unverified_customer_never_reaches_the_bank(
    live: TestClient, backend: Backend
) -> None:
    token = widget_session(live)["session_token"]
    conversation = say(live, token, "какой у меня баланс")
    messages = wait_for(live, token, lambda ms: ms[-1]["author_kind"] == "system")
    assert "после входа в интернет-банк" in messages[-1]["text"]
    assert backend.requests == []
    assert status(live, conversation)["status"] in ("waiting", "assigned")


@pytest.mark.parametrize(
    ("status_code", "body", "delay"),
    [
        (500, {"error": "down"}, 0.0),  # the back-end fails
        (200, {"card": "•• 4417"}, 0.0),  # the answer lacks a field the text needs
        (200, ["not", "an", "object"], 0.0),  # nonsense
        (200, {"card": "•• 4417", "balance": "1"}, 1.5),  # too slow (timeout 0.5 s)
    ],
    ids=["status-500", "missing-field", "not-an-object", "timeout"],
)
def test_back_end_failure_apologises_and_hands_off_once(
    live: TestClient, backend: Backend, status_code: int, body: Any, delay: float
) -> None:
    backend.status, backend.body, backend.delay = status_code, body, delay
    token = verified_session(live)
    conversation = say(live, token, "сколько денег на карте")
    messages = wait_for(live, token, lambda ms: ms[-1]["author_kind"] == "system")
    assert "не получается получить эти данные" in messages[-1]["text"]
    assert bot_lines(messages) == []  # no half-filled balance was shown
    time.sleep(0.5)
    again = live.get("/api/v1/widget/messages", headers=bearer(token)).json()["messages"]
    assert [m["text"] for m in again].count(messages[-1]["text"]) == 1
    assert len(backend.requests) == 1  # one try: a person is better than a bot retrying
    assert status(live, conversation)["topic"] == "cards"


def test_forged_or_expired_customer_tokens_are_refused(live: TestClient) -> None:
    now = datetime.now(UTC)
    forged = jwt.encode({"sub": "C-1", "exp": now + timedelta(minutes=5)}, "x" * 32, "HS256")
    expired = jwt.encode({"sub": "C-1", "exp": now - timedelta(minutes=5)}, SECRET, "HS256")
    for token, code in ((forged, "customer_token_invalid"), (expired, "customer_token_expired")):
        response = live.post(
            "/api/v1/widget/sessions", json={"widget_key": "acme", "customer_token": token}
        )
        assert (response.status_code, response.json()["code"]) == (401, code)


def test_a_verified_customer_has_one_history_across_devices(live: TestClient) -> None:
    phone = verified_session(live, "C-42")
    conversation = say(live, phone, "Секретный вопрос приложения")
    laptop = verified_session(live, "C-42")
    history = live.get("/api/v1/widget/messages", headers=bearer(laptop)).json()["messages"]
    assert [m["conversation_id"] for m in history][:1] == [conversation]
    stranger = verified_session(live, "C-43")
    assert live.get("/api/v1/widget/messages", headers=bearer(stranger)).json()["messages"] == []


def test_articles_outside_their_channel_or_dates_are_never_shown(
    live: TestClient, settings: Settings
) -> None:
    root = bearer(staff_token(live, "root"))
    expired = """
articles:
  - id: old-promo
    title: Акция на вклад Летний
    questions: ["Условия акции на вклад Летний"]
    answer: Ставка 20% по акции.
    valid_to: 2020-01-01
  - id: future-promo
    title: Акция на вклад Зимний
    questions: ["Условия акции на вклад Зимний"]
    answer: Ставка 25% по акции.
    valid_from: 2099-01-01
"""
    response = live.post(
        "/api/v1/kb/import",
        content=expired.encode(),
        headers={**root, "Content-Type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    token = widget_session(live)["session_token"]
    for text in ("акции на вклад Летний", "акции на вклад Зимний", "Секретный вопрос приложения"):
        suggested = live.get("/api/v1/bot/suggest", params={"q": text}, headers=bearer(token))
        ids = [s["article_id"] for s in suggested.json()["suggestions"]]
        assert not {"old-promo", "future-promo", "api-only"} & set(ids), (text, ids)
        asked = live.post("/api/v1/bot/ask", json={"text": text}, headers=bearer(token)).json()
        assert asked["article_id"] not in {"old-promo", "future-promo", "api-only"}
    # picking a hidden article by id (a crafted request) does not show it either
    say(live, token, "Секретный вопрос приложения", article_id="api-only")
    messages = wait_for(live, token, lambda ms: ms[-1]["author_kind"] != "customer")
    assert "мобильного приложения" not in " ".join(m["text"] for m in messages)


def test_the_identity_secret_is_write_only_and_must_be_long(live: TestClient, staff: Staff) -> None:
    root = bearer(staff_token(live, "root"))
    path = f"/api/v1/channels/{staff.widget_id}"
    short = live.patch(path, json={"identity_secret": "too-short"}, headers=root)
    assert (short.status_code, short.json()["code"]) == (400, "invalid_identity_secret")
    new_secret = "another-bank-identity-secret-0002"
    changed = live.patch(path, json={"identity_secret": new_secret}, headers=root)
    assert changed.status_code == 200, changed.text
    assert new_secret not in changed.text and changed.json()["config"]["identity_secret_set"]
    listed = live.get("/api/v1/channels", headers=root).text
    assert new_secret not in listed and SECRET not in listed
    # tokens signed with the old secret no longer verify; the new one does
    now = datetime.now(UTC)
    old = jwt.encode({"sub": "C-1", "exp": now + timedelta(minutes=5)}, SECRET, "HS256")
    refused = live.post(
        "/api/v1/widget/sessions", json={"widget_key": "acme", "customer_token": old}
    )
    assert refused.status_code == 401
    new = jwt.encode({"sub": "C-1", "exp": now + timedelta(minutes=5)}, new_secret, "HS256")
    accepted = live.post(
        "/api/v1/widget/sessions", json={"widget_key": "acme", "customer_token": new}
    )
    assert accepted.status_code == 200
    # removed: customer tokens are refused with a reason, anonymous visitors still welcome
    assert live.patch(path, json={"identity_secret": ""}, headers=root).status_code == 200
    none = live.post("/api/v1/widget/sessions", json={"widget_key": "acme", "customer_token": new})
    assert (none.status_code, none.json()["code"]) == (400, "customer_token_not_accepted")
    assert live.post("/api/v1/widget/sessions", json={"widget_key": "acme"}).status_code == 200
