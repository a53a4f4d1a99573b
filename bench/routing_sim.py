"""A day of routing played through the real routing service and a real database, in virtual time.

Usage:
    python3 bench/routing_sim.py                          # 1x: 30,000 dialogs, 400 operators, SQLite
    python3 bench/routing_sim.py --scale 10 --hours 10-13 --warmup 60   # 10x over the busiest hours
    python3 bench/routing_sim.py --stress-only            # only the target point (400 ops, 2,000 waiting)
    python3 bench/routing_sim.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/okno_sim
Options (see --help): --tick S virtual seconds per step, --grace-seconds, --seed, --profile
(cProfile of the stress passes), --gc-freeze, --dispatch-batch N (what one pass looks at;
default: the service's own default), --keep (keep the data directory / database), --out FILE.

What it plays (all of it seeded from --seed, so two runs see the same day):

* **Set-up** through okno's own services: teams «Розница», «Бизнес», «Антифрод»; queues
  (``routing.service.save_queue``) cards, credits (skill level >= 2), deposits (longest idle),
  fraud (priority 100, overflow to «Розница» after 60 s), business (09:00-21:00 Moscow,
  overflow after 180 s) and a default queue for dialogs without a topic; channels: a widget
  (``channels.service.add_widget``), a Telegram bot and an e-mail box (Channel rows of kind
  ``telegram`` and ``email``) whose weights and first-response targets come from
  ``routing.rules.DEFAULT_RULES`` (chat 1.0 / 30 s, messenger 0.5 / 120 s, e-mail 0.25 / 4 h);
  operators (``operators.service.create_user``, one shared argon2 hash) with capacity 3-6,
  1-3 skills with levels 1-5 and a team; customers (3 % tagged ``vip``) by bulk insert.
* **Staff plan** (per 400 operators): shifts 22-08 (40), 07-16 (60), 08-17 (60), 09-18 (80),
  13-22 (90), 15-24 (70); business-team people only on the 08-17, 09-18 and 13-22 shifts.
  Every shift has a 15-minute break about every 2 hours (jitter +-20 min).
* **Demand** (per 30,000 dialogs): an hourly curve, low at night (0.4 % of the day at 03-05),
  peaking at 10-12 (7.4-7.8 %) and again at 18-19 (6.0-6.2 %); arrival times are uniform
  inside each hour; channels 60 % widget chat, 30 % Telegram, 10 % e-mail; topics cards 34 %,
  credits 18 %, deposits 14 %, fraud 6 %, business 10 % in its hours (2 % outside), none
  18 %. Handle time (assignment -> close) is lognormal per channel: chat median 15 min,
  Telegram 30 min, e-mail 12 min (sigma 0.6/0.7/0.6, capped at 3 h); fraud x1.3, business
  x1.2.
* **Virtual clock**, one step every ``--tick`` seconds (default 5). Each step:
  1. one write transaction for the world: dialogs whose handle time is over are closed (a
     fast UPDATE: status closed, closed_at); operators whose shift or break starts or ends
     get their Presence row changed (status online/break/offline, since = virtual now);
     every 20 virtual seconds (okno's heartbeat) connected operators (online or on a break)
     get last_seen_at = virtual now; new dialogs are inserted (status waiting,
     created_at = awaiting_since = the exact virtual arrival time, queued_at NULL);
  2. one transaction that is the routing watchdog: ``routing.service.requeue_abandoned``
     (grace period ``--grace-seconds``, default ``OKNO_ROUTING_GRACE_SECONDS`` = 120 s),
     then ``routing.service.dispatch(session, now=virtual now)`` - the real pass: it places
     the new dialogs, reads the available operators and their load, decides, writes the
     assignments, records the events and commits.
  An operator going on a break or off shift keeps their dialogs for the grace period; the
  ones still open then are re-queued at the front (that is what okno does today) and the
  rest of their handle time is served by whoever gets them next.
* **Measured**:
  - decision latency, three ways: ``Decision.decided_ms`` (the in-memory choice of one
    dialog, as the service logs it); *pass start -> first decision* (wall time from the call
    of ``dispatch`` to its first ``actions.route_to``: the queries for queues, channels, new
    dialogs, operators with their load and the waiting list, plus the choice); and the whole
    ``dispatch`` call, and the transaction with its commit. The 20 ms target is compared with
    *pass start -> first decision*: a dialog is decided only once the pass has read the state
    it decides on, and that is what a customer or a freed place waits for; ``decided_ms``
    leaves out every database read, and the whole pass also contains the writes of all the
    other assignments of that pass;
  - wait to the first assignment per channel (p50/p90), and the share of dialogs assigned
    within their channel's first-response target. Waits are quantised by the step: a dialog
    arriving inside a step is dispatched at the step's end (on average tick/2 later than
    okno's event-triggered pass would run). Dialogs that arrive while their queue is closed
    (business at night) are counted apart;
  - operator load spread: per operator, time-weighted load / capacity while online
    (occupancy) and dialogs per online hour, p10/p50/p90 and the coefficient of variation;
  - capacity check: after every pass the simulation's own ledger of who holds what must stay
    within each operator's capacity, and every virtual hour the load recomputed from the
    database must equal the ledger.
* **Stress point** matching the target (after the day, same database): ``--stress-operators``
  operators (default: all of them) online and full to capacity (chat, messenger and e-mail
  dialogs), ``--stress-waiting`` dialogs waiting (default 2,000 x scale; placed by real
  dispatch passes); then one held dialog at a time is closed and a pass runs, until
  ``--stress-decisions`` decisions (default 500) were made; each decision's new dialog is
  replaced by a fresh arrival so every pass sees the same number waiting.
* ``--hours A-B`` plays only that window (plus ``--warmup`` minutes before it, not counted)
  and counts dialogs arriving inside it; after the window the clock runs on (with arrivals)
  for up to ``--drain`` minutes until every counted dialog is assigned.

It prints a summary and appends one JSON line to ``bench/results.jsonl`` (or ``--out``). A
PostgreSQL database given by ``--database-url`` is created for the run and dropped after it;
its name must start with ``okno_sim`` (then an existing one is recreated) or not exist yet.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import heapq
import io
import json
import math
import os
import pstats
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

from message_path import machine, okno_version, pct

HERE = Path(__file__).resolve().parent
NAME = "routing_sim"
LOCAL = ZoneInfo("Europe/Moscow")
DAY = datetime(2026, 11, 24, tzinfo=LOCAL)  # a Tuesday; virtual second 0 is its midnight
HOUR = 3600.0
HEARTBEAT_S = 20.0  # okno.operators.presence.HEARTBEAT_SECONDS
BREAK_S = 15 * 60.0
BASE_DIALOGS = 30_000
BASE_OPERATORS = 400

# Share of the day's dialogs arriving in each local hour 00..23 (normalised below).
CURVE = [1.2, 0.8, 0.5, 0.4, 0.4, 0.6, 1.1, 2.2, 4.2, 6.2, 7.4, 7.8]
CURVE += [7.3, 6.8, 6.4, 6.1, 5.9, 5.8, 6.0, 6.2, 5.6, 4.2, 2.8, 1.7]


@dataclass(frozen=True)
class ChannelSpec:
    kind: str
    name: str
    share: float
    median_min: float
    sigma: float


CHANNELS = (
    ChannelSpec("widget", "Чат на сайте", 0.60, 15.0, 0.6),
    ChannelSpec("telegram", "Telegram", 0.30, 30.0, 0.7),
    ChannelSpec("email", "E-mail", 0.10, 12.0, 0.6),
)
MAX_HANDLE_S = 3 * HOUR

TOPICS_IN_HOURS: dict[str | None, float] = {
    "cards": 0.34,
    "credits": 0.18,
    "deposits": 0.14,
    "fraud": 0.06,
    "business": 0.10,
    None: 0.18,
}
TOPICS_OFF_HOURS = {**TOPICS_IN_HOURS, "business": 0.02}
HANDLE_FACTOR = {"fraud": 1.3, "business": 1.2}
BUSINESS_HOURS = {"timezone": "Europe/Moscow", "weekly": {}}  # filled in below
for _day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
    BUSINESS_HOURS["weekly"][_day] = ["09:00-21:00"]  # type: ignore[index]

RETAIL, BUSINESS, FRAUD = "Розница", "Бизнес", "Антифрод"
# name, start hour, end hour (may pass 24), people per 400, team shares
SHIFTS: tuple[tuple[str, int, int, int, dict[str, float]], ...] = (
    ("22-08", 22, 32, 40, {RETAIL: 0.85, FRAUD: 0.15}),
    ("07-16", 7, 16, 60, {RETAIL: 0.88, FRAUD: 0.12}),
    ("08-17", 8, 17, 60, {RETAIL: 0.72, BUSINESS: 0.16, FRAUD: 0.12}),
    ("09-18", 9, 18, 80, {RETAIL: 0.72, BUSINESS: 0.16, FRAUD: 0.12}),
    ("13-22", 13, 22, 90, {RETAIL: 0.72, BUSINESS: 0.16, FRAUD: 0.12}),
    ("15-24", 15, 24, 70, {RETAIL: 0.88, FRAUD: 0.12}),
)


def queue_specs(team_ids: dict[str, int]) -> list[dict[str, Any]]:
    """The queues, as ``routing.service.save_queue`` takes them."""
    retail = team_ids[RETAIL]
    return [
        dict(name="Карты", topic="cards", team_id=retail, skill="cards", min_skill_level=1),
        dict(name="Кредиты", topic="credits", team_id=retail, skill="credits", min_skill_level=2),
        dict(
            name="Вклады",
            topic="deposits",
            team_id=retail,
            skill="deposits",
            min_skill_level=1,
            strategy="longest_idle",
        ),
        dict(
            name="Мошенничество",
            topic="fraud",
            team_id=team_ids[FRAUD],
            skill="fraud",
            min_skill_level=2,
            priority=100,
            overflow_team_id=retail,
            overflow_after_seconds=60,
        ),
        dict(
            name="Бизнес",
            topic="business",
            team_id=team_ids[BUSINESS],
            skill="business",
            min_skill_level=1,
            overflow_team_id=retail,
            overflow_after_seconds=180,
            hours=BUSINESS_HOURS,
            out_of_hours_message="Бизнес-линия работает с 9 до 21.",
        ),
        dict(name="Общая", topic=None, is_default=True, team_id=retail),
    ]


# --------------------------------------------------------------------------------------
# The plan: who works when, who writes when (pure, seeded)
# --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Op:
    idx: int
    shift: str
    team: str
    capacity: int
    skills: dict[str, int]
    intervals: list[tuple[float, float]]  # on shift, virtual seconds
    breaks: list[tuple[float, float]]
    uid: int = 0
    status: str = "offline"
    load: float = 0.0
    held: set[int] = field(default_factory=set)  # dialog indexes
    busy_s: float = 0.0  # integral of load while online
    cap_s: float = 0.0  # integral of capacity while online
    online_s: float = 0.0
    assigned: int = 0


@dataclass(slots=True)
class Dialog:
    idx: int
    arrival: float  # virtual seconds
    channel: int
    topic: str | None
    handle_s: float
    counted: bool  # arrived inside the measured window
    out_of_hours: bool  # its queue was closed when it arrived
    vip: bool
    conv_id: int = 0
    state: str = "future"  # future, waiting, assigned, closed
    op: int = -1
    first_at: float | None = None
    close_at: float = 0.0
    remaining: float = 0.0  # handle time left when re-queued
    requeued_at: float = 0.0
    requeues: int = 0
    gen: int = 0


def status_at(op: Op, t: float) -> str:
    if not any(a <= t < b for a, b in op.intervals):
        return "offline"
    if any(a <= t < b for a, b in op.breaks):
        return "break"
    return "online"


def plan_operators(n: int, rnd: random.Random) -> list[Op]:
    total = sum(s[3] for s in SHIFTS)
    exact = [n * s[3] / total for s in SHIFTS]
    counts = [int(x) for x in exact]
    for i in sorted(range(len(SHIFTS)), key=lambda i: exact[i] - counts[i], reverse=True)[
        : n - sum(counts)
    ]:
        counts[i] += 1
    ops: list[Op] = []
    for (name, start, end, _people, teams), count in zip(SHIFTS, counts, strict=True):
        for _ in range(count):
            team = rnd.choices(list(teams), weights=list(teams.values()))[0]
            # a night shift that started yesterday is on until 08:00 today as well
            spans = [(start * HOUR, end * HOUR)]
            if end > 24:
                spans.insert(0, ((start - 24) * HOUR, (end - 24) * HOUR))
            breaks = []
            for a, b in spans:
                k = 1
                while a + k * 2 * HOUR + BREAK_S < b - 30 * 60:
                    at = a + k * 2 * HOUR + rnd.uniform(-20, 20) * 60
                    breaks.append((at, at + BREAK_S))
                    k += 1
            ops.append(
                Op(
                    idx=len(ops),
                    shift=name,
                    team=team,
                    capacity=rnd.randint(3, 6),
                    skills=plan_skills(team, rnd),
                    intervals=spans,
                    breaks=breaks,
                )
            )
    return ops


def plan_skills(team: str, rnd: random.Random) -> dict[str, int]:
    skills: dict[str, int] = {}
    if team == RETAIL:
        for skill, p in (("cards", 0.8), ("credits", 0.5), ("deposits", 0.4)):
            if rnd.random() < p:
                skills[skill] = rnd.randint(1, 5)
        if not skills:
            skills[rnd.choice(["cards", "credits", "deposits"])] = rnd.randint(1, 5)
        for skill, p, lo, hi in (("business", 0.10, 1, 2), ("fraud", 0.08, 2, 3)):
            if len(skills) < 3 and rnd.random() < p:
                skills[skill] = rnd.randint(lo, hi)
    elif team == BUSINESS:
        skills["business"] = rnd.randint(1, 5)
        if rnd.random() < 0.4:
            skills["credits"] = rnd.randint(1, 5)
    else:
        skills["fraud"] = rnd.randint(2, 5)
        if rnd.random() < 0.5:
            skills["cards"] = rnd.randint(1, 5)
    return skills


def at(t: float) -> datetime:
    """Virtual seconds -> an aware UTC datetime (what okno stores)."""
    return (DAY + timedelta(seconds=t)).astimezone(UTC)


def plan_dialogs(
    per_day: int, start: float, end: float, counted: tuple[float, float], rnd: random.Random
) -> list[Dialog]:
    """Arrivals in [start, end): per hour the day's share of ``per_day`` (Poisson count),
    uniform inside the hour."""
    from okno.routing import rules

    weights = sum(CURVE)
    dialogs: list[Dialog] = []
    hour = math.floor(start / HOUR)
    while hour * HOUR < end:
        lo, hi = max(start, hour * HOUR), min(end, (hour + 1) * HOUR)
        mean = per_day * CURVE[hour % 24] / weights * (hi - lo) / HOUR
        for _ in range(poisson(mean, rnd)):
            t = rnd.uniform(lo, hi)
            in_hours = rules.is_open(BUSINESS_HOURS, at(t))
            mix = TOPICS_IN_HOURS if in_hours else TOPICS_OFF_HOURS
            topic = rnd.choices(list(mix), weights=list(mix.values()))[0]
            ch = rnd.choices(range(len(CHANNELS)), weights=[c.share for c in CHANNELS])[0]
            spec = CHANNELS[ch]
            handle = spec.median_min * 60 * math.exp(rnd.gauss(0, spec.sigma))
            handle = min(MAX_HANDLE_S, handle * HANDLE_FACTOR.get(topic or "", 1.0))
            dialogs.append(
                Dialog(
                    idx=0,
                    arrival=t,
                    channel=ch,
                    topic=topic,
                    handle_s=handle,
                    counted=counted[0] <= t < counted[1],
                    out_of_hours=topic == "business" and not in_hours,
                    vip=False,  # the customer's tag decides, at insert
                )
            )
        hour += 1
    dialogs.sort(key=lambda d: d.arrival)
    for i, d in enumerate(dialogs):
        d.idx = i
    return dialogs


def poisson(mean: float, rnd: random.Random) -> int:
    if mean > 50:  # normal approximation, fine at these sizes
        return max(0, round(rnd.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rnd.random()
        if p <= limit:
            return k
        k += 1


# --------------------------------------------------------------------------------------
# The database
# --------------------------------------------------------------------------------------


class World:
    """okno's database seen by the simulation: ids of what was seeded."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.channel_ids: list[int] = []
        self.team_ids: dict[str, int] = {}
        self.queue_ids: dict[str | None, int] = {}
        self.customers: list[tuple[int, bool]] = []  # (customer id, VIP), each used once
        self._next_customer = 0

    def customer(self) -> tuple[int, bool]:
        if self._next_customer >= len(self.customers):
            raise RuntimeError("the simulation ran out of seeded customers")
        self._next_customer += 1
        return self.customers[self._next_customer - 1]


async def seed(world: World, ops: list[Op], customers: int, rnd: random.Random) -> None:
    from sqlalchemy import insert

    from okno.channels import service as channels
    from okno.channels.models import Channel
    from okno.operators import service as staff
    from okno.operators.models import Presence
    from okno.routing import service as routing
    from okno.security.passwords import hash_password

    one_hash = hash_password("routing-sim-password")
    async with world.db.transaction() as s:
        widget = await channels.add_widget(s, key="sim", name=CHANNELS[0].name)
        rows = [widget]
        for spec in CHANNELS[1:]:
            ch = Channel(kind=spec.kind, name=spec.name, config={})
            s.add(ch)
            rows.append(ch)
        await s.flush()
        world.channel_ids = [c.id for c in rows]
        for team in (RETAIL, BUSINESS, FRAUD):
            world.team_ids[team] = (await staff.add_team(s, name=team)).id
        for values in queue_specs(world.team_ids):
            queue = await routing.save_queue(s, None, values)
            world.queue_ids[queue.topic] = queue.id
    for chunk in range(0, len(ops), 1000):
        async with world.db.transaction() as s:
            for op in ops[chunk : chunk + 1000]:
                user = await staff.create_user(
                    s,
                    login=f"sim-op-{op.idx + 1:05d}",
                    password="",
                    password_hash=one_hash,
                    role="operator",
                    display_name=f"Оператор {op.idx + 1} ({op.shift})",
                    team=op.team,
                    capacity=op.capacity,
                    skills=op.skills,
                )
                op.uid = user.id
            await s.execute(
                insert(Presence),
                [
                    {"user_id": op.uid, "status": "offline", "since": at(-HOUR)}
                    for op in ops[chunk : chunk + 1000]
                ],
            )
    await add_customers(world, customers, rnd)


async def add_customers(world: World, n: int, rnd: random.Random) -> None:
    from sqlalchemy import insert

    from okno.customers.models import Customer

    step = 5000
    for start in range(0, n, step):
        rows = []
        for i in range(start, min(n, start + step)):
            vip = rnd.random() < 0.03
            rows.append(
                {
                    "display_name": f"Клиент {i + 1}",
                    "tags": ["vip"] if vip else [],
                    "attributes": {},
                }
            )
        async with world.db.transaction() as s:
            ids = (
                await s.execute(
                    insert(Customer).returning(Customer.id, sort_by_parameter_order=True), rows
                )
            ).scalars()
            for cid, row in zip(ids, rows, strict=True):
                world.customers.append((cid, bool(row["tags"])))


def conversation_row(world: World, d: Dialog) -> dict[str, Any]:
    when = at(d.arrival)
    customer_id, d.vip = world.customer()
    return {
        "customer_id": customer_id,
        "channel_id": world.channel_ids[d.channel],
        "status": "waiting",
        "topic": d.topic,
        "created_at": when,
        "awaiting_since": when,
        "last_message_at": when,
        "last_author_kind": "customer",
        "last_message_preview": "Здравствуйте, вопрос",
        "message_count": 1,
        "unread_count": 1,
        "tags": [],
    }


async def insert_dialogs(session: Any, world: World, dialogs: list[Dialog]) -> None:
    from sqlalchemy import insert

    from okno.conversations.models import Conversation

    if not dialogs:
        return
    rows = [conversation_row(world, d) for d in dialogs]
    ids = (
        await session.execute(
            insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), rows
        )
    ).scalars()
    for d, cid in zip(dialogs, ids, strict=True):
        d.conv_id = cid
        d.state = "waiting"


async def close_dialogs(session: Any, closing: list[tuple[int, float]]) -> None:
    from sqlalchemy import update

    from okno.conversations.models import Conversation

    if closing:
        await session.execute(
            update(Conversation),
            [
                {
                    "id": cid,
                    "status": "closed",
                    "closed_at": at(t),
                    "awaiting_since": None,
                    "resolution": "resolved",
                }
                for cid, t in closing
            ],
        )


async def set_presence(session: Any, changes: dict[str, list[int]], now: datetime) -> None:
    from sqlalchemy import update

    from okno.operators.models import Presence

    for status, uids in changes.items():
        for i in range(0, len(uids), 2000):
            values: dict[str, Any] = {"status": status, "since": now}
            if status != "offline":
                values["last_seen_at"] = now
            await session.execute(
                update(Presence).where(Presence.user_id.in_(uids[i : i + 2000])).values(**values)
            )


async def heartbeat(session: Any, now: datetime) -> None:
    """okno refreshes last_seen_at of every connected workspace; here: online or on a break."""
    from sqlalchemy import update

    from okno.operators.models import Presence

    await session.execute(
        update(Presence).where(Presence.status.in_(("online", "break"))).values(last_seen_at=now)
    )


async def db_loads(session: Any, world: World) -> dict[int, float]:
    from sqlalchemy import func, select

    from okno.conversations.models import Conversation
    from okno.routing import rules

    weights = {cid: weight(i) for i, cid in enumerate(world.channel_ids)}
    loads: dict[int, float] = defaultdict(float)
    rows = await session.execute(
        select(Conversation.assignee_id, Conversation.channel_id, func.count())
        .where(Conversation.status == "assigned")
        .group_by(Conversation.assignee_id, Conversation.channel_id)
    )
    for uid, cid, n in rows.all():
        loads[uid] += weights.get(cid, rules.FALLBACK_RULE.weight) * n
    return loads


def weight(channel: int) -> float:
    from okno.routing import rules

    return rules.channel_rule(CHANNELS[channel].kind).weight


def target_s(channel: int) -> int:
    from okno.routing import rules

    return rules.channel_rule(CHANNELS[channel].kind).first_response_seconds


class GcWatch:
    """Garbage-collector pauses of this process (``gc.callbacks``): a pass that meets a
    generation-2 collection is slower by the whole pause."""

    def __init__(self) -> None:
        self.total_ms = 0.0
        self.pauses: list[tuple[int, float]] = []  # (generation, ms)
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._started) * 1000
            self.total_ms += ms
            self.pauses.append((int(info["generation"]), ms))

    def summary(self, since: int = 0) -> dict[str, Any]:
        mine = self.pauses[since:]
        full = [ms for gen, ms in mine if gen == 2]
        return {
            "collections": len(mine),
            "gen2_collections": len(full),
            "gen2_max_ms": round(max(full), 1) if full else None,
            "gen2_p50_ms": pct(full, 50),
            "total_ms": round(sum(ms for _gen, ms in mine), 1),
        }


GC = GcWatch()


class Cpu:
    """CPU cores used between start and stop: this process (with SQLite's threads),
    PostgreSQL's processes, and everything else on the machine (other sessions)."""

    def __init__(self) -> None:
        self.wall = time.monotonic()
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        import psutil

        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        own = psutil.Process().cpu_times()
        postgres = 0.0
        for proc in psutil.process_iter(["name", "cpu_times"]):
            if (proc.info["name"] or "").startswith("postgres") and proc.info["cpu_times"]:
                postgres += proc.info["cpu_times"].user + proc.info["cpu_times"].system
        return busy, own.user + own.system, postgres

    def stop(self) -> dict[str, float]:
        end = self._sample()
        wall = max(time.monotonic() - self.wall, 1e-9)
        busy, own, pg = ((b - a) / wall for a, b in zip(self.start, end, strict=True))
        return {
            "this_process_cores": round(own, 2),
            "postgres_cores": round(max(0.0, pg), 2),
            "other_processes_cores": round(max(0.0, busy - own - pg), 2),
            "machine_busy_cores": round(busy, 2),
            "loadavg_at_end": round(os.getloadavg()[0], 2),
        }


# --------------------------------------------------------------------------------------
# Timing one routing pass
# --------------------------------------------------------------------------------------


@dataclass
class PassTiming:
    t: float  # virtual seconds
    decisions: int
    dispatch_ms: float
    first_ms: float | None  # pass start -> first decision
    transaction_ms: float  # requeue + dispatch + commit (the whole watchdog job)
    requeue_ms: float
    decided_ms: list[float]
    # where the time before the first decision went (the rest: lock, queues, channels, the
    # query for new dialogs, the query for the waiting list, the "everybody full" checks)
    place_ms: float = 0.0  # service.place() of the new dialogs
    operators_ms: float = 0.0  # service.available_operators()
    choose_ms: float = 0.0  # service.choose() calls before the first decision
    choose_calls: int = 0  # how many
    gc_ms: float = 0.0  # garbage-collector pauses inside the pass (counted in the times above)


class Router:
    """Runs the real watchdog (requeue + dispatch) in a real transaction and times it.

    Timing wrappers go around ``actions.route_to`` (its first call marks the first
    decision), ``service.place``, ``service.available_operators`` and ``service.choose``;
    they only read the clock and call the original.
    """

    def __init__(
        self,
        db: Any,
        grace_s: int,
        batch: int | None = None,
        profiler: cProfile.Profile | None = None,
    ) -> None:
        from okno.conversations import actions
        from okno.routing import service

        self.db = db
        self.grace_s = grace_s
        self.batch = batch
        self.profiler = profiler
        self._first: float | None = None
        self._place = self._operators = self._choose = 0.0
        self._choose_calls = 0
        route_to, place = actions.route_to, service.place
        available, choose = service.available_operators, service.choose

        async def timed_route_to(session: Any, conversation: Any, user_id: int) -> None:
            if self._first is None:
                self._first = time.perf_counter()
            await route_to(session, conversation, user_id)

        async def timed_place(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await place(*args, **kwargs)
            finally:
                self._place += time.perf_counter() - t

        async def timed_available(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return await available(*args, **kwargs)
            finally:
                self._operators += time.perf_counter() - t

        def timed_choose(*args: Any, **kwargs: Any) -> Any:
            if self._first is not None:
                return choose(*args, **kwargs)
            t = time.perf_counter()
            try:
                return choose(*args, **kwargs)
            finally:
                self._choose += time.perf_counter() - t
                self._choose_calls += 1

        self._patches = [
            mock.patch.object(actions, "route_to", timed_route_to),
            mock.patch.object(service, "place", timed_place),
            mock.patch.object(service, "available_operators", timed_available),
            mock.patch.object(service, "choose", timed_choose),
        ]

    def __enter__(self) -> Router:
        for patch in self._patches:
            patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for patch in self._patches:
            patch.stop()

    async def run(
        self, t: float, *, requeue: bool = True
    ) -> tuple[PassTiming, list[Any], list[int]]:
        from okno.routing import service

        now = at(t)
        if self.profiler is not None:
            self.profiler.enable()
        started = time.perf_counter()
        requeued: list[int] = []
        async with self.db.transaction() as s:
            if requeue:
                requeued = await service.requeue_abandoned(s, grace_seconds=self.grace_s, now=now)
            self._first = None
            self._place = self._operators = self._choose = 0.0
            self._choose_calls = 0
            gc_before = GC.total_ms
            t0 = time.perf_counter()
            if self.batch is None:
                decisions = await service.dispatch(s, now=now)  # what the routing job calls
            else:
                decisions = await service.dispatch(s, now=now, batch=self.batch)
            t1 = time.perf_counter()
            first = self._first
        t2 = time.perf_counter()
        if self.profiler is not None:
            self.profiler.disable()
        timing = PassTiming(
            t=t,
            decisions=len(decisions),
            dispatch_ms=(t1 - t0) * 1000,
            first_ms=(first - t0) * 1000 if first is not None else None,
            transaction_ms=(t2 - started) * 1000,
            requeue_ms=(t0 - started) * 1000,
            decided_ms=[d.decided_ms for d in decisions],
            place_ms=self._place * 1000,
            operators_ms=self._operators * 1000,
            choose_ms=self._choose * 1000,
            choose_calls=self._choose_calls,
            gc_ms=GC.total_ms - gc_before,
        )
        return timing, decisions, requeued


def latency_summary(passes: list[PassTiming]) -> dict[str, Any]:
    decided = [x for p in passes for x in p.decided_ms]
    firsts = [p.first_ms for p in passes if p.first_ms is not None]
    deciding = [p for p in passes if p.decisions]

    def stats(values: list[float]) -> dict[str, Any]:
        return {
            "n": len(values),
            "p50": pct(values, 50),
            "p90": pct(values, 90),
            "p99": pct(values, 99),
            "max": round(max(values), 2) if values else None,
        }

    return {
        "decided_ms": stats(decided),
        "first_decision_ms": stats(firsts),
        "passes_with_gc_pause_over_10ms": sum(1 for p in passes if p.gc_ms > 10),
        "first_decision_ms_passes_without_gc_pause_over_10ms": stats(
            [p.first_ms for p in passes if p.first_ms is not None and p.gc_ms <= 10]
        ),
        "before_first_decision": {
            "place_ms": stats([p.place_ms for p in deciding]),
            "available_operators_ms": stats([p.operators_ms for p in deciding]),
            "choose_ms": stats([p.choose_ms for p in deciding]),
            "choose_calls": stats([float(p.choose_calls) for p in deciding]),
            "rest_ms": stats(
                [(p.first_ms or 0) - p.place_ms - p.operators_ms - p.choose_ms for p in deciding]
            ),
        },
        "dispatch_ms_all_passes": stats([p.dispatch_ms for p in passes]),
        "dispatch_ms_deciding_passes": stats([p.dispatch_ms for p in deciding]),
        "transaction_ms_deciding_passes": stats([p.transaction_ms for p in deciding]),
        "requeue_ms": stats([p.requeue_ms for p in passes]),
        "passes": len(passes),
        "passes_with_decisions": len(deciding),
        "decisions_per_deciding_pass_max": max((p.decisions for p in passes), default=0),
    }


# --------------------------------------------------------------------------------------
# The day
# --------------------------------------------------------------------------------------


@dataclass
class HourStats:
    arrivals: int = 0
    seconds: float = 0.0  # virtual seconds of this hour that were played
    online_s: float = 0.0
    busy_s: float = 0.0
    cap_s: float = 0.0
    waiting_max: int = 0
    requeues: int = 0
    chat_waits: list[float] = field(default_factory=list)
    within: int = 0
    answered: int = 0
    passes: list[PassTiming] = field(default_factory=list)


async def play_day(
    world: World,
    ops: list[Op],
    dialogs: list[Dialog],
    *,
    start: float,
    window: tuple[float, float],
    drain_s: float,
    tick: float,
    router: Router,
) -> dict[str, Any]:
    by_uid = {op.uid: op for op in ops}
    by_conv: dict[int, Dialog] = {}
    transitions: list[tuple[float, int, int]] = []  # (time, op idx, seq) - recompute status
    for op in ops:
        for a, b in op.intervals + op.breaks:
            for edge in (a, b):
                if edge >= start:
                    transitions.append((edge, op.idx, 0))
    heapq.heapify(transitions)
    closing: list[tuple[float, int, int]] = []  # (close_at, gen, dialog idx)
    passes: list[PassTiming] = []
    hours: dict[int, HourStats] = defaultdict(HourStats)
    waiting: set[int] = set()
    next_arrival = 0
    last_heartbeat = -1e9
    violations: list[str] = []
    mismatches = 0
    requeues = 0
    rewaits: list[float] = []
    t = start
    end = window[1] + drain_s
    wall0 = time.monotonic()
    cpu, gc_mark = Cpu(), len(GC.pauses)
    next_report = math.floor(start / HOUR) * HOUR + HOUR
    counted = [d for d in dialogs if d.counted]
    # all operators start in the status their plan gives for the first instant
    first_changes: dict[str, list[int]] = defaultdict(list)
    for op in ops:
        op.status = status_at(op, start)
        first_changes[op.status].append(op.uid)
    async with world.db.transaction() as s:
        await set_presence(s, first_changes, at(start))

    while True:
        t += tick
        now = at(t)
        hour = hours[math.floor(t / HOUR)] if window[0] <= t <= window[1] else HourStats()
        # 1. the world: closures, presence, arrivals
        closed: list[tuple[int, float]] = []
        while closing and closing[0][0] <= t:
            close_at, gen, idx = heapq.heappop(closing)
            d = dialogs[idx]
            if d.gen != gen or d.state != "assigned":
                continue
            d.state = "closed"
            op = ops[d.op]
            op.load -= weight(d.channel)
            op.held.discard(d.idx)
            closed.append((d.conv_id, close_at))
        changes: dict[str, list[int]] = defaultdict(list)
        while transitions and transitions[0][0] <= t:
            _edge, idx, _ = heapq.heappop(transitions)
            op = ops[idx]
            status = status_at(op, t)
            if status != op.status:
                op.status = status
                changes[status].append(op.uid)
        arriving: list[Dialog] = []
        while next_arrival < len(dialogs) and dialogs[next_arrival].arrival <= t:
            arriving.append(dialogs[next_arrival])
            next_arrival += 1
        async with world.db.transaction() as s:
            await close_dialogs(s, closed)
            await set_presence(s, changes, now)
            if t - last_heartbeat >= HEARTBEAT_S:
                await heartbeat(s, now)
                last_heartbeat = t
            await insert_dialogs(s, world, arriving)
        for d in arriving:
            by_conv[d.conv_id] = d
            waiting.add(d.idx)
            if d.counted:
                hours[math.floor(d.arrival / HOUR)].arrivals += 1

        # 2. routing: the real watchdog job (requeue, then a dispatch pass)
        timing, decisions, requeued = await router.run(t)
        if window[0] <= t <= window[1]:
            passes.append(timing)
            hour.passes.append(timing)
        for cid in requeued:
            d = by_conv[cid]
            op = ops[d.op]
            op.load -= weight(d.channel)
            op.held.discard(d.idx)
            d.remaining = max(0.0, d.close_at - t)
            d.state, d.op, d.requeued_at = "waiting", -1, t
            d.requeues += 1
            d.gen += 1
            waiting.add(d.idx)
            requeues += 1
            hour.requeues += 1
        for dec in decisions:
            d = by_conv[dec.conversation_id]
            op = by_uid[dec.user_id]
            if d.state != "waiting":
                violations.append(f"dialog {d.conv_id} assigned while {d.state}")
            if op.status != "online":
                violations.append(f"dialog {d.conv_id} to operator {op.uid} who is {op.status}")
            d.state, d.op = "assigned", op.idx
            d.gen += 1
            if d.first_at is None:
                d.first_at = t
                d.close_at = t + d.handle_s
                if d.counted:
                    stats = hours[math.floor(d.arrival / HOUR)]
                    stats.answered += 1
                    stats.within += t - d.arrival <= target_s(d.channel)
                    if d.channel == 0:
                        stats.chat_waits.append(t - d.arrival)
            else:
                d.close_at = t + d.remaining
                if d.counted:
                    rewaits.append(t - d.requeued_at)
            heapq.heappush(closing, (d.close_at, d.gen, d.idx))
            waiting.discard(d.idx)
            op.load += weight(d.channel)
            op.held.add(d.idx)
            op.assigned += 1
        for uid in {dec.user_id for dec in decisions}:
            op = by_uid[uid]
            if op.load > op.capacity + 1e-9:
                violations.append(f"operator {op.uid} load {op.load} > capacity {op.capacity}")

        # 3. bookkeeping: occupancy while online, the queue length
        if window[0] <= t <= window[1]:
            hour.seconds += tick
            for op in ops:
                if op.status == "online":
                    op.online_s += tick
                    op.busy_s += op.load * tick
                    op.cap_s += op.capacity * tick
                    hour.online_s += tick
                    hour.busy_s += op.load * tick
                    hour.cap_s += op.capacity * tick
            hour.waiting_max = max(hour.waiting_max, len(waiting))
        if t >= next_report:
            async with world.db.read() as s:
                loads = await db_loads(s, world)
            bad = [op for op in ops if abs(loads.get(op.uid, 0.0) - op.load) > 1e-6]
            mismatches += len(bad)
            online = sum(op.status == "online" for op in ops)
            recent = [p.first_ms for p in passes[-int(HOUR / tick) :] if p.first_ms is not None]
            log(
                f"  {clock(t)} virtual, {time.monotonic() - wall0:6.0f} s wall: "
                f"{online} online, {len(waiting)} waiting, {requeues} re-queued so far, "
                f"first decision p99 last hour {pct(recent, 99)} ms"
                + (f", LEDGER MISMATCH for {len(bad)} operators" if bad else "")
            )
            next_report += HOUR
        if t >= end or (t >= window[1] and all(d.first_at or d.out_of_hours for d in counted)):
            break
    return summarize_day(
        ops, dialogs, passes, hours, rewaits, requeues, violations, mismatches, window, tick
    ) | {
        "virtual_s": t - start,
        "wall_s": round(time.monotonic() - wall0, 1),
        "cpu": cpu.stop(),
        "gc": GC.summary(gc_mark),
    }


def clock(t: float) -> str:
    """Virtual seconds as a local time; the next day's times get a "+" (24:00 stays 24:00)."""
    if t == 86400:
        return "24:00"
    day, rest = divmod(int(t), 86400)
    return f"{'+' * day}{rest // 3600:02d}:{rest % 3600 // 60:02d}"


def summarize_day(
    ops: list[Op],
    dialogs: list[Dialog],
    passes: list[PassTiming],
    hours: dict[int, HourStats],
    rewaits: list[float],
    requeues: int,
    violations: list[str],
    mismatches: int,
    window: tuple[float, float],
    tick: float,
) -> dict[str, Any]:
    counted = [d for d in dialogs if d.counted]
    in_hours = [d for d in counted if not d.out_of_hours]
    waits: dict[str, Any] = {}
    for ch, spec in enumerate(CHANNELS):
        mine = [d for d in in_hours if d.channel == ch]
        answered = [d.first_at - d.arrival for d in mine if d.first_at is not None]
        within = sum(1 for w in answered if w <= target_s(ch))
        waits[spec.kind] = {
            "dialogs": len(mine),
            "p50_s": pct(answered, 50),
            "p90_s": pct(answered, 90),
            "p99_s": pct(answered, 99),
            "max_s": round(max(answered), 1) if answered else None,
            "target_s": target_s(ch),
            "within_target": round(within / len(mine), 4) if mine else None,
            "unanswered": len(mine) - len(answered),
        }
    within_in_hours = sum(
        1
        for d in in_hours
        if d.first_at is not None and d.first_at - d.arrival <= target_s(d.channel)
    )
    left = Counter(
        f"{d.topic or '-'} {clock(d.arrival)[:2]}h" for d in in_hours if d.first_at is None
    )
    ooh = [d for d in counted if d.out_of_hours]
    ooh_answered = [d.first_at - d.arrival for d in ooh if d.first_at is not None]
    occupancy = [op.busy_s / op.cap_s for op in ops if op.cap_s > 0]
    per_hour = [op.assigned / (op.online_s / HOUR) for op in ops if op.online_s >= HOUR]
    by_team: dict[str, list[float]] = defaultdict(list)
    for op in ops:
        if op.cap_s > 0:
            by_team[op.team].append(op.busy_s / op.cap_s)
    vips = [d for d in in_hours if d.vip and d.first_at is not None]
    fraud = [d for d in in_hours if d.topic == "fraud" and d.first_at is not None]
    hourly = []
    for h in sorted(hours):
        s = hours[h]
        if not (window[0] <= h * HOUR < window[1]):
            continue
        hourly.append(
            {
                "hour": f"{h % 24:02d}",
                "arrivals": s.arrivals,
                "online_avg": round(s.online_s / s.seconds, 1) if s.seconds else None,
                "occupancy": round(s.busy_s / s.cap_s, 3) if s.cap_s else None,
                "waiting_max": s.waiting_max,
                "requeues": s.requeues,
                "chat_wait_p90_s": pct(s.chat_waits, 90),
                "within_target": round(s.within / s.arrivals, 4) if s.arrivals else None,
                "first_decision_p99_ms": pct(
                    [p.first_ms for p in s.passes if p.first_ms is not None], 99
                ),
                "dispatch_p99_ms": pct([p.dispatch_ms for p in s.passes], 99),
            }
        )
    return {
        "dialogs": len(counted),
        "dialogs_played": sum(1 for d in dialogs if d.state != "future"),
        "first_assignments": sum(1 for d in counted if d.first_at is not None),
        "requeues": requeues,
        "requeued_dialogs_counted": sum(1 for d in counted if d.requeues),
        "rewait_p50_s": pct(rewaits, 50),
        "rewait_p90_s": pct(rewaits, 90),
        "latency": latency_summary(passes),
        "waits": waits,
        "within_target_in_hours": round(within_in_hours / len(in_hours), 4) if in_hours else None,
        "unanswered_by_topic_and_hour": dict(left.most_common(10)),
        "within_target_all": round(within_in_hours / len(counted), 4) if counted else None,
        "out_of_hours": {
            "dialogs": len(ooh),
            "answered": len(ooh_answered),
            "wait_p50_s": pct(ooh_answered, 50),
        },
        "vip_wait_p90_s": pct([d.first_at - d.arrival for d in vips], 90),  # type: ignore[operator]
        "fraud_wait_p90_s": pct([d.first_at - d.arrival for d in fraud], 90),  # type: ignore[operator]
        "load": {
            "occupancy_p10": pct(occupancy, 10),
            "occupancy_p50": pct(occupancy, 50),
            "occupancy_p90": pct(occupancy, 90),
            "occupancy_min": round(min(occupancy), 3) if occupancy else None,
            "occupancy_max": round(max(occupancy), 3) if occupancy else None,
            "occupancy_cv": cv(occupancy),
            "occupancy_p50_by_team": {k: pct(v, 50) for k, v in sorted(by_team.items())},
            "dialogs_per_online_hour_p10": pct(per_hour, 10),
            "dialogs_per_online_hour_p50": pct(per_hour, 50),
            "dialogs_per_online_hour_p90": pct(per_hour, 90),
            "dialogs_per_online_hour_cv": cv(per_hour),
            "operators_counted": len(occupancy),
        },
        "capacity_violations": len(violations),
        "violation_examples": violations[:5],
        "ledger_mismatches": mismatches,
        "hourly": hourly,
        "tick_s": tick,
    }


def cv(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return round(math.sqrt(var) / mean, 3) if mean else None


# --------------------------------------------------------------------------------------
# The stress point: everybody full, a backlog waiting, places freed one at a time
# --------------------------------------------------------------------------------------


async def stress(
    world: World,
    ops: list[Op],
    *,
    n_ops: int,
    n_waiting: int,
    wanted: int,
    t0: float,
    rnd: random.Random,
    router: Router,
) -> dict[str, Any]:
    from sqlalchemy import func, select, update

    from okno.conversations.models import Conversation
    from okno.operators.models import Presence

    wall0 = time.monotonic()
    chosen = sorted(rnd.sample(range(len(ops)), n_ops))
    stress_ops = [ops[i] for i in chosen]
    now = at(t0)
    # The day is over: whatever is still open closes; only the chosen operators are on.
    async with world.db.transaction() as s:
        await s.execute(
            update(Conversation)
            .where(Conversation.status != "closed")
            .values(status="closed", closed_at=now, awaiting_since=None, resolution="inactive")
        )
        await s.execute(update(Presence).values(status="offline", since=now))
        await set_presence(s, {"online": [op.uid for op in stress_ops]}, now)
    # Fill every chosen operator to exactly its capacity: chats, one messenger, two e-mails.
    held: dict[int, list[tuple[int, int]]] = {}  # op idx -> [(conv id, channel)]
    fillers: list[tuple[Op, Dialog]] = []
    for op in stress_ops:
        for ch in [0] * (op.capacity - 1) + [1, 2, 2]:
            d = Dialog(0, t0 - rnd.uniform(60, 1800), ch, None, 0.0, False, False, False)
            fillers.append((op, d))
    needed = len(fillers) + n_waiting + wanted * 3 + 100
    await add_customers(world, needed, rnd)
    async with world.db.transaction() as s:
        for i in range(0, len(fillers), 2000):
            part = fillers[i : i + 2000]
            await insert_dialogs(s, world, [d for _, d in part])
            await s.execute(
                update(Conversation),
                [
                    {
                        "id": d.conv_id,
                        "status": "assigned",
                        "assignee_id": op.uid,
                        "team_id": world.team_ids[op.team],
                        "queued_at": at(d.arrival),
                        "awaiting_since": None,
                    }
                    for op, d in part
                ],
            )
            for op, d in part:
                held.setdefault(op.idx, []).append((d.conv_id, d.channel))
    # The backlog: arrivals over the last 10 minutes, placed by real dispatch passes (nobody
    # has room, so they only place).
    backlog = plan_backlog(n_waiting, t0, rnd)
    async with world.db.transaction() as s:
        for i in range(0, len(backlog), 2000):
            await insert_dialogs(s, world, backlog[i : i + 2000])
    placing = 0
    while True:
        timing, decisions, _ = await router.run(t0, requeue=False)
        placing += 1
        if decisions:
            raise SystemExit("stress set-up: a dialog was assigned while everybody was full")
        async with world.db.read() as s:
            unplaced = await s.scalar(
                select(func.count()).where(
                    Conversation.status == "waiting", Conversation.queued_at.is_(None)
                )
            )
        if not unplaced:
            break
    log(
        f"stress set-up: {n_ops} operators full ({len(fillers)} dialogs held), {n_waiting} "
        f"waiting, placed in {placing} passes; {time.monotonic() - wall0:.0f} s"
    )
    cpu, gc_mark = Cpu(), len(GC.pauses)
    passes: list[PassTiming] = []
    without: list[PassTiming] = []
    waiting_seen: list[int] = []
    decisions_n = 0
    t = t0
    replace = 0
    last_heartbeat = t0
    by_uid = {o.uid: o for o in stress_ops}
    for _ in range(wanted * 4):
        t += 1.0
        op = rnd.choice([o for o in stress_ops if held.get(o.idx)])
        cid, _ch = held[op.idx].pop(rnd.randrange(len(held[op.idx])))
        fresh = plan_backlog(replace, t, rnd, spread=0.0)
        async with world.db.transaction() as s:
            await close_dialogs(s, [(cid, t)])
            await insert_dialogs(s, world, fresh)
            if t - last_heartbeat >= HEARTBEAT_S:
                await heartbeat(s, at(t))
                last_heartbeat = t
            if len(passes) % 100 == 0:
                waiting_seen.append(
                    int(
                        await s.scalar(select(func.count()).where(Conversation.status == "waiting"))
                        or 0
                    )
                )
        timing, decisions, _ = await router.run(t, requeue=False)
        passes.append(timing)
        if not decisions:
            without.append(timing)
        for dec in decisions:
            # the dialog's channel is not needed: what is held is closed at random later
            held.setdefault(by_uid[dec.user_id].idx, []).append((dec.conversation_id, -1))
        decisions_n += len(decisions)
        replace = len(decisions)
        if decisions_n >= wanted:
            break
    result = latency_summary(passes)
    result.update(
        operators=n_ops,
        waiting=n_waiting,
        waiting_seen_min=min(waiting_seen, default=None),
        waiting_seen_max=max(waiting_seen, default=None),
        passes_without_decision=len(without),
        dispatch_ms_passes_without_decision={
            "p50": pct([p.dispatch_ms for p in without], 50),
            "p99": pct([p.dispatch_ms for p in without], 99),
        },
        decisions=decisions_n,
        wall_s=round(time.monotonic() - wall0, 1),
        cpu=cpu.stop(),
        gc=GC.summary(gc_mark),
    )
    return result


def plan_backlog(n: int, t0: float, rnd: random.Random, spread: float = 600.0) -> list[Dialog]:
    from okno.routing import rules

    out = []
    for _ in range(n):
        t = t0 - rnd.uniform(0, spread)
        mix = TOPICS_IN_HOURS if rules.is_open(BUSINESS_HOURS, at(t)) else TOPICS_OFF_HOURS
        topic = rnd.choices(list(mix), weights=list(mix.values()))[0]
        ch = rnd.choices(range(len(CHANNELS)), weights=[c.share for c in CHANNELS])[0]
        out.append(Dialog(0, t, ch, topic, 0.0, False, False, False))
    return out


# --------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------


async def prepare_database(args: argparse.Namespace, data_dir: Path) -> tuple[str, str, str]:
    """(database URL for okno, kind, server version); creates the PostgreSQL database."""
    if not args.database_url:
        return "", "sqlite", sqlite3.sqlite_version
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(args.database_url)
    name = url.database or ""
    if not url.drivername.startswith("postgresql"):
        raise SystemExit("--database-url must be postgresql+asyncpg://...")
    if name in ("test", "postgres", "template0", "template1", ""):
        raise SystemExit(f"refusing to use the database {name!r}; name a throwaway one")
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and not name.startswith("okno_sim"):
            raise SystemExit(
                f"the database {name!r} exists; give a new name or one starting with okno_sim "
                "(which this script drops and recreates)"
            )
        if exists:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        version = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    return url.set(drivername="postgresql+asyncpg").render_as_string(False), "postgresql", version


async def drop_database(database_url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = url.set(drivername="postgresql", database="postgres")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')
    finally:
        await conn.close()


def parse_hours(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError("hours look like 10-13 or 0-24") from None
    if not 0 <= a < b <= 24:
        raise argparse.ArgumentTypeError("hours must satisfy 0 <= A < B <= 24")
    return a * HOUR, b * HOUR


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from okno.db import migrate
    from okno.db.session import Database
    from okno.settings import Settings, load_settings

    wall0 = time.monotonic()
    gc.callbacks.append(GC)
    version, commit = okno_version()  # of the code imported now, before it can change on disk
    service_sha = service_hash()
    rnd = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="okno-routing-sim-"))
    database_url, database, db_version = await prepare_database(args, data_dir)
    settings = load_settings(
        data_dir=data_dir, database_url=database_url, log_level="warning", db_pool_size=4
    )
    grace = (
        args.grace_seconds
        if args.grace_seconds is not None
        else int(Settings.model_fields["routing_grace_seconds"].default)
    )
    n_dialogs = args.dialogs or BASE_DIALOGS * args.scale
    n_ops = args.operators or BASE_OPERATORS * args.scale
    window = args.hours
    start = max(0.0, window[0] - args.warmup * 60) if window[0] > 0 else 0.0
    drain = args.drain * 60
    ops = plan_operators(n_ops, random.Random(rnd.random()))
    dialogs = (
        []
        if args.stress_only
        else plan_dialogs(n_dialogs, start, window[1] + drain, window, random.Random(rnd.random()))
    )
    log(
        f"plan: {n_ops} operators, {sum(d.counted for d in dialogs)} dialogs in "
        f"{clock(window[0])}-{clock(window[1])} ({len(dialogs)} with warm-up and drain); "
        f"tick {args.tick} s, grace {grace} s, database {database} in {data_dir}"
    )
    await migrate.upgrade(settings)
    db = Database(settings)
    world = World(db)
    profiler = cProfile.Profile() if args.profile else None
    result: dict[str, Any] = {}
    try:
        t = time.monotonic()
        await seed(world, ops, len(dialogs) + 10, random.Random(rnd.random()))
        setup_s = time.monotonic() - t
        log(f"seeded {n_ops} operators, 6 queues, 3 channels, customers in {setup_s:.1f} s")
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        with Router(db, grace, args.dispatch_batch) as router:
            day: dict[str, Any] | None = None
            if not args.stress_only:
                day = await play_day(
                    world,
                    ops,
                    dialogs,
                    start=start,
                    window=window,
                    drain_s=drain,
                    tick=args.tick,
                    router=router,
                )
                log(report_day(day, database))
                dialogs.clear()  # the stress point should not pay GC time for the day's objects
                gc.collect()
            stressed: dict[str, Any] | None = None
            if not args.no_stress:
                router.profiler = profiler
                stressed = await stress(
                    world,
                    ops,
                    n_ops=min(args.stress_operators or n_ops, n_ops),
                    n_waiting=args.stress_waiting or 2000 * args.scale,
                    wanted=args.stress_decisions,
                    t0=86400 + 11 * HOUR,  # the next day, 11:00
                    rnd=random.Random(rnd.random()),
                    router=router,
                )
                router.profiler = None
                log(report_stress(stressed, database))
        result = {
            "name": NAME,
            "mode": "stress" if args.stress_only else ("day" if window == (0, 86400) else "window"),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "parameters": {
                "scale": args.scale,
                "dialogs_per_day": n_dialogs,
                "operators": n_ops,
                "hours": f"{clock(window[0])}-{clock(window[1])}",
                "warmup_min": args.warmup if start < window[0] else 0,
                "drain_min": args.drain,
                "tick_s": args.tick,
                "grace_s": grace,
                "seed": args.seed,
                "stress_operators": stressed["operators"] if stressed else None,
                "stress_waiting": stressed["waiting"] if stressed else None,
                "stress_decisions": args.stress_decisions,
                "gc_freeze": args.gc_freeze,
                "dispatch_batch": args.dispatch_batch,
            },
            "day": day,
            "stress": stressed,
            "wall_s": {
                "setup": round(setup_s, 1),
                "day": day["wall_s"] if day else None,
                "stress": stressed["wall_s"] if stressed else None,
                "total": round(time.monotonic() - wall0, 1),
            },
            "database": database,
            "db_version": db_version,
            "version": version,
            "commit": commit,
            "routing_service_sha256": service_sha,
            "machine": machine(),
        }
        if profiler is not None:
            result["profile"] = profile_summary(profiler)
    finally:
        await db.dispose()
        if args.keep:
            log(f"kept {database_url or data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
            if database_url:
                await drop_database(database_url)
    return result


def service_hash() -> str:
    """okno/routing/ is not committed yet, so ``commit`` cannot name it: hash the file."""
    import hashlib

    from okno.routing import service

    return hashlib.sha256(Path(service.__file__).read_bytes()).hexdigest()[:12]


def profile_summary(profiler: cProfile.Profile, top: int = 25) -> dict[str, Any]:
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_cc, calls, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, calls, f"{short(path)}:{line}({func})"))
    by_self = sorted(rows, reverse=True)[:top]
    okno = sorted((r for r in rows if "okno/" in r[3]), key=lambda r: r[1], reverse=True)[:top]
    return {
        "total_s": round(total, 2),
        "self": [[round(tt, 3), calls, name] for tt, _ct, calls, name in by_self],
        "okno_cumulative": [[round(ct, 3), calls, name] for _tt, ct, calls, name in okno],
    }


def short(path: str) -> str:
    for marker in ("site-packages/", "okno/", "lib/python"):
        if marker in path:
            return path[path.index(marker) :]
    return path


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.1f}{unit}" if abs(x) >= 10 else f"{x:.2f}{unit}"
    return f"{x:,}{unit}"


def latency_lines(lat: dict[str, Any]) -> list[str]:
    rows = [
        ("in-memory choice (Decision.decided_ms)", lat["decided_ms"]),
        ("pass start -> first decision  [target]", lat["first_decision_ms"]),
        ("whole dispatch pass (deciding passes)", lat["dispatch_ms_deciding_passes"]),
        ("watchdog transaction incl. commit", lat["transaction_ms_deciding_passes"]),
        ("whole dispatch pass (all passes)", lat["dispatch_ms_all_passes"]),
        ("before the first decision, of which:", None),
        ("  place() new dialogs", lat["before_first_decision"]["place_ms"]),
        ("  available_operators()", lat["before_first_decision"]["available_operators_ms"]),
        ("  choose() calls (time)", lat["before_first_decision"]["choose_ms"]),
        ("  choose() calls (count, not ms)", lat["before_first_decision"]["choose_calls"]),
        ("  the rest (lock, 4 queries, checks)", lat["before_first_decision"]["rest_ms"]),
    ]
    out = [f"  {'latency, ms':40} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'n':>8}"]
    for label, s in rows:
        if s is None:
            out.append(f"  {label}")
            continue
        out.append(
            f"  {label:40} {fmt(s['p50']):>8} {fmt(s['p90']):>8} {fmt(s['p99']):>8} "
            f"{fmt(s['max']):>8} {fmt(s['n']):>8}"
        )
    return out


def report_day(day: dict[str, Any], database: str) -> str:
    lines = [
        f"day on {database}: {fmt(day['dialogs'])} dialogs counted, "
        f"{fmt(day['first_assignments'])} assigned, {fmt(day['requeues'])} re-queued "
        f"(re-wait p50 {fmt(day['rewait_p50_s'])} s, p90 {fmt(day['rewait_p90_s'])} s); "
        f"{fmt(day['latency']['passes'])} passes; {day['virtual_s'] / 3600:.1f} virtual h in "
        f"{day['wall_s']:.0f} s wall ({day['virtual_s'] / max(day['wall_s'], 1e-9):.0f}x)",
        *latency_lines(day["latency"]),
        gc_line(day["latency"], day["gc"]),
        cpu_line(day["cpu"]),
        f"  {'wait to first assignment, s':28} {'p50':>7} {'p90':>7} {'p99':>7} {'target':>7} "
        f"{'within':>8} {'dialogs':>8}",
    ]
    for kind, w in day["waits"].items():
        lines.append(
            f"  {kind:28} {fmt(w['p50_s']):>7} {fmt(w['p90_s']):>7} {fmt(w['p99_s']):>7} "
            f"{w['target_s']:>7} {fmt_share(w['within_target']):>8} {fmt(w['dialogs']):>8}"
        )
    ooh = day["out_of_hours"]
    load = day["load"]
    lines += [
        f"  within target: {fmt_share(day['within_target_in_hours'])} of dialogs arriving while "
        f"their queue was open; {fmt_share(day['within_target_all'])} of all "
        f"({ooh['dialogs']} arrived while the business queue was closed; "
        f"{ooh['answered']} answered, wait p50 {fmt(ooh['wait_p50_s'])} s)",
        f"  never assigned (arrived in hours): {day['unanswered_by_topic_and_hour'] or 0}",
        f"  VIP wait p90 {fmt(day['vip_wait_p90_s'])} s; fraud wait p90 "
        f"{fmt(day['fraud_wait_p90_s'])} s",
        f"  occupancy (load/capacity while online): p10 {fmt_share(load['occupancy_p10'])}, "
        f"p50 {fmt_share(load['occupancy_p50'])}, p90 {fmt_share(load['occupancy_p90'])}, "
        f"min {fmt_share(load['occupancy_min'])}, max {fmt_share(load['occupancy_max'])}, "
        f"CV {load['occupancy_cv']}; p50 by team {load['occupancy_p50_by_team']}",
        f"  dialogs per online hour: p10 {load['dialogs_per_online_hour_p10']}, p50 "
        f"{load['dialogs_per_online_hour_p50']}, p90 {load['dialogs_per_online_hour_p90']}, "
        f"CV {load['dialogs_per_online_hour_cv']}",
        f"  capacity violations {day['capacity_violations']}, ledger mismatches "
        f"{day['ledger_mismatches']}",
        f"  {'hour':>4} {'arrive':>7} {'online':>7} {'occup':>6} {'wait max':>8} "
        f"{'requeue':>7} {'chat p90 s':>10} {'in target':>9} {'1st dec p99':>11} {'pass p99':>9}",
    ]
    for h in day["hourly"]:
        lines.append(
            f"  {h['hour']:>4} {h['arrivals']:>7} {h['online_avg']:>7} "
            f"{fmt_share(h['occupancy']):>6} {h['waiting_max']:>8} {h['requeues']:>7} "
            f"{fmt(h['chat_wait_p90_s']):>10} {fmt_share(h['within_target']):>9} "
            f"{fmt(h['first_decision_p99_ms']):>11} {fmt(h['dispatch_p99_ms']):>9}"
        )
    return "\n".join(lines)


def report_stress(s: dict[str, Any], database: str) -> str:
    target = s["first_decision_ms"]["p99"]
    verdict = "met" if target is not None and target < 20 else "NOT met"
    return "\n".join(
        [
            f"stress point on {database}: {s['operators']} operators online and full, "
            f"{s['waiting']} waiting (seen {s['waiting_seen_min']}-{s['waiting_seen_max']}), "
            f"one place freed per pass: {s['decisions']} decisions in {s['passes']} passes "
            f"({s['passes_without_decision']} passes found nobody to give the place to; "
            f"their pass p50 {fmt(s['dispatch_ms_passes_without_decision']['p50'])} ms, p99 "
            f"{fmt(s['dispatch_ms_passes_without_decision']['p99'])} ms); {s['wall_s']:.0f} s wall",
            *latency_lines(s),
            gc_line(s, s["gc"]),
            cpu_line(s["cpu"]),
            f"  target: decision p99 < 20 ms -> pass start -> first decision p99 "
            f"{fmt(target)} ms: {verdict}",
        ]
    )


def gc_line(lat: dict[str, Any], g: dict[str, Any]) -> str:
    clean = lat["first_decision_ms_passes_without_gc_pause_over_10ms"]
    return (
        f"  GC: {g['gen2_collections']} full collections (p50 {fmt(g['gen2_p50_ms'])} ms, max "
        f"{fmt(g['gen2_max_ms'])} ms), {g['total_ms'] / 1000:.1f} s in all; "
        f"{lat['passes_with_gc_pause_over_10ms']} passes had a pause > 10 ms; without them "
        f"first decision p50 {fmt(clean['p50'])} ms, p99 {fmt(clean['p99'])} ms"
    )


def cpu_line(c: dict[str, float]) -> str:
    return (
        f"  CPU cores: this process {c['this_process_cores']}, PostgreSQL {c['postgres_cores']}, "
        f"other processes {c['other_processes_cores']} (machine busy "
        f"{c['machine_busy_cores']} of {os.cpu_count()}; load average {c['loadavg_at_end']})"
    )


def fmt_share(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("--scale", type=int, default=1, help="1: 30,000 dialogs, 400 operators")
    p.add_argument("--dialogs", type=int, help="dialogs per day (default 30,000 x scale)")
    p.add_argument("--operators", type=int, help="operators (default 400 x scale)")
    p.add_argument(
        "--hours",
        type=parse_hours,
        default=(0.0, 86400.0),
        help="virtual hours to play and count, e.g. 10-13 (default 0-24)",
    )
    p.add_argument("--warmup", type=float, default=60, help="minutes played before --hours")
    p.add_argument("--drain", type=float, default=15, help="minutes played after --hours at most")
    p.add_argument("--tick", type=float, default=5.0, help="virtual seconds per step")
    p.add_argument(
        "--grace-seconds", type=int, help="re-queue after this (default OKNO_ROUTING_GRACE_SECONDS)"
    )
    p.add_argument(
        "--dispatch-batch",
        type=int,
        help="dispatch(batch=N): how many waiting dialogs one pass looks at (default: the\n"
        "service's default, which the routing job uses)",
    )
    p.add_argument("--stress-operators", type=int, help="default: all operators")
    p.add_argument("--stress-waiting", type=int, help="default: 2,000 x scale")
    p.add_argument("--stress-decisions", type=int, default=500)
    p.add_argument("--stress-only", action="store_true", help="skip the day")
    p.add_argument("--no-stress", action="store_true", help="skip the stress point")
    p.add_argument("--profile", action="store_true", help="cProfile the stress passes")
    p.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() after set-up (okno serve does not do this today)",
    )
    p.add_argument(
        "--database-url",
        default="",
        help="postgresql+asyncpg://USER@HOST:PORT/okno_sim... (created, then dropped);\n"
        "default: SQLite in a temporary directory",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep", action="store_true", help="keep the database afterwards")
    p.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    args = p.parse_args(argv)
    if args.scale < 1 or args.tick <= 0 or args.stress_decisions < 1:
        p.error("--scale >= 1, --tick > 0 and --stress-decisions >= 1")
    if args.stress_only and args.no_stress:
        p.error("--stress-only and --no-stress leave nothing to do")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # the event loop okno serve runs on (uvicorn picks uvloop when it is installed)
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    with args.out.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
