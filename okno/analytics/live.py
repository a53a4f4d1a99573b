"""The supervisor's live board: queues, waits and operator load as they are right now.

Every supervisor's screen polls it (and re-reads it when ``conversation.*`` or
``operator.presence_changed`` events arrive), and a bank has thousands of open dialogs, so
the counting happens in one GROUP BY (``conversations.service.open_dialog_groups``); only
the few resulting groups are rolled up here.

A waiting dialog waits since ``awaiting_since`` (the customer's oldest unanswered message,
cleared by a reply), else since its creation. So a new dialog counts from the customer's
first message, and one sent back to a queue counts from the customer's first message after
the last answer; one sent back with nothing unanswered shows its whole age (the row keeps
no time of the transfer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from okno.analytics.schemas import BoardOut, ChannelRow, OperatorRow, QueueRow, TeamRow, Totals
from okno.channels import service as channels
from okno.conversations import service as conversations
from okno.db.base import utcnow
from okno.operators import presence
from okno.operators import service as operators
from okno.operators.models import User
from okno.security import permissions

# whose load the board shows: those routing gives dialogs to
RECEIVING = permissions.roles_with("conversations.receive")
K = TypeVar("K")


@dataclass
class _Tally:
    waiting: int = 0
    in_progress: int = 0
    waiting_since: datetime | None = None

    def add(self, group: conversations.OpenGroup) -> None:
        if group.status == "waiting":
            self.waiting += group.count
            if self.waiting_since is None or group.waiting_since < self.waiting_since:
                self.waiting_since = group.waiting_since
        else:
            self.in_progress += group.count

    def load(self, now: datetime) -> dict[str, int]:
        """The fields every board row shares (see ``schemas.Load``)."""
        wait = 0
        if self.waiting_since is not None:
            wait = max(0, int((now - self.waiting_since).total_seconds()))
        return {
            "waiting": self.waiting,
            "longest_wait_seconds": wait,
            "in_progress": self.in_progress,
        }


def _tally(
    groups: list[conversations.OpenGroup], key: Callable[[conversations.OpenGroup], K]
) -> dict[K, _Tally]:
    out: dict[K, _Tally] = {}
    for group in groups:
        out.setdefault(key(group), _Tally()).add(group)
    return out


def sees_everything(viewer: User) -> bool:
    """Admins, team-less supervisors and auditors watch every team; others their own."""
    return permissions.sees_all_staff(viewer)


async def board(session: AsyncSession, *, viewer: User) -> BoardOut:
    """The live board for a supervisor or admin (Forbidden ``forbidden_role`` otherwise).

    A supervisor with a team sees the dialogs the team rule lets them see (their team's,
    those not yet given a team, and their own) and their team's staff; admins and team-less
    supervisors see everything.
    """
    permissions.check(viewer, "reports.read", "see the live board")
    now = utcnow()
    groups = await conversations.open_dialog_groups(session, viewer=viewer)
    staff = await presence.list_presence(session, viewer=viewer)
    capacity = {u.id: u.capacity for u in await operators.list_users(session)}
    load = await conversations.open_dialogs_per_assignee(session, [s.user_id for s in staff])
    all_teams = {t.id: t.name for t in await operators.list_teams(session)}
    all_channels = await channels.list_channels(session)

    by_topic = _tally(groups, lambda g: g.topic)
    queues = [
        QueueRow(topic=topic, **by_topic[topic].load(now))
        for topic in sorted(by_topic, key=lambda t: (t is None, t or ""))
    ]

    by_channel = _tally(groups, lambda g: g.channel_id)
    channel_rows = [
        ChannelRow(
            channel_id=c.id,
            kind=c.kind,
            name=c.name,
            **by_channel.get(c.id, _Tally()).load(now),
        )
        for c in all_channels
        if c.is_active or c.id in by_channel
    ]

    by_team = _tally(groups, lambda g: g.team_id)
    team_ids = set(all_teams) if sees_everything(viewer) else {viewer.team_id}
    team_ids |= set(by_team)
    named = sorted((t for t in team_ids if t is not None), key=lambda t: all_teams.get(t, ""))
    team_rows = [
        TeamRow(
            team_id=team_id,
            name=all_teams.get(team_id, "") if team_id is not None else "",
            **by_team.get(team_id, _Tally()).load(now),
        )
        for team_id in [*named, None]  # None: dialogs not yet given a team, always last
    ]

    operator_rows = [
        OperatorRow(
            user_id=s.user_id,
            name=s.name,
            team_id=s.team_id,
            role=s.role,
            status=s.status,
            since=s.since,
            connected=s.connected,
            available=s.available,
            open_dialogs=load.get(s.user_id, 0),
            capacity=capacity.get(s.user_id, 0),
        )
        for s in staff
    ]

    total = _Tally()
    for group in groups:
        total.add(group)
    serving = [s for s in staff if s.role in RECEIVING]
    return BoardOut(
        generated_at=now,
        queues=queues,
        channels=channel_rows,
        teams=team_rows,
        operators=operator_rows,
        totals=Totals(
            **total.load(now),
            online=sum(1 for s in serving if s.available),
            on_break=sum(1 for s in serving if s.status == "break"),
        ),
    )
