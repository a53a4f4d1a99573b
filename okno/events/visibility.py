"""Who may see which event: one rule, in Python (live fan-out) and in SQL (catch-up).

Staff rule (the permissions are okno.security.permissions'):
- whoever sees all teams (an admin, a supervisor without a team, an integration with
  ``conversations.read_all``) sees everything;
- a supervisor of a team (``conversations.monitor``) sees that team's events and those of
  dialogs not yet given a team;
- whoever holds no ``conversations.read_team`` (security officer, auditor) sees nothing;
- an operator (senior or not) sees events of dialogs assigned to them (or just taken from them), and the
  team-wide events of their team or of no team. Messages of a dialog someone else is
  serving are ``assignee_only``: colleagues do not get that traffic.
Customer rule: only events marked customer-visible of that customer.
Both forms are tested against each other on the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

from okno.events.models import Event
from okno.security import permissions


@dataclass(frozen=True)
class StaffViewer:
    user_id: int
    role: str
    team_id: int | None
    # an API token's scopes narrow the role (okno.security.permissions.permissions_of)
    token_scopes: frozenset[str] | None = None

    @property
    def sees_everything(self) -> bool:
        return permissions.sees_all_teams(self)

    @property
    def monitors_team(self) -> bool:
        """Follows every dialog of the team, those colleagues serve included."""
        return permissions.has(self, "conversations.monitor")

    @property
    def sees_nothing(self) -> bool:
        return not permissions.has(self, "conversations.read_team")


@dataclass(frozen=True)
class CustomerViewer:
    customer_id: int
    channel_id: int | None = None


Viewer = StaffViewer | CustomerViewer


def may_see(event: dict[str, Any], viewer: Viewer) -> bool:
    """Whether ``viewer`` may receive ``event`` (a dict with the Event columns)."""
    if isinstance(viewer, CustomerViewer):
        broadcast = event.get("broadcast_channel_id")
        if broadcast is not None:
            return broadcast == viewer.channel_id
        return bool(event["customer_visible"]) and event["customer_id"] == viewer.customer_id
    if event.get("broadcast_channel_id") is not None:
        return False  # widget broadcasts are for customers only
    if viewer.sees_everything:
        return True
    if viewer.sees_nothing:
        return False
    team_ok = event["team_id"] is None or event["team_id"] == viewer.team_id
    if viewer.monitors_team:
        return team_ok
    if viewer.user_id in (event["assignee_id"], event["also_user_id"]):
        return True
    if event["assignee_only"] and event["assignee_id"] is not None:
        return False
    return team_ok


def visible_clause(viewer: Viewer) -> ColumnElement[bool]:
    """The SQL form of :func:`may_see` over the ``events`` table."""
    if isinstance(viewer, CustomerViewer):
        return and_(Event.customer_visible.is_(True), Event.customer_id == viewer.customer_id)
    if viewer.sees_everything:
        return true()
    if viewer.sees_nothing:
        return false()
    team_ok = or_(
        Event.team_id.is_(None),
        Event.team_id == viewer.team_id if viewer.team_id is not None else false(),
    )
    if viewer.monitors_team:
        return team_ok
    return or_(
        Event.assignee_id == viewer.user_id,
        Event.also_user_id == viewer.user_id,
        and_(or_(Event.assignee_only.is_(False), Event.assignee_id.is_(None)), team_ok),
    )
