"""Shared set-up for messenger contract tests: the app with its worker, a channel pointed at
a local fake of the platform, and helpers to post webhooks and read what staff see."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.conversations.models import Message
from okno.settings import Settings
from tests.builders import bearer, in_db, signed_in


def add_channel(settings: Settings, kind: str, name: str | None = None, **values: Any) -> int:
    async def add(session: AsyncSession) -> int:
        channel = await channels.add_messenger(
            session, kind=kind, values=values, signing_key=settings.signing_key(), name=name
        )
        return channel.id

    return in_db(settings, add)


def message_count(settings: Settings) -> int:
    async def count(session: AsyncSession) -> int:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)

    return in_db(settings, count)


def eventually(check: Callable[[], Any], within: float = 15.0, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy (the worker runs in the app)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {within} s: {what}")


def conversations(
    client: TestClient, login: str = "anna", status: str = "open"
) -> list[dict[str, Any]]:
    token = signed_in(client, login)
    response = client.get(f"/api/v1/conversations?status={status}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["conversations"])


def staff_messages(client: TestClient, conversation_id: int, login: str = "root") -> list[dict]:
    token = signed_in(client, login)
    response = client.get(
        f"/api/v1/conversations/{conversation_id}/messages", headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])
