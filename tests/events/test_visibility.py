"""The Python rule (live fan-out) and the SQL rule (catch-up) must agree on every event."""

from __future__ import annotations

import itertools
import random

from sqlalchemy import insert, select

from okno.db.session import Database
from okno.events.models import Event
from okno.events.visibility import CustomerViewer, StaffViewer, may_see, visible_clause


async def test_python_and_sql_visibility_agree(db: Database) -> None:
    rng = random.Random(7)
    teams = [None, 1, 2]
    users = [None, 10, 11, 12]
    rows = []
    for seq, (team, assignee, also, only, cust_vis) in enumerate(
        itertools.product(teams, users, users, (False, True), (False, True)), start=1
    ):
        rows.append(
            {
                "seq": seq,
                "type": "message.created",
                "conversation_id": 1,
                "customer_id": rng.choice([100, 101]),
                "customer_visible": cust_vis,
                "team_id": team,
                "assignee_id": assignee,
                "also_user_id": also,
                "assignee_only": only,
                "payload": {},
            }
        )
    async with db.transaction() as session:
        await session.execute(insert(Event), rows)
    viewers = [
        StaffViewer(user_id=u, role=r, team_id=t)
        for u in (10, 11, 12)
        for r in ("operator", "supervisor", "admin")
        for t in (None, 1, 2)
    ] + [CustomerViewer(customer_id=100), CustomerViewer(customer_id=101)]
    async with db.read() as session:
        for viewer in viewers:
            sql = set(
                (await session.scalars(select(Event.seq).where(visible_clause(viewer)))).all()
            )
            python = {r["seq"] for r in rows if may_see(r, viewer)}
            assert sql == python, viewer


def test_operator_does_not_see_messages_of_a_colleagues_dialog() -> None:
    event = {
        "customer_visible": True,
        "customer_id": 1,
        "team_id": 1,
        "assignee_id": 10,
        "also_user_id": None,
        "assignee_only": True,
    }
    assert may_see(event, StaffViewer(user_id=10, role="operator", team_id=1))
    assert not may_see(event, StaffViewer(user_id=11, role="operator", team_id=1))
    assert may_see(event, StaffViewer(user_id=99, role="supervisor", team_id=1))
    assert not may_see(event, StaffViewer(user_id=99, role="supervisor", team_id=2))
