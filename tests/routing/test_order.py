"""Who is served first when one place frees: the queue's priority (fraud before cards), a
VIP before others of the same queue, then the nearest first-response deadline."""

from __future__ import annotations

from okno.db.session import Database
from tests.builders import Staff
from tests.routing.kit import (
    add_channel,
    arrive,
    assignee,
    clock,
    close,
    dispatch,
    later,
    make_queue,
    operator,
)


async def test_a_later_fraud_dialog_is_served_before_an_earlier_cards_dialog(
    db: Database, staff: Staff
) -> None:
    await make_queue(db, name="Карты", topic="cards", priority=0)
    await make_queue(db, name="Мошенничество", topic="fraud", priority=100)
    busy = await arrive(db, staff.widget_id, "first", topic="cards")
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=1)
    assert [d.conversation_id for d in await dispatch(db, start)] == [busy]

    cards = await arrive(db, staff.widget_id, "cards-customer", topic="cards")
    fraud = await arrive(db, staff.widget_id, "fraud-customer", topic="fraud")
    assert await dispatch(db, later(start, 5)) == []  # anna is full: both wait

    await close(db, busy)
    decisions = await dispatch(db, later(start, 10))
    assert [d.conversation_id for d in decisions] == [fraud]
    assert await assignee(db, fraud) == staff["anna"]
    assert await assignee(db, cards) is None


async def test_a_vip_customer_goes_before_others_of_the_same_queue(
    db: Database, staff: Staff
) -> None:
    await make_queue(db, name="Карты", topic="cards")
    regular = await arrive(db, staff.widget_id, "regular", topic="cards")
    vip = await arrive(db, staff.widget_id, "vip", topic="cards", tags=["VIP"])
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=1)

    decisions = await dispatch(db, start)
    assert [d.conversation_id for d in decisions] == [vip]
    assert await assignee(db, regular) is None


async def test_the_nearest_first_response_deadline_goes_first(db: Database, staff: Staff) -> None:
    """An e-mail-like entry point (4 h target) and the chat (30 s): the chat customer who
    wrote later is still answered first; the e-mail keeps its place after it."""
    mail = await add_channel(db, "mail", first_response_seconds=4 * 3600)
    letter = await arrive(db, mail, "writes-letters")
    chat = await arrive(db, staff.widget_id, "chats")
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=1)

    assert [d.conversation_id for d in await dispatch(db, start)] == [chat]
    assert await assignee(db, letter) is None

    await close(db, chat)
    assert [d.conversation_id for d in await dispatch(db, later(start, 5))] == [letter]
