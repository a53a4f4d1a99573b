"""The local hub: which sockets of this process get which event.

Connections are indexed (by user, team, customer) so one event touches only the sockets
that may see it, not all 5,000 of them. Each connection has a bounded outbox drained by its
own writer; a client too slow to keep up is disconnected and catches up on reconnect
rather than making the server hold an unbounded backlog.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

import structlog

from okno.events.service import envelope
from okno.events.visibility import CustomerViewer, StaffViewer, Viewer, may_see

log = structlog.get_logger(__name__)
OUTBOX_LIMIT = 2000


class Connection:
    """One connected socket's view of the stream."""

    def __init__(self, viewer: Viewer, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.viewer = viewer
        self._send = send
        self.outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=OUTBOX_LIMIT)
        self.overflowed = False
        self.resync = False
        # Set when the server ends the stream: (code, WebSocket close code).
        self.stopped: tuple[str, int] | None = None
        # When the credential the socket was opened with runs out (epoch seconds).
        self.expires_at: float | None = None
        # Events up to here were sent by the catch-up; live copies of them are skipped.
        self.skip_through = 0

    def offer(self, event: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.outbox.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True  # drain() stops at its next step; the socket closes

    def stop(self, code: str, close_code: int) -> None:
        """End the stream (account disabled, credential expired)."""
        self.stopped = (code, close_code)
        with suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)

    def ask_resync(self) -> None:
        """Make the client reconnect and catch up from the database (live events may have
        been lost, e.g. while the bus was reconnecting)."""
        self.resync = True
        with suppress(asyncio.QueueFull):
            self.outbox.put_nowait(None)

    async def drain(self) -> None:
        """Send queued events until the connection closes, overflows or must resync."""
        while True:
            event = await self.outbox.get()
            if event is None or self.overflowed or self.resync or self.stopped:
                return
            seq = event["seq"]
            if seq is not None and seq <= self.skip_through:
                continue  # ephemeral events (typing) have no seq and are never skipped
            await self._send(envelope(event, self.viewer))


class Hub:
    def __init__(self) -> None:
        self.by_user: dict[int, set[Connection]] = defaultdict(set)
        self.operators_by_team: dict[int | None, set[Connection]] = defaultdict(set)
        self.supervisors_by_team: dict[int, set[Connection]] = defaultdict(set)
        self.see_all: set[Connection] = set()
        self.by_customer: dict[int, set[Connection]] = defaultdict(set)
        self.customers_by_channel: dict[int | None, set[Connection]] = defaultdict(set)
        self.count_staff = 0
        self.count_customers = 0

    def add(self, conn: Connection) -> None:
        v = conn.viewer
        if isinstance(v, CustomerViewer):
            self.by_customer[v.customer_id].add(conn)
            self.customers_by_channel[v.channel_id].add(conn)
            self.count_customers += 1
            return
        self.count_staff += 1
        self.by_user[v.user_id].add(conn)
        if v.sees_everything:
            self.see_all.add(conn)
        elif v.monitors_team and v.team_id is not None:
            self.supervisors_by_team[v.team_id].add(conn)
        else:
            self.operators_by_team[v.team_id].add(conn)

    def remove(self, conn: Connection) -> None:
        v = conn.viewer
        if isinstance(v, CustomerViewer):
            if conn in self.by_customer.get(v.customer_id, ()):
                self.by_customer[v.customer_id].discard(conn)
                self.customers_by_channel.get(v.channel_id, set()).discard(conn)
                self.count_customers -= 1
                if not self.by_customer[v.customer_id]:
                    del self.by_customer[v.customer_id]
            return
        if conn not in self.by_user.get(v.user_id, ()):
            return
        self.count_staff -= 1
        self.by_user[v.user_id].discard(conn)
        if not self.by_user[v.user_id]:
            del self.by_user[v.user_id]
        self.see_all.discard(conn)
        if v.team_id is not None:
            self.supervisors_by_team.get(v.team_id, set()).discard(conn)
        self.operators_by_team.get(v.team_id, set()).discard(conn)

    def _candidates(self, event: dict[str, Any]) -> set[Connection]:
        broadcast = event.get("broadcast_channel_id")
        if broadcast is not None:
            return set(self.customers_by_channel.get(broadcast, set()))
        found: set[Connection] = set(self.see_all)
        if event["customer_visible"] and event["customer_id"] is not None:
            found |= self.by_customer.get(event["customer_id"], set())
        for uid in (event["assignee_id"], event["also_user_id"]):
            if uid is not None:
                found |= self.by_user.get(uid, set())
        team = event["team_id"]
        if team is None:
            for conns in self.supervisors_by_team.values():
                found |= conns
        else:
            found |= self.supervisors_by_team.get(team, set())
        if not (event["assignee_only"] and event["assignee_id"] is not None):
            if team is None:
                for conns in self.operators_by_team.values():
                    found |= conns
            else:
                found |= self.operators_by_team.get(team, set())
        return found

    def staff_connections(self) -> dict[int, set[Connection]]:
        return {uid: set(conns) for uid, conns in self.by_user.items()}

    def resync_all(self) -> None:
        """Ask every local client to reconnect and catch up (bus gap)."""
        conns = set(self.see_all)
        for group in (self.by_user, self.by_customer):
            for members in group.values():
                conns |= members
        for conn in conns:
            conn.ask_resync()
        log.warning("hub.resync_all", connections=len(conns))

    def dispatch(self, event: dict[str, Any]) -> None:
        """Offer ``event`` to every local connection allowed to see it (bus handler)."""
        for conn in self._candidates(event):
            if may_see(event, conn.viewer):
                conn.offer(event)


def staff_viewer(user: Any) -> StaffViewer:
    return StaffViewer(
        user_id=user.id,
        role=user.role,
        team_id=user.team_id,
        token_scopes=getattr(user, "token_scopes", None),
    )
