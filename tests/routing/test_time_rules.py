"""Rules that depend on the clock: overflow to a second team after a wait, the grace period
of an operator who left, business hours and holidays."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from okno.db.session import Database
from tests.builders import Staff
from tests.routing.kit import (
    arrive,
    arrived_at,
    assignee,
    assignments,
    clock,
    close,
    dialog,
    dispatch,
    later,
    make_queue,
    messages,
    operator,
    requeue,
    seen,
)

GRACE = 120
MOSCOW = ZoneInfo("Europe/Moscow")


# ------------------------------------------------------------------ overflow


async def test_a_second_team_takes_a_queue_only_after_the_overflow_threshold(
    db: Database, staff: Staff
) -> None:
    support, credits = staff.teams["Поддержка"], staff.teams["Кредиты"]
    await make_queue(
        db,
        name="Карты",
        topic="cards",
        team_id=support,
        overflow_team_id=credits,
        overflow_after_seconds=60,
    )
    start = clock()
    everyone = (staff["anna"], staff["igor"], staff["olga"])
    for user_id in everyone:
        await operator(db, user_id, now=start, capacity=1)
    first = [await arrive(db, staff.widget_id, f"v{i}", topic="cards") for i in range(2)]
    await dispatch(db, start)
    assert {await assignee(db, c) for c in first} == {staff["anna"], staff["igor"]}

    third = await arrive(db, staff.widget_id, "v3", topic="cards")
    arrived = await arrived_at(db, third)
    at_30 = later(arrived, 30)
    await seen(db, at_30, *everyone)
    assert await dispatch(db, at_30) == []  # team A is full, B may not take it yet
    assert await assignee(db, third) is None

    at_61 = later(arrived, 61)
    await seen(db, at_61, *everyone)
    (decision,) = await dispatch(db, at_61)
    assert decision.conversation_id == third
    assert await assignee(db, third) == staff["olga"]
    assert decision.rule.startswith("overflow:")
    (logged,) = [a for a in await assignments(db, third) if a.kind == "auto"]
    assert logged.rule.startswith("overflow:") and logged.user_id == staff["olga"]


async def test_a_dialog_returned_by_an_overflow_operator_goes_back_to_its_own_team(
    db: Database, staff: Staff
) -> None:
    """olga (team B) got a cards dialog by overflow and left; once anna (team A, the
    queue's team) has room again, she gets it: it is not stuck with team B."""
    support, credits = staff.teams["Поддержка"], staff.teams["Кредиты"]
    await make_queue(
        db,
        name="Карты",
        topic="cards",
        team_id=support,
        overflow_team_id=credits,
        overflow_after_seconds=60,
    )
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=1)
    await operator(db, staff["olga"], now=start, capacity=1)
    busy = await arrive(db, staff.widget_id, "v1", topic="cards")
    await dispatch(db, start)
    overflowed = await arrive(db, staff.widget_id, "v2", topic="cards")
    at_61 = later(await arrived_at(db, overflowed), 61)
    await seen(db, at_61, staff["anna"], staff["olga"])
    await dispatch(db, at_61)
    assert await assignee(db, overflowed) == staff["olga"]

    await operator(db, staff["olga"], now=at_61, status="break", capacity=1)
    gone = later(at_61, GRACE + 1)
    assert await requeue(db, grace_seconds=GRACE, now=gone) == [overflowed]
    await close(db, busy)
    await seen(db, gone, staff["anna"])
    await dispatch(db, gone)
    assert await assignee(db, overflowed) == staff["anna"]


# ------------------------------------------------------------------ grace period


async def test_dialogs_of_an_operator_on_a_long_break_go_back_to_the_front_of_the_queue(
    db: Database, staff: Staff
) -> None:
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=2)
    mine = [await arrive(db, staff.widget_id, f"served-{i}") for i in range(2)]
    await dispatch(db, start)
    assert {await assignee(db, c) for c in mine} == {staff["anna"]}
    # a VIP customer is already waiting (anna is full): still behind the returned dialogs
    vip = await arrive(db, staff.widget_id, "vip", tags=["vip"])
    await dispatch(db, later(start, 1))
    assert await assignee(db, vip) is None

    went = later(start, 10)
    await operator(db, staff["anna"], now=went, status="break", capacity=2)
    assert await requeue(db, grace_seconds=GRACE, now=later(went, GRACE - 5)) == []
    assert {await assignee(db, c) for c in mine} == {staff["anna"]}

    back = await requeue(db, grace_seconds=GRACE, now=later(went, GRACE + 1))
    assert sorted(back) == sorted(mine)
    for c in mine:
        returned = await dialog(db, c)
        assert returned.status == "waiting" and returned.assignee_id is None
        note = (await messages(db, c))[-1]
        assert note.author_kind == "system" and note.internal  # staff only
    assert all(m.author_kind != "system" for m in await messages(db, vip))

    # igor comes online with room for two: he gets the returned dialogs, not the VIP
    free_at = later(went, GRACE + 2)
    await operator(db, staff["igor"], now=free_at, capacity=2)
    decisions = await dispatch(db, free_at)
    assert sorted(d.conversation_id for d in decisions) == sorted(mine)
    assert {await assignee(db, c) for c in mine} == {staff["igor"]}
    assert await assignee(db, vip) is None


async def test_dialogs_of_a_disconnected_operator_return_after_the_grace_period(
    db: Database, staff: Staff
) -> None:
    start = clock()
    await operator(db, staff["anna"], now=start)
    served = await arrive(db, staff.widget_id, "served")
    await dispatch(db, start)
    assert await assignee(db, served) == staff["anna"]

    # still "online", but her workspace was last seen at ``start`` (laptop closed)
    within = later(start, GRACE)
    assert await requeue(db, grace_seconds=GRACE, now=within) == []
    assert await assignee(db, served) == staff["anna"]

    gone = later(start, GRACE + 61)
    assert await requeue(db, grace_seconds=GRACE, now=gone) == [served]
    returned = await dialog(db, served)
    assert returned.status == "waiting" and returned.assignee_id is None
    assert [a.kind for a in await assignments(db, served)] == ["auto", "requeue"]


async def test_a_dialog_of_a_queue_without_a_team_is_open_to_every_team_again_when_returned(
    db: Database, staff: Staff
) -> None:
    await make_queue(db, name="Общие вопросы", is_default=True)  # no team: anybody
    start = clock()
    await operator(db, staff["anna"], now=start)  # team Поддержка
    served = await arrive(db, staff.widget_id, "anyone")
    await dispatch(db, start)
    assert await assignee(db, served) == staff["anna"]

    # Анна leaves; only Ольга of another team is there
    gone = later(start, GRACE + 61)
    await operator(db, staff["olga"], now=gone)
    assert await requeue(db, grace_seconds=GRACE, now=gone) == [served]
    await dispatch(db, gone)
    assert await assignee(db, served) == staff["olga"]


async def test_a_connected_online_operator_keeps_their_dialogs(db: Database, staff: Staff) -> None:
    start = clock()
    await operator(db, staff["anna"], now=start)
    served = await arrive(db, staff.widget_id, "served")
    await dispatch(db, start)
    much_later = later(start, 10 * GRACE)
    await seen(db, much_later, staff["anna"])

    assert await requeue(db, grace_seconds=GRACE, now=much_later) == []
    assert await assignee(db, served) == staff["anna"]


# ------------------------------------------------------------------ business hours

HOURS = {
    "timezone": "Europe/Moscow",
    "weekly": {day: ["09:00-18:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2027-01-01"],
}


def moscow(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=MOSCOW).astimezone(UTC)


def customer_visible_system_texts(texts: list[tuple[str, bool, str]]) -> list[str]:
    return [text for kind, internal, text in texts if kind == "system" and not internal]


async def test_out_of_hours_the_customer_learns_when_and_the_dialog_waits_until_opening(
    db: Database, staff: Staff
) -> None:
    await make_queue(
        db,
        name="Общая",
        is_default=True,
        hours=HOURS,
        out_of_hours_message="Мы работаем по будням с 9 до 18.",
    )
    evening = moscow(2026, 12, 2, 20, 30)  # a Wednesday, after hours
    await operator(db, staff["anna"], now=evening)
    waiting = await arrive(db, staff.widget_id, "late-customer")

    assert await dispatch(db, evening) == []
    await seen(db, later(evening, 30), staff["anna"])
    assert await dispatch(db, later(evening, 30)) == []  # told once, not on every pass
    assert await assignee(db, waiting) is None
    told = customer_visible_system_texts(
        [(m.author_kind, m.internal, m.text) for m in await messages(db, waiting)]
    )
    assert len(told) == 1
    assert told[0].startswith("Мы работаем по будням с 9 до 18.")
    # Thursday morning, in the queue's time zone
    assert told[0].endswith("Ответим 03.12 в 09:00 (время MSK).")

    opening = moscow(2026, 12, 3, 9, 0)
    await seen(db, opening, staff["anna"])
    (decision,) = await dispatch(db, opening)
    assert decision.conversation_id == waiting
    assert await assignee(db, waiting) == staff["anna"]


async def test_a_holiday_is_closed_even_on_a_working_weekday(db: Database, staff: Staff) -> None:
    await make_queue(db, name="Общая", is_default=True, hours=HOURS)
    new_year = moscow(2027, 1, 1, 12, 0)  # a Friday, 12:00, but a holiday
    await operator(db, staff["anna"], now=new_year)
    waiting = await arrive(db, staff.widget_id, "holiday-customer")

    assert await dispatch(db, new_year) == []
    assert await assignee(db, waiting) is None
    (told,) = customer_visible_system_texts(
        [(m.author_kind, m.internal, m.text) for m in await messages(db, waiting)]
    )
    assert "04.01 в 09:00" in told  # Monday: the weekend is closed too

    monday = moscow(2027, 1, 4, 9, 0)
    await seen(db, monday, staff["anna"])
    await dispatch(db, monday)
    assert await assignee(db, waiting) == staff["anna"]


async def test_within_hours_nobody_is_told_anything(db: Database, staff: Staff) -> None:
    await make_queue(db, name="Общая", is_default=True, hours=HOURS)
    noon = moscow(2026, 12, 2, 12, 0)
    waiting = await arrive(db, staff.widget_id, "day-customer")
    assert await dispatch(db, noon) == []  # nobody online: it just waits
    assert all(m.author_kind != "system" for m in await messages(db, waiting))
    assert (await dialog(db, waiting)).queued_at is not None
