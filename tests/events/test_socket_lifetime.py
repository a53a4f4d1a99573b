"""A staff socket ends when the account is disabled or its credential runs out."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from okno.app import create_app
from okno.db.session import Database
from okno.operators import presence
from okno.operators.models import User
from okno.security import tokens
from okno.settings import Settings
from tests import services
from tests.builders import Staff, staff_token


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(presence, "HEARTBEAT_SECONDS", 0.2)


def test_disabling_an_account_closes_its_open_socket(
    settings: Settings, staff: Staff, fast_heartbeat: None
) -> None:
    with TestClient(create_app(settings)) as client:
        token = staff_token(client, "anna")
        with client.websocket_connect(f"/api/v1/ws?token={token}") as ws:
            assert ws.receive_json()["type"] == "stream.ready"

            async def disable() -> None:
                db = Database(settings)
                async with db.transaction() as session:
                    await session.execute(
                        update(User).where(User.id == staff["anna"]).values(is_active=False)
                    )
                await db.dispose()

            services.run_in_thread(disable)
            event = ws.receive_json()
        assert event["type"] == "stream.error"
        assert event["payload"]["code"] == "account_disabled"


def test_socket_ends_when_its_token_expires(
    settings: Settings, staff: Staff, fast_heartbeat: None
) -> None:
    short = tokens.issue(
        settings.signing_key(),
        typ=tokens.STAFF,
        subject=str(staff["anna"]),
        ttl=timedelta(seconds=3),
    )
    with (
        TestClient(create_app(settings)) as client,
        client.websocket_connect(f"/api/v1/ws?token={short}") as ws,
    ):
        assert ws.receive_json()["type"] == "stream.ready"
        started = time.monotonic()
        event = ws.receive_json()
    assert event["payload"]["code"] == "token_expired"
    assert time.monotonic() - started < 15


def test_binary_frames_are_ignored(client: TestClient) -> None:
    token = staff_token(client, "anna")
    with client.websocket_connect(f"/api/v1/ws?token={token}") as ws:
        assert ws.receive_json()["type"] == "stream.ready"
        ws.send_bytes(b"\x00\x01")
        ws.send_text("ping")
        assert ws.receive_json() == {"type": "pong"}
