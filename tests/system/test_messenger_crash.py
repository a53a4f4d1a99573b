"""okno killed (-9) while a message to a Telegram customer is on its way: after the restart
the message is sent again and reaches the customer exactly once; the customer's message
acknowledged before the crash is still there."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from okno.channels import service as channels
from okno.db import migrate
from okno.settings import load_settings
from tests import services
from tests.builders import PASSWORD, bearer, cmid, in_db, seed_staff
from tests.channels.fakes.server import Reply
from tests.channels.fakes.telegram import TOKEN, FakeTelegram, message_update
from tests.system.server import SECRET_KEY, OknoServer

pytestmark = pytest.mark.slow
WEBHOOK_SECRET = "crash-test-secret"


def login(server: OknoServer, name: str) -> dict[str, str]:
    r = httpx.post(f"{server.url}/api/v1/auth/token", json={"login": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return bearer(r.json()["access_token"])


def test_a_send_cut_by_a_crash_is_delivered_once_after_the_restart(tmp_path: Path) -> None:
    fake = FakeTelegram().start()
    try:
        settings = load_settings(data_dir=tmp_path, secret_key=SECRET_KEY)
        services.run_in_thread(lambda: migrate.upgrade(settings))
        services.run_in_thread(lambda: seed_staff(settings))

        async def add(session: Any) -> int:
            channel = await channels.add_messenger(
                session,
                kind="telegram",
                values={"bot_token": TOKEN, "webhook_secret": WEBHOOK_SECRET, "api_base": fake.url},
                signing_key=settings.signing_key(),
            )
            return channel.id

        channel_id = in_db(settings, add)
        server = OknoServer(
            tmp_path,
            secret_key=SECRET_KEY,
            extra_env={
                "OKNO_CHANNEL_SEND_TIMEOUT_SECONDS": "3",
                "OKNO_JOB_LEASE_SECONDS": "5",
                "OKNO_WORKER_POLL_SECONDS": "0.2",
            },
        )
        server.start()
        update = message_update("Когда придёт карта?", chat_id=800100)
        hooked = httpx.post(
            f"{server.url}/hooks/telegram/{channel_id}",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET},
        )
        assert hooked.status_code == 200, hooked.text
        anna = login(server, "anna")
        deadline = time.monotonic() + 15
        dialogs: list[dict[str, Any]] = []
        while not dialogs and time.monotonic() < deadline:
            got = httpx.get(f"{server.url}/api/v1/conversations?status=open", headers=anna)
            dialogs = got.json()["conversations"]
            time.sleep(0.1)
        assert dialogs, server.log_tail()
        conversation_id = dialogs[0]["id"]
        # Telegram takes the call and does not answer while okno is killed.
        fake.fail_next("/sendMessage", Reply(200, {"ok": True, "result": {}}, delay=8.0))
        assert httpx.post(
            f"{server.url}/api/v1/conversations/{conversation_id}/assign", json={}, headers=anna
        ).status_code == 200
        posted = httpx.post(
            f"{server.url}/api/v1/conversations/{conversation_id}/messages",
            json={"client_msg_id": cmid(), "text": "Карта уже в отделении."},
            headers=anna,
        )
        assert posted.status_code == 201, posted.text
        fake.wait_for("/sendMessage")  # the send is in flight ...
        server.kill9()  # ... and okno dies
        server.start()
        fake.wait_for("/sendMessage", 2, within=40)
        time.sleep(1.0)  # room for a wrong second delivery to show up
        assert [s["text"] for s in fake.sent] == ["Карта уже в отделении."]
        root = login(server, "root")
        messages = httpx.get(
            f"{server.url}/api/v1/conversations/{conversation_id}/messages", headers=root
        ).json()["messages"]
        assert [m["text"] for m in messages] == ["Когда придёт карта?", "Карта уже в отделении."]
        assert messages[-1]["delivery"] == "sent"
        # Telegram does not drop repeats: the admin is told a resend happened
        errors = httpx.get(f"{server.url}/api/v1/channels/{channel_id}/errors", headers=root)
        assert "sent again after an interrupted try" in errors.json()["errors"][0]["message"]
        server.stop()
    finally:
        fake.stop()
