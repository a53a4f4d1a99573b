"""The bank's mobile app channel (kind ``api``): sessions from a customer token the bank
signs, the widget's message/history/realtime/bot endpoints under /api/v1/mobile, pushes to
the bank's gateway (a fake on loopback) with the exact signed request, retries, and one
history with the web widget for the same bank customer."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.channels.models import Channel
from okno.conversations.models import Conversation
from okno.settings import Settings
from tests.builders import WIDGET_KEY, Staff, bearer, cmid, in_db, staff_token
from tests.channels.fakes.server import FakePlatform, Recorded, Reply
from tests.channels.telegram_live import (
    add_channel,
    conversations,
    eventually,
    message_count,
    staff_messages,
)
from tests.conftest import make_settings

IDENTITY_SECRET = "bank-app-identity-secret-0123456789abcdef"
PUSH_SECRET = "push-gateway-secret-0123456789"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cf00000301010018dd8db00000000049454e44ae426082"
)


class FakePushGateway(FakePlatform):
    """The bank's push gateway: checks okno's signature, drops a repeated delivery id, and
    records what it would push to the customer's phone."""

    def __init__(self) -> None:
        super().__init__()
        self.pushed: list[dict[str, Any]] = []
        self.no_device: set[str] = set()
        self.route("POST", r"/push", self._push)

    def _push(self, req: Recorded, m: Any) -> Reply:
        expected = "sha256=" + hmac.new(PUSH_SECRET.encode(), req.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, req.headers.get("x-okno-signature", "")):
            return Reply(401, {"error": "bad signature"})
        body = req.json()
        if body["customer_id"] in self.no_device:
            return Reply(410, {"error": "no device registered"})
        if all(p["delivery_id"] != body["delivery_id"] for p in self.pushed):
            self.pushed.append(body)
        return Reply(202, {"id": f"push-{len(self.pushed)}"})


@pytest.fixture
def gateway() -> Iterator[FakePushGateway]:
    platform = FakePushGateway().start()
    yield platform
    platform.stop()


@pytest.fixture
def live(settings: Settings, staff: Staff, gateway: FakePushGateway) -> Iterator[TestClient]:
    """okno with its worker and one app channel whose pushes go to the fake gateway."""
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=1.0,
    )
    channel_id = add_channel(
        fast,
        "api",
        name="Приложение банка",
        identity_secret=IDENTITY_SECRET,
        push_url=f"{gateway.url}/push",
        push_secret=PUSH_SECRET,
    )
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        yield client


def bank_token(
    sub: str = "C-100500", secret: str = IDENTITY_SECRET, lifetime: int = 3600, **claims: Any
) -> str:
    now = int(time.time())
    body = {"sub": sub, "iat": now, "exp": now + lifetime, **claims}
    return jwt.encode(body, secret, algorithm="HS256")


def open_session(client: TestClient, token: str | None = None, **extra: Any) -> Any:
    body = {"channel_id": client.channel_id, "customer_token": token or bank_token(), **extra}  # type: ignore[attr-defined]
    return client.post("/api/v1/mobile/sessions", json=body)


def app_token(client: TestClient, sub: str = "C-100500") -> str:
    response = open_session(client, bank_token(sub), name="Иван Петров")
    assert response.status_code == 200, response.text
    return str(response.json()["session_token"])


def app_says(client: TestClient, token: str, text: str, msg_id: str | None = None) -> Any:
    return client.post(
        "/api/v1/mobile/messages",
        json={"client_msg_id": msg_id or cmid(), "text": text},
        headers=bearer(token),
    )


def history(client: TestClient, token: str, prefix: str = "/api/v1/mobile") -> list[dict]:
    response = client.get(f"{prefix}/messages?after_seq=0", headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


def reply(client: TestClient, conversation_id: int, text: str) -> None:
    anna = staff_token(client, "anna")
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/assign", json={}, headers=bearer(anna)
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": cmid(), "text": text},
        headers=bearer(anna),
    )
    assert r.status_code == 201, r.text


def the_dialog(client: TestClient) -> dict[str, Any]:
    return eventually(lambda: conversations(client), what="a dialog in the workspace")[0]


def test_a_signed_customer_token_opens_a_session_and_messages_flow_both_ways(
    live: TestClient, gateway: FakePushGateway
) -> None:
    response = open_session(live, name="Иван Петров")
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["conversation_id"] is None and session["expires_at"]
    token = session["session_token"]
    sent = app_says(live, token, "Не приходит кешбэк за октябрь")
    assert sent.status_code == 201, sent.text
    dialog = the_dialog(live)
    assert dialog["channel"]["kind"] == "api"
    assert dialog["customer"]["name"] == "Иван Петров"

    async def verified(session: AsyncSession) -> str | None:
        return await session.scalar(
            select(Conversation.verified_as).where(Conversation.id == dialog["id"])
        )

    assert in_db(live.app.state.okno.settings, verified) == "C-100500"  # the bank vouched
    reply(live, dialog["id"], "Проверим и начислим в течение трёх дней.")
    texts = [m["text"] for m in history(live, token)]
    assert texts == ["Не приходит кешбэк за октябрь", "Проверим и начислим в течение трёх дней."]
    with live.websocket_connect(f"/api/v1/mobile/ws?token={token}&after_seq=0") as ws:
        seen = []
        while (event := ws.receive_json())["type"] != "stream.ready":
            seen.append(event)
    live_texts = [e["payload"]["message"]["text"] for e in seen if e["type"] == "message.created"]
    assert "Проверим и начислим в течение трёх дней." in live_texts
    # a second session for the same customer resumes the same dialog
    again = open_session(live).json()
    assert again["conversation_id"] == dialog["id"]


def test_forged_expired_and_misdirected_customer_tokens_are_refused(live: TestClient) -> None:
    cases = [
        (bank_token(secret="not-the-banks-secret-0123456789abcdef"), 401, "customer_token_invalid"),
        (bank_token(lifetime=-10), 401, "customer_token_expired"),
        (bank_token(lifetime=48 * 3600), 401, "customer_token_invalid"),  # lives too long
        (
            jwt.encode({"exp": int(time.time()) + 60}, IDENTITY_SECRET),
            401,
            "customer_token_invalid",
        ),
        (bank_token()[:-3] + "abc", 401, "customer_token_invalid"),
        (
            jwt.encode({"sub": "C-1", "exp": int(time.time()) + 60}, "x" * 64, algorithm="HS384"),
            401,
            "customer_token_invalid",
        ),
    ]
    for token, status, code in cases:
        response = open_session(live, token)
        assert (response.status_code, response.json()["code"]) == (status, code), code
    wrong = live.post(
        "/api/v1/mobile/sessions", json={"channel_id": 99999, "customer_token": bank_token()}
    )
    assert (wrong.status_code, wrong.json()["code"]) == (404, "unknown_channel")
    missing = live.post("/api/v1/mobile/sessions", json={"customer_token": bank_token()})
    assert missing.status_code in (400, 422)

    async def widget_id(session: AsyncSession) -> int:
        return int(await session.scalar(select(Channel.id).where(Channel.key == WIDGET_KEY)) or 0)

    widget = in_db(live.app.state.okno.settings, widget_id)
    not_app = live.post(
        "/api/v1/mobile/sessions", json={"channel_id": widget, "customer_token": bank_token()}
    )
    assert not_app.status_code == 404  # a widget is not an app channel
    # the mobile endpoints want a session token, not the bank's token
    assert app_says(live, bank_token(), "Привет").status_code == 401
    assert message_count(live.app.state.okno.settings) == 0


def test_the_push_gateway_receives_the_exact_signed_request(
    live: TestClient, gateway: FakePushGateway
) -> None:
    token = app_token(live)
    app_says(live, token, "Здравствуйте")
    dialog = the_dialog(live)
    reply(live, dialog["id"], "Добрый день! Чем помочь?")
    (call,) = gateway.wait_for("/push")
    operator_message = staff_messages(live, dialog["id"])[-1]
    delivery_id = f"okno-{live.channel_id}-{operator_message['id']}"  # type: ignore[attr-defined]
    assert call.method == "POST"
    assert call.headers["content-type"] == "application/json"
    assert call.headers["x-okno-delivery"] == delivery_id
    signature = "sha256=" + hmac.new(PUSH_SECRET.encode(), call.body, hashlib.sha256).hexdigest()
    assert call.headers["x-okno-signature"] == signature
    body = json.loads(call.body)
    sent_at = body.pop("sent_at")
    assert sent_at.endswith("+00:00")
    assert body == {
        "type": "message.created",
        "delivery_id": delivery_id,
        "channel_id": live.channel_id,  # type: ignore[attr-defined]
        "customer_id": "C-100500",
        "conversation_id": dialog["id"],
        "message": {
            "id": operator_message["id"],
            "author_kind": "operator",
            "text": "Добрый день! Чем помочь?",
            "buttons": [],
            "attachments": [],
        },
    }
    # the gateway's id becomes the delivery's; staff see it sent
    assert eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent")


def test_push_failures_are_retried_and_delivered_once(
    live: TestClient, gateway: FakePushGateway
) -> None:
    token = app_token(live)
    app_says(live, token, "Где мой перевод?")
    dialog = the_dialog(live)
    gateway.fail_next("/push", Reply(429, {"error": "slow down"}, headers={"Retry-After": "1"}))
    gateway.fail_next("/push", Reply(503, {"error": "unavailable"}))
    gateway.fail_next("/push", Reply(202, {}, delay=3.0))  # hangs past okno's 1 s timeout
    reply(live, dialog["id"], "Перевод зачислен.")
    eventually(lambda: gateway.pushed, within=40, what="pushed after three failures")
    calls = gateway.calls("/push")
    assert len(calls) == 4
    assert len({c.headers["x-okno-delivery"] for c in calls}) == 1  # one delivery id throughout
    assert [p["message"]["text"] for p in gateway.pushed] == ["Перевод зачислен."]
    assert eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent")


def test_a_push_the_gateway_refuses_is_given_up_but_stays_in_the_apps_history(
    live: TestClient, gateway: FakePushGateway
) -> None:
    gateway.no_device.add("C-7")
    token = app_token(live, "C-7")
    app_says(live, token, "Вопрос")
    dialog = the_dialog(live)
    reply(live, dialog["id"], "Ответ")
    eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "failed")
    assert len(gateway.calls("/push")) == 1  # a 410 is not retried
    assert [m["text"] for m in history(live, token)][-1] == "Ответ"


def test_a_retried_send_and_an_attachment(live: TestClient) -> None:
    token = app_token(live)
    msg_id = cmid()
    first = app_says(live, token, "Один раз", msg_id)
    second = app_says(live, token, "Один раз", msg_id)
    assert (first.status_code, second.status_code) == (201, 200)
    attached = live.post(
        "/api/v1/mobile/attachments",
        data={"client_msg_id": cmid(), "text": "Скриншот"},
        files={"file": ("screen.png", PNG, "image/png")},
        headers=bearer(token),
    )
    assert attached.status_code == 201, attached.text
    messages = history(live, token)
    assert [m["text"] for m in messages] == ["Один раз", "Скриншот"]
    (file,) = messages[1]["attachments"]
    downloaded = live.get(file["url"], headers=bearer(token))
    assert downloaded.status_code == 200 and downloaded.content == PNG


def test_the_bot_suggests_and_answers_for_an_app_session(live: TestClient) -> None:
    from tests.bot.test_flows import KB

    root = staff_token(live, "root")
    r = live.post(
        "/api/v1/kb/import",
        content=KB.encode(),
        headers={**bearer(root), "Content-Type": "application/yaml"},
    )
    assert r.status_code == 200, r.text
    token = app_token(live)
    suggest = live.get("/api/v1/bot/suggest?q=Секретный вопрос прил&limit=5", headers=bearer(token))
    assert suggest.status_code == 200, suggest.text
    ids = [s["article_id"] for s in suggest.json()["suggestions"]]
    assert "api-only" in ids  # an article shown only in the app is offered here
    ask = live.post(
        "/api/v1/bot/ask", json={"text": "Как заблокировать карту?"}, headers=bearer(token)
    )
    assert ask.status_code == 200 and ask.json()["article_id"] == "card-block"


def test_the_same_bank_customer_on_the_widget_and_the_app_sees_one_history(
    live: TestClient,
) -> None:
    async def set_widget_secret(session: AsyncSession) -> None:
        widget = await session.scalar(select(Channel).where(Channel.key == WIDGET_KEY))
        assert widget is not None
        widget.config = {**(widget.config or {}), "identity_secret": IDENTITY_SECRET}

    in_db(live.app.state.okno.settings, set_widget_secret)
    web = live.post(
        "/api/v1/widget/sessions",
        json={"widget_key": WIDGET_KEY, "customer_token": bank_token("C-42")},
    )
    assert web.status_code == 200, web.text
    web_token = web.json()["session_token"]
    r = live.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": "Пишу с сайта"},
        headers=bearer(web_token),
    )
    assert r.status_code == 201, r.text
    phone = app_token(live, "C-42")
    assert app_says(live, phone, "А теперь из приложения").status_code == 201
    expected = ["Пишу с сайта", "А теперь из приложения"]
    assert [m["text"] for m in history(live, phone)] == expected
    assert [m["text"] for m in history(live, web_token, "/api/v1/widget")] == expected
    # staff see one customer with both dialogs
    dialogs = eventually(
        lambda: len(conversations(live, "root", "all")) == 2 and conversations(live, "root", "all")
    )
    assert len({d["customer"]["id"] for d in dialogs}) == 1
    # another bank customer sees none of it
    stranger = app_token(live, "C-43")
    assert history(live, stranger) == []


def test_the_app_channel_has_no_webhook(live: TestClient) -> None:
    response = live.post(f"/hooks/api/{live.channel_id}", json={"text": "hi"})  # type: ignore[attr-defined]
    assert (response.status_code, response.json()["code"]) == (404, "no_webhook")
    assert message_count(live.app.state.okno.settings) == 0


def test_push_settings_are_checked_and_secrets_write_only(live: TestClient) -> None:
    from okno.channels import kinds
    from okno.errors import BadRequest

    adapter = kinds.adapter_for("api")
    with pytest.raises(BadRequest) as missing:
        kinds.prepare_config(
            adapter, {"identity_secret": IDENTITY_SECRET, "push_url": "https://push.bank"}, "k" * 32
        )
    assert missing.value.code == "missing_setting"
    with pytest.raises(BadRequest):
        kinds.prepare_config(
            adapter,
            {"identity_secret": IDENTITY_SECRET, "push_url": "ftp://x", "push_secret": "s"},
            "k" * 32,
        )
    with pytest.raises(BadRequest) as short:
        kinds.prepare_config(adapter, {"identity_secret": "too-short"}, "k" * 32)
    assert (short.value.code, short.value.fields.get("field")) == (
        "invalid_setting",
        "identity_secret",
    )
    root = staff_token(live, "root")
    listed = live.get("/api/v1/channels", headers=bearer(root)).json()["channels"]
    app = next(c for c in listed if c["kind"] == "api")
    assert IDENTITY_SECRET not in json.dumps(app) and PUSH_SECRET not in json.dumps(app)


def test_app_sessions_messages_and_files_are_rate_limited(
    settings: Settings, staff: Staff, gateway: FakePushGateway
) -> None:
    limited = make_settings(
        settings.data_dir,
        settings.database_url,
        mobile_sessions_per_ip_per_minute=2,
        mobile_messages_per_minute=3,
    )
    channel_id = add_channel(
        limited,
        "api",
        name="Приложение банка",
        identity_secret=IDENTITY_SECRET,
        push_url=f"{gateway.url}/push",
        push_secret=PUSH_SECRET,
    )
    with TestClient(create_app(limited)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        opened = [open_session(client, bank_token(f"C-{i}")) for i in range(3)]
        assert [r.status_code for r in opened] == [200, 200, 429]
        assert opened[2].json()["code"] == "rate_limited"
        assert opened[2].json()["fields"]["scope"] == "mobile_sessions"
        assert 1 <= int(opened[2].headers["retry-after"]) <= 30

        token = opened[0].json()["session_token"]
        sent = [app_says(client, token, f"вопрос {i}").status_code for i in range(2)]
        attached = client.post(
            "/api/v1/mobile/attachments",
            data={"client_msg_id": cmid(), "text": "Скриншот"},
            files={"file": ("screen.png", PNG, "image/png")},
            headers=bearer(token),
        )
        assert sent == [201, 201] and attached.status_code == 201, attached.text
        # messages and files draw from one bucket per app session
        too_fast = app_says(client, token, "ещё вопрос")
        assert too_fast.status_code == 429 and too_fast.json()["code"] == "rate_limited"
        assert 1 <= int(too_fast.headers["retry-after"]) <= 20
        file_too_fast = client.post(
            "/api/v1/mobile/attachments",
            data={"client_msg_id": cmid()},
            files={"file": ("screen.png", PNG, "image/png")},
            headers=bearer(token),
        )
        assert file_too_fast.status_code == 429
        # another customer's session has its own bucket; reading history is not limited
        other = opened[1].json()["session_token"]
        assert app_says(client, other, "привет").status_code == 201
        assert [m["text"] for m in history(client, token)] == ["вопрос 0", "вопрос 1", "Скриншот"]
        # the web widget's limits are its own
        widget = client.post(
            "/api/v1/widget/sessions",
            json={"widget_key": WIDGET_KEY},
            headers={"Origin": "https://bank.example"},
        )
        assert widget.status_code == 200
