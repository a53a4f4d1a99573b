"""Builders and personas shared by the tests (one module, as in helpdesk's test_utils)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.channels import service as channels
from okno.conversations import inbound
from okno.conversations.models import Message
from okno.db.session import Database
from okno.operators import service as operators
from okno.operators.models import User
from okno.security.passwords import hash_password
from okno.settings import Settings
from tests import services

T = TypeVar("T")
PASSWORD = "correct-horse-1"
WIDGET_KEY = "acme"
PERSONAS = [
    # login, role, team, name
    ("anna", "operator", "Поддержка", "Анна"),
    ("igor", "operator", "Поддержка", "Игорь"),
    ("olga", "operator", "Кредиты", "Ольга"),
    ("sveta", "supervisor", None, "Светлана"),
    ("root", "admin", None, "Админ"),
]


@dataclass
class Staff:
    ids: dict[str, int] = field(default_factory=dict)
    teams: dict[str, int] = field(default_factory=dict)
    widget_id: int = 0

    def __getitem__(self, login: str) -> int:
        return self.ids[login]


_HASH: list[str] = []


def password_hash() -> str:
    """One argon2 hash of PASSWORD per test run (hashing costs ~0.1 s each)."""
    if not _HASH:
        _HASH.append(hash_password(PASSWORD))
    return _HASH[0]


async def seed_staff(settings: Settings) -> Staff:
    db = Database(settings)
    staff = Staff()
    try:
        async with db.transaction() as session:
            for login, role, team, name in PERSONAS:
                user = await operators.create_user(
                    session,
                    login=login,
                    password=PASSWORD,
                    role=role,
                    team=team,
                    display_name=name,
                    password_hash=password_hash(),
                )
                staff.ids[login] = user.id
                if team and user.team_id:
                    staff.teams[team] = user.team_id
            widget = await channels.add_widget(session, key=WIDGET_KEY, name="Acme Bank")
            staff.widget_id = widget.id
    finally:
        await db.dispose()
    return staff


def in_db(settings: Settings, fn: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``fn`` in one transaction on the test database, from a synchronous test."""

    async def run() -> T:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                return await fn(session)
        finally:
            await db.dispose()

    result: T = services.run_in_thread(run)
    return result


def cmid() -> str:
    return uuid.uuid4().hex


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def staff_token(client: TestClient, login: str) -> str:
    response = client.post("/api/v1/auth/token", json={"login": login, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def signed_in(client: TestClient, login: str) -> str:
    """One token per app and login: helpers polled while a test waits would otherwise sign
    in many times a second and meet the sign-in rate limit."""
    tokens: dict[str, str] = client.__dict__.setdefault("_okno_tokens", {})
    if login not in tokens:
        tokens[login] = staff_token(client, login)
    return tokens[login]


def widget_session(client: TestClient, visitor: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"widget_key": WIDGET_KEY}
    if visitor is not None:
        body["visitor"] = visitor
    response = client.post("/api/v1/widget/sessions", json=body)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def customer_says(
    client: TestClient, token: str, text: str, msg_id: str | None = None
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": msg_id or cmid(), "text": text},
        headers=bearer(token),
    )
    assert response.status_code in (200, 201), response.text
    data: dict[str, Any] = response.json()["message"]
    return data


async def make_message(
    session: AsyncSession,
    *,
    channel_id: int,
    visitor: str = "visitor-1",
    text: str = "Здравствуйте",
) -> Message:
    channel = await channels.get_channel(session, channel_id)
    assert channel is not None
    message, _ = await inbound.receive(
        session,
        inbound.Inbound(
            channel=channel, external_customer_id=visitor, text=text, client_msg_id=cmid()
        ),
    )
    return message


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    assert user is not None
    return user
