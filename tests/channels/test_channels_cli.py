"""`okno channels add <messenger>`, `list`, `check` and `set-webhook`, as real processes,
against the fake Bot API; and the errors a bank's administrator gets for bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels.fakes.telegram import TOKEN, FakeTelegram
from tests.system.server import okno_env, run_cli
from tests.system.test_cli import assert_clean_failure

pytestmark = pytest.mark.slow


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    platform = FakeTelegram().start()
    yield platform
    platform.stop()


def test_add_list_check_and_register_a_telegram_channel(tmp_path: Path, fake: FakeTelegram) -> None:
    env = okno_env(tmp_path / "data")
    added = json.loads(
        run_cli(
            [
                "channels",
                "add",
                "telegram",
                "--bot-token",
                TOKEN,
                "--webhook-secret",
                "s3cret-token",
                "--api-base",
                fake.url,
                "--name",
                "Банк в Telegram",
                "--json",
            ],
            env,
        ).stdout
    )
    assert added == {
        "id": added["id"],
        "kind": "telegram",
        "name": "Банк в Telegram",
        "webhook_path": f"/hooks/telegram/{added['id']}",
    }
    listed = json.loads(run_cli(["channels", "list", "--json"], env).stdout)
    assert [(c["kind"], c["webhook_path"]) for c in listed] == [
        ("telegram", f"/hooks/telegram/{added['id']}")
    ]
    assert TOKEN not in run_cli(["channels", "list"], env).stdout
    checked = run_cli(["channels", "check", str(added["id"])], env)
    assert "@okno_bank_bot" in checked.stdout
    run_cli(
        ["channels", "set-webhook", str(added["id"]), "--url", "https://okno.bank.example"], env
    )
    assert fake.webhook == {
        "url": f"https://okno.bank.example/hooks/telegram/{added['id']}",
        "secret_token": "s3cret-token",
        "allowed_updates": ["message", "callback_query"],
    }
    # the token in the database is encrypted
    db = (tmp_path / "data" / "okno.db").read_bytes()
    assert TOKEN.encode() not in db and b"s3cret-token" not in db


def test_bad_channel_input_is_a_clear_error(tmp_path: Path, fake: FakeTelegram) -> None:
    env = okno_env(tmp_path / "data")
    missing = run_cli(["channels", "add", "telegram", "--webhook-secret", "x"], env, check=False)
    assert_clean_failure(missing, "bot_token")
    no_secret = run_cli(["channels", "add", "telegram", "--bot-token", "1:x"], env, check=False)
    assert_clean_failure(no_secret, "webhook_secret")
    bad_mode = run_cli(
        ["channels", "add", "telegram", "--bot-token", "1:x", "--mode", "carrier-pigeon"],
        env,
        check=False,
    )
    assert_clean_failure(bad_mode, "mode")
    bad_base = run_cli(
        [
            "channels",
            "add",
            "telegram",
            "--bot-token",
            "1:x",
            "--mode",
            "polling",
            "--api-base",
            "ftp://x",
        ],
        env,
        check=False,
    )
    assert_clean_failure(bad_base, "api_base")
    wrong_token = json.loads(
        run_cli(
            [
                "channels",
                "add",
                "telegram",
                "--bot-token",
                "999:wrong",
                "--mode",
                "polling",
                "--api-base",
                fake.url,
                "--json",
            ],
            env,
        ).stdout
    )
    failed = run_cli(["channels", "check", str(wrong_token["id"])], env, check=False)
    assert_clean_failure(failed, "401")
    assert_clean_failure(run_cli(["channels", "check", "77"], env, check=False), "77")
    http = run_cli(
        ["channels", "set-webhook", str(wrong_token["id"]), "--url", "http://plain"],
        env,
        check=False,
    )
    assert_clean_failure(http, "https")
