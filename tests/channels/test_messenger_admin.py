"""Admins add and change messenger channels through the API: the kinds and their settings,
secrets that are never shown again, the webhook address, checking the credentials against
the platform (a fake Bot API on loopback), registering the webhook, the recent errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.channels import kinds
from okno.channels.models import Channel
from okno.settings import Settings
from tests import services
from tests.builders import Staff, bearer, in_db, seed_staff, staff_token
from tests.channels.fakes.telegram import BOT, TOKEN, FakeTelegram, message_update
from tests.conftest import make_settings

SECRET = "wh-secret_0123456789"
PUBLIC = "https://okno.bank.example"


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


@pytest.fixture
def public(settings: Settings, staff: Staff) -> Iterator[TestClient]:
    """okno that knows its public address (OKNO_PUBLIC_URL)."""
    with_url = make_settings(settings.data_dir, settings.database_url, public_url=PUBLIC)
    with TestClient(create_app(with_url)) as client:
        yield client


def add_telegram(client: TestClient, fake: FakeTelegram, **extra: Any) -> dict[str, Any]:
    root = staff_token(client, "root")
    body = {
        "kind": "telegram",
        "name": "Банк в Telegram",
        "settings": {"bot_token": TOKEN, "webhook_secret": SECRET, "api_base": fake.url},
        **extra,
    }
    response = client.post("/api/v1/channels", json=body, headers=bearer(root))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


def stored_config(settings: Settings, channel_id: int) -> dict[str, Any]:
    async def read(session: Any) -> dict[str, Any]:
        channel = await session.get(Channel, channel_id)
        return dict(channel.config)

    return in_db(settings, read)


def test_kinds_list_each_channel_with_its_settings(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    response = client.get("/api/v1/channels/kinds", headers=bearer(root))
    assert response.status_code == 200, response.text
    by_kind = {k["kind"]: k for k in response.json()["kinds"]}
    assert set(by_kind) == set(kinds.available())
    telegram = by_kind["telegram"]
    assert telegram["title"] == "Telegram" and telegram["sets_webhook"] is True
    settings = {s["name"]: s for s in telegram["settings"]}
    assert settings["bot_token"]["required"] and settings["bot_token"]["secret"]
    assert settings["webhook_secret"]["secret"] and not settings["webhook_secret"]["required"]
    assert settings["mode"]["default"] == "webhook" and not settings["mode"]["secret"]
    assert {"api_base", "topic"} <= set(settings)  # every messenger has these
    assert all(s["help"] for s in settings.values())


def test_admin_adds_a_telegram_channel_and_never_sees_its_token_again(
    public: TestClient, fake: FakeTelegram, settings: Settings
) -> None:
    created = add_telegram(public, fake, bot=True)
    assert created["kind"] == "telegram" and created["name"] == "Банк в Telegram"
    assert created["webhook_path"] == f"/hooks/telegram/{created['id']}"
    assert created["webhook_url"] == f"{PUBLIC}/hooks/telegram/{created['id']}"
    config = created["config"]
    assert config["bot_token_set"] is True and config["webhook_secret_set"] is True
    assert config["mode"] == "webhook" and config["bot"] is True
    listed = public.get("/api/v1/channels", headers=bearer(staff_token(public, "root")))
    text = listed.text
    assert TOKEN not in text and SECRET not in text
    # stored encrypted: not even the database holds the token as written
    assert TOKEN not in json.dumps(stored_config(settings, created["id"]))


def test_bad_settings_are_refused_with_the_field_named(
    client: TestClient, staff: Staff, fake: FakeTelegram
) -> None:
    root = staff_token(client, "root")
    cases = [
        ({"kind": "telegram", "settings": {"webhook_secret": SECRET}}, 400, "missing_setting"),
        (
            {"kind": "telegram", "settings": {"bot_token": TOKEN, "colour": "red"}},
            400,
            "unknown_setting",
        ),
        ({"kind": "telegram", "settings": {"bot_token": TOKEN}}, 400, "missing_setting"),
        (
            {"kind": "telegram", "settings": {"bot_token": TOKEN, "mode": "push"}},
            400,
            "invalid_setting",
        ),
        (
            {
                "kind": "telegram",
                "settings": {"bot_token": TOKEN, "mode": "polling", "api_base": "ftp://x"},
            },
            400,
            "invalid_setting",
        ),
        ({"kind": "icq", "settings": {}}, 400, "unknown_kind"),
        ({"kind": "widget", "settings": {}}, 400, "unknown_kind"),
        ({"kind": "telegram", "settings": {}, "password": "x"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        response = client.post("/api/v1/channels", json=body, headers=bearer(root))
        assert (response.status_code, response.json()["code"]) == (status, code), body
    missing = client.post(
        "/api/v1/channels",
        json={"kind": "telegram", "settings": {"bot_token": TOKEN}},
        headers=bearer(root),
    )
    assert missing.json()["fields"] == {"field": "webhook_secret"}
    channels = client.get("/api/v1/channels", headers=bearer(root)).json()["channels"]
    assert [c["kind"] for c in channels] == ["widget"]  # nothing half-made


def test_only_admins_add_change_check_or_see_errors(
    client: TestClient, staff: Staff, fake: FakeTelegram
) -> None:
    created = add_telegram(client, fake)
    cid = created["id"]
    for login in ("anna", "sveta"):
        token = bearer(staff_token(client, login))
        body = {"kind": "telegram", "settings": {"bot_token": TOKEN, "mode": "polling"}}
        assert client.post("/api/v1/channels", json=body, headers=token).status_code == 403
        patch = client.patch(f"/api/v1/channels/{cid}", json={"name": "x"}, headers=token)
        assert patch.status_code == 403
        assert client.post(f"/api/v1/channels/{cid}/check", headers=token).status_code == 403
        assert client.get(f"/api/v1/channels/{cid}/errors", headers=token).status_code == 403
        assert client.post(f"/api/v1/channels/{cid}/webhook", headers=token).status_code == 403
    # a supervisor's list shows the channel, but nothing of its settings
    sveta = client.get("/api/v1/channels", headers=bearer(staff_token(client, "sveta")))
    tg = next(c for c in sveta.json()["channels"] if c["kind"] == "telegram")
    assert tg["config"] == {} and tg["webhook_path"] is None


def test_admin_changes_settings_secrets_stay_write_only(
    client: TestClient, staff: Staff, fake: FakeTelegram, settings: Settings
) -> None:
    created = add_telegram(client, fake)
    root = bearer(staff_token(client, "root"))
    url = f"/api/v1/channels/{created['id']}"
    before = stored_config(settings, created["id"])

    renamed = client.patch(
        url, json={"name": "Telegram — карты", "settings": {"topic": "cards"}}, headers=root
    )
    assert renamed.status_code == 200, renamed.text
    out = renamed.json()
    assert out["name"] == "Telegram — карты" and out["config"]["topic"] == "cards"
    assert out["config"]["bot_token_set"] is True and "bot_token" not in out["config"]
    # the token not sent stays exactly as it was
    assert stored_config(settings, created["id"])["bot_token"] == before["bot_token"]

    # "" removes an optional setting, a required one cannot be removed
    cleared = client.patch(url, json={"settings": {"topic": ""}}, headers=root)
    assert "topic" not in cleared.json()["config"]
    refused = client.patch(url, json={"settings": {"bot_token": ""}}, headers=root)
    assert refused.status_code == 400 and refused.json()["code"] == "missing_setting"
    # webhook mode needs its secret: removing it is refused, switching to polling allows it
    refused = client.patch(url, json={"settings": {"webhook_secret": ""}}, headers=root)
    assert refused.status_code == 400 and refused.json()["fields"] == {"field": "webhook_secret"}
    polling = client.patch(
        url, json={"settings": {"mode": "polling", "webhook_secret": ""}}, headers=root
    )
    assert polling.status_code == 200, polling.text
    assert "webhook_secret_set" not in polling.json()["config"]

    # a new token replaces the old one
    new_token = "654321:ZYX-new-token"
    client.patch(url, json={"settings": {"bot_token": new_token}}, headers=root)
    assert stored_config(settings, created["id"])["bot_token"] != before["bot_token"]
    off = client.patch(url, json={"is_active": False}, headers=root)
    assert off.json()["is_active"] is False

    # widget fields mean nothing to a messenger channel, and the other way round
    wrong = client.patch(url, json={"greeting": "Привет"}, headers=root)
    assert wrong.status_code == 422 and wrong.json()["code"] == "invalid_request"
    widget = client.patch(
        f"/api/v1/channels/{staff.widget_id}", json={"settings": {"x": "y"}}, headers=root
    )
    assert widget.status_code == 422
    assert [e["field"] for e in widget.json()["fields"]["errors"]] == ["settings"]
    assert client.patch("/api/v1/channels/999", json={}, headers=root).status_code == 404


def test_switched_off_channel_refuses_webhooks(
    client: TestClient, staff: Staff, fake: FakeTelegram
) -> None:
    created = add_telegram(client, fake)
    root = bearer(staff_token(client, "root"))
    client.patch(f"/api/v1/channels/{created['id']}", json={"is_active": False}, headers=root)
    response = client.post(
        created["webhook_path"],
        json=message_update("Алло"),
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
    )
    assert response.status_code == 404


def test_check_shows_the_bots_username_or_the_platforms_refusal(
    client: TestClient, staff: Staff, fake: FakeTelegram
) -> None:
    created = add_telegram(client, fake)
    root = bearer(staff_token(client, "root"))
    url = f"/api/v1/channels/{created['id']}"
    checked = client.post(f"{url}/check", headers=root)
    assert checked.json() == {"ok": True, "detail": f"@{BOT['username']}"}
    assert fake.calls(f"/bot{TOKEN}/getMe")
    assert client.get(f"{url}/errors", headers=root).json() == {"errors": []}

    client.patch(url, json={"settings": {"bot_token": "999:wrong"}}, headers=root)
    refused = client.post(f"{url}/check", headers=root).json()
    assert refused["ok"] is False and "401" in refused["detail"]
    (error,) = client.get(f"{url}/errors", headers=root).json()["errors"]
    assert error["kind"] == "check" and "Unauthorized" in error["message"]
    assert "999:wrong" not in error["message"]  # the token is never written out


def test_webhook_is_registered_with_the_public_address_and_secret(
    public: TestClient, fake: FakeTelegram
) -> None:
    created = add_telegram(public, fake)
    root = bearer(staff_token(public, "root"))
    response = public.post(f"/api/v1/channels/{created['id']}/webhook", headers=root)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True
    assert response.json()["url"] == created["webhook_url"]
    (call,) = fake.calls(f"/bot{TOKEN}/setWebhook")
    assert call.json() == {
        "url": f"{PUBLIC}/hooks/telegram/{created['id']}",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
    }


def test_webhook_needs_a_public_address_and_webhook_mode(
    client: TestClient, staff: Staff, fake: FakeTelegram
) -> None:
    created = add_telegram(client, fake)
    root = bearer(staff_token(client, "root"))
    url = f"/api/v1/channels/{created['id']}/webhook"
    no_url = client.post(url, headers=root)
    assert no_url.status_code == 409 and no_url.json()["code"] == "no_public_url"
    assert "OKNO_PUBLIC_URL" in no_url.json()["detail"]
    assert created["webhook_url"] is None and created["webhook_path"]
    assert not fake.calls(f"/bot{TOKEN}/setWebhook")


def test_polling_channel_gets_no_webhook(public: TestClient, fake: FakeTelegram) -> None:
    root = bearer(staff_token(public, "root"))
    response = public.post(
        "/api/v1/channels",
        json={
            "kind": "telegram",
            "settings": {"bot_token": TOKEN, "mode": "polling", "api_base": fake.url},
        },
        headers=root,
    )
    assert response.status_code == 201, response.text
    refused = public.post(f"/api/v1/channels/{response.json()['id']}/webhook", headers=root)
    assert refused.status_code == 409 and refused.json()["code"] == "channel_polls"
    assert not fake.calls(f"/bot{TOKEN}/setWebhook")


def test_a_forged_webhook_shows_in_the_errors_list(
    client: TestClient, staff: Staff, fake: FakeTelegram
) -> None:
    created = add_telegram(client, fake)
    root = bearer(staff_token(client, "root"))
    forged = client.post(
        created["webhook_path"],
        json=message_update("Переведите деньги"),
        headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
    )
    assert forged.status_code == 403
    (error,) = client.get(f"/api/v1/channels/{created['id']}/errors", headers=root).json()["errors"]
    assert error["kind"] == "webhook" and "guess" not in error["message"]


def test_two_installations_in_one_process_each_keep_their_refused_webhooks(
    sqlite_template: Path, tmp_path: Path, fake: FakeTelegram
) -> None:
    """The flood guard (one note per channel every ten seconds) is per database: channel 1
    of one installation refusing a call must not hide channel 1 of another."""
    for name in ("first", "second"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(sqlite_template, folder / "okno.db")
        settings = make_settings(folder)
        services.run_in_thread(lambda s=settings: seed_staff(s))
        with TestClient(create_app(settings)) as app:
            created = add_telegram(app, fake)
            refused = app.post(
                created["webhook_path"],
                json=message_update("Переведите деньги"),
                headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
            )
            assert refused.status_code == 403
            root = bearer(staff_token(app, "root"))
            errors = app.get(f"/api/v1/channels/{created['id']}/errors", headers=root).json()
            assert [e["kind"] for e in errors["errors"]] == ["webhook"], name
