"""The threshold trade-off replayed over recorded bot turns: shares add up, more is
answered at a lower threshold, turns the threshold does not decide are left out, and the
setting in force is marked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.bot.models import BotTurn
from okno.db.base import utcnow
from okno.settings import Settings
from tests.builders import Staff, bearer, in_db, staff_token

DECIDED = [0.0, 0.12, 0.28, 0.31, 0.5, 0.72, 0.97]


@pytest.fixture
def turns(settings: Settings, staff: Staff) -> None:
    async def run(session: AsyncSession) -> None:
        for conf in DECIDED:
            decision = "answer" if conf >= 0.3 else "handoff"
            reason = "empty" if conf == 0.0 else "confident" if conf >= 0.3 else "unsure"
            session.add(
                BotTurn(text="q", decision=decision, reason=reason, confidence=conf, at=utcnow())
            )
        for reason, decision in [
            ("picked", "answer"),
            ("human_requested", "handoff"),
            ("own_case", "handoff"),
            ("attachment", "handoff"),
        ]:
            session.add(
                BotTurn(text="q", decision=decision, reason=reason, confidence=1.0, at=utcnow())
            )
        session.add(BotTurn(text="q", decision="flow", reason="confident", confidence=0.9))

    in_db(settings, run)


def app_with(settings: Settings, threshold: float) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"bot_answer_threshold": threshold})))


@pytest.fixture
def on_grid(settings: Settings, staff: Staff, turns: None) -> Iterator[TestClient]:
    with app_with(settings, 0.3) as client:
        yield client


@pytest.fixture
def strict(settings: Settings, staff: Staff, turns: None) -> Iterator[TestClient]:
    with app_with(settings, 0.33) as client:
        yield client


def test_shares_add_up_and_move_the_right_way(on_grid: TestClient) -> None:
    client = on_grid
    body = client.get("/api/v1/bot/threshold", headers=bearer(staff_token(client, "sveta")))
    assert body.status_code == 200, body.text
    data = body.json()
    assert (data["threshold"], data["setting"], data["questions"]) == (
        0.3,
        "OKNO_BOT_ANSWER_THRESHOLD",
        len(DECIDED),
    )
    rows = data["rows"]
    assert [r["threshold"] for r in rows] == [round(0.05 * i, 2) for i in range(1, 20)]
    for r in rows:
        assert r["answered"] + r["handed_off"] == len(DECIDED)
        assert r["answer_share"] + r["handoff_share"] == pytest.approx(1.0)
    answered = [r["answered"] for r in rows]
    assert answered == sorted(answered, reverse=True)
    by_t = {r["threshold"]: r for r in rows}
    assert (by_t[0.05]["answered"], by_t[0.3]["answered"], by_t[0.95]["answered"]) == (6, 4, 1)
    assert [r["threshold"] for r in rows if r["current"]] == [0.3]


def test_a_setting_off_the_grid_gets_its_own_marked_row(strict: TestClient) -> None:
    data = strict.get("/api/v1/bot/threshold", headers=bearer(staff_token(strict, "root"))).json()
    current = [r for r in data["rows"] if r["current"]]
    assert [(r["threshold"], r["answered"]) for r in current] == [(0.33, 3)]
    assert len(data["rows"]) == 20


def test_operators_may_not_see_the_trade_off(client: TestClient) -> None:
    anna = staff_token(client, "anna")
    assert client.get("/api/v1/bot/threshold", headers=bearer(anna)).status_code == 403
