"""Who may get a dialog at all: the queue's skill and level, room left by channel weight,
online and connected operators only (never supervisors or admins), and the entry point's
topic deciding the queue."""

from __future__ import annotations

from datetime import timedelta

from okno.db.session import Database
from tests.builders import Staff
from tests.routing.kit import (
    add_channel,
    arrive,
    assignee,
    clock,
    close,
    dialog,
    dispatch,
    later,
    loads,
    make_queue,
    operator,
    switch_off,
)


async def test_a_cards_dialog_needs_the_cards_skill_at_the_queues_level(
    db: Database, staff: Staff
) -> None:
    await make_queue(db, name="Карты", topic="cards", skill="cards", min_skill_level=2)
    start = clock()
    await operator(db, staff["anna"], now=start, skills={"cards": 1})
    first = await arrive(db, staff.widget_id, "c1", topic="cards")

    assert await dispatch(db, start) == []  # cards:1 is not enough
    assert await assignee(db, first) is None

    await operator(db, staff["igor"], now=start, skills={"cards": 3})
    await dispatch(db, later(start, 1))
    assert await assignee(db, first) == staff["igor"]


async def test_the_higher_skill_wins_a_tie(db: Database, staff: Staff) -> None:
    await make_queue(db, name="Карты", topic="cards", skill="cards", min_skill_level=2)
    start = clock()
    # anna has the lower id: without the skill tie-break she would win
    await operator(db, staff["anna"], now=start, skills={"cards": 2})
    await operator(db, staff["igor"], now=start, skills={"cards": 4})
    wanted = await arrive(db, staff.widget_id, "c1", topic="cards")

    (decision,) = await dispatch(db, start)
    assert decision.user_id == staff["igor"] == await assignee(db, wanted)
    assert [c["user_id"] for c in decision.candidates] == [staff["igor"], staff["anna"]]


async def test_light_dialogs_fill_capacity_by_their_weight(db: Database, staff: Staff) -> None:
    """Capacity 1: four dialogs of weight 0.25 (e-mail-like) fit, a fifth does not; only
    one chat (weight 1) fits."""
    mail = await add_channel(db, "mail", weight=0.25, first_response_seconds=4 * 3600)
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=1)
    letters = [await arrive(db, mail, f"letter-{i}") for i in range(5)]

    await dispatch(db, start)
    assert [await assignee(db, c) for c in letters].count(staff["anna"]) == 4

    for c in letters:
        await close(db, c)
    chats = [await arrive(db, staff.widget_id, f"chat-{i}") for i in range(2)]
    await dispatch(db, later(start, 5))
    assert [await assignee(db, c) for c in chats].count(staff["anna"]) == 1
    assert await loads(db) == {staff["anna"]: 1}


async def test_a_chat_does_not_fit_beside_three_quarters_of_light_work(
    db: Database, staff: Staff
) -> None:
    mail = await add_channel(db, "mail", weight=0.25)
    start = clock()
    await operator(db, staff["anna"], now=start, capacity=1)
    for i in range(3):
        await arrive(db, mail, f"letter-{i}")
    await dispatch(db, start)
    chat = await arrive(db, staff.widget_id, "chat")

    assert await dispatch(db, later(start, 1)) == []
    assert await assignee(db, chat) is None


async def test_only_online_and_connected_operators_get_dialogs(db: Database, staff: Staff) -> None:
    start = clock()
    await operator(db, staff["anna"], now=start, status="break")
    await operator(db, staff["igor"], now=start, last_seen_at=start - timedelta(seconds=90))
    await operator(db, staff["olga"], now=start, status="offline")
    waiting = [await arrive(db, staff.widget_id, f"v{i}") for i in range(3)]

    assert await dispatch(db, start) == []
    assert await loads(db) == {}

    # igor's workspace is seen again: he gets them, the others still none
    await operator(db, staff["igor"], now=start)
    await dispatch(db, later(start, 1))
    assert {await assignee(db, c) for c in waiting} == {staff["igor"]}


async def test_supervisors_and_admins_are_never_assigned_automatically(
    db: Database, staff: Staff
) -> None:
    start = clock()
    await operator(db, staff["sveta"], now=start, capacity=10)
    await operator(db, staff["root"], now=start, capacity=10)
    waiting = [await arrive(db, staff.widget_id, f"v{i}") for i in range(2)]

    assert await dispatch(db, start) == []
    assert [await assignee(db, c) for c in waiting] == [None, None]


async def test_the_entry_points_topic_puts_its_dialogs_in_that_queue(
    db: Database, staff: Staff
) -> None:
    cards_queue = await make_queue(db, name="Карты", topic="cards")
    await make_queue(db, name="Общая", is_default=True)
    cards_page = await add_channel(db, "cards-page", topic="cards")
    from_page = await arrive(db, cards_page, "v1")
    from_site = await arrive(db, staff.widget_id, "v2")

    await dispatch(db, clock())  # nobody online: the dialogs are only placed
    placed = await dialog(db, from_page)
    assert placed.topic == "cards" and placed.queue_id == cards_queue
    other = await dialog(db, from_site)
    assert other.topic is None and other.queue_id not in (None, cards_queue)


async def test_dialogs_of_a_queue_switched_off_are_served_from_the_default_queue(
    db: Database, staff: Staff
) -> None:
    """An admin switches off the deposits queue while a customer waits in it: the dialog
    joins the default queue, as new deposit dialogs do, and is not stranded."""
    deposits = await make_queue(db, name="Вклады", topic="deposits")
    general = await make_queue(db, name="Общая", is_default=True)
    waiting = await arrive(db, staff.widget_id, "v1", topic="deposits")
    await dispatch(db, clock())
    assert (await dialog(db, waiting)).queue_id == deposits

    await switch_off(db, deposits)
    start = clock()
    await operator(db, staff["anna"], now=start)
    await dispatch(db, start)
    served = await dialog(db, waiting)
    assert served.assignee_id == staff["anna"] and served.queue_id == general
