"""The message path under load: widget customers -> okno -> operators, over real sockets.

Usage:
    python bench/message_path.py rate [--rate 500] [--duration 30] [--database sqlite]
    python bench/message_path.py max [--concurrency 64] [--duration 30]
    python bench/message_path.py connections [--customers 5000] [--operators 400] [--rate 20]
    python bench/message_path.py rate --database postgresql --profile
Common options (see --help): --procs N load-generator processes, --reply-ratio F operators
answer that share of what they receive, --no-deflate, --keep (keep the data directory),
--out FILE (default: results.jsonl beside this file).

One run starts its own ``okno serve`` on 127.0.0.1 with a fresh data directory (SQLite) or a
freshly created database ``okno_bench`` (PostgreSQL), seeds a widget and the operators, and
then, in ``--procs`` load-generator processes:

1. setup (not measured): every customer opens a widget session; the ``--active`` ones write
   a first message and one operator of the same process answers it, which assigns the
   dialog to that operator (as a reply does in the workspace);
2. every operator and every customer connects its WebSocket and waits for ``stream.ready``;
   the server's RSS is read (psutil) with all of them held;
3. measured: active customers send bank questions of varied length for ``--duration``
   seconds, open-loop at ``--rate`` messages/s (``rate``, ``connections``) or closed-loop
   with ``--concurrency`` senders that send again as soon as the POST is answered (``max``);
   latency is from the moment the customer's POST is sent to the moment the assigned
   operator's WebSocket receives that ``message.created`` (matched by client_msg_id).

It prints a summary and appends one JSON line (name, parameters, count, p50/p95/p99,
throughput, database, version, machine, server RSS and CPU) to the results file. With
``--profile`` py-spy samples the server during the measured phase and the run prints where
its time went. Traffic goes only to 127.0.0.1; every phase and loop is bounded in count and
time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import itertools
import json
import multiprocessing as mp
import os
import platform
import random
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NAME = "message_path"
WIDGET_KEY = "bench"
PASSWORD = "secret123"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "okno_bench"
CATCHUP_LIMIT = 100_000  # frames a socket may receive before stream.ready
PROFILE_RATE = 97  # py-spy samples per second and thread

PRESETS: dict[str, dict[str, Any]] = {
    "rate": dict(customers=1000, active=1000, operators=100, rate=500.0, concurrency=0),
    "max": dict(customers=1000, active=1000, operators=100, rate=0.0, concurrency=64),
    "connections": dict(customers=5000, active=500, operators=400, rate=20.0, concurrency=0),
}

# What customers of a Russian retail bank write in the chat: short, medium and long.
SHORT = [
    "Здравствуйте",
    "Добрый день!",
    "Алло, есть кто?",
    "Спасибо",
    "Да",
    "Нет, не получал",
    "Жду ответа",
    "Карта не работает",
    "Не приходит СМС",
    "Как заблокировать карту?",
    "Ок, понял",
    "Можно оператора?",
]
MEDIUM = [
    "Не могу войти в мобильное приложение, пишет «неверный код». Что делать?",
    "Списали 1 490 ₽ за обслуживание карты, хотя у меня тариф без платы. Верните, пожалуйста.",
    "Перевёл маме по номеру телефона 5 000 рублей, деньги ушли, а у неё не пришли.",
    "Подскажите, какой сейчас процент по вкладу «Надёжный» на 6 месяцев?",
    "Хочу досрочно погасить часть ипотеки, с какого числа это можно сделать?",
    "Карта заблокировалась после третьего неверного ввода ПИН-кода в банкомате.",
    "Где посмотреть реквизиты счёта для перевода зарплаты?",
    "Мне звонят из «службы безопасности банка» и просят код из СМС. Это вы?",
    "Когда придёт перевыпущенная карта? Заказывал неделю назад в отделении на Ленина.",
    "Почему не начислили кэшбэк за октябрь? Покупки были в категории «Супермаркеты».",
    "Не проходит оплата в интернет-магазине, пишет «операция отклонена банком».",
    "Можно ли увеличить лимит на снятие наличных до 300 тысяч в день?",
    "Банкомат на Садовой, 12 не выдал деньги, а с карты списал 10 000 ₽.",
    "Как поменять номер телефона, привязанный к карте? Старую сим-карту я потерял.",
]
LONG = [
    "Добрый день. Вчера вечером пытался оплатить коммунальные услуги через приложение, "
    "платёж завис в статусе «в обработке», а деньги со счёта списались. Сегодня утром "
    "повторил платёж, он прошёл, и теперь у меня два списания по 7 312,45 ₽. В управляющей "
    "компании говорят, что получили только один платёж. Прошу разобраться и вернуть второе "
    "списание, чек из приложения могу прислать.",
    "Здравствуйте! Оформлял кредитную карту с льготным периодом 120 дней. В договоре "
    "написано, что льготный период действует на покупки, но с меня взяли проценты за "
    "перевод на карту другого банка. Менеджер в отделении при оформлении сказал, что "
    "переводы тоже без процентов. Объясните, пожалуйста, как считается льготный период и "
    "сколько мне нужно внести до конца месяца, чтобы не платить проценты.",
    "У меня ИП, открыт расчётный счёт у вас. Контрагент отправил платёж три дня назад, "
    "в его банке статус «исполнен», а у нас на счёте денег нет. Номер платёжного поручения "
    "418, сумма 86 500 рублей, назначение «оплата по счёту 27 от 14.11». Подскажите, где "
    "может быть платёж и нужно ли мне что-то делать, чтобы его зачислили.",
    "Мне пришло сообщение, что моя карта заблокирована по подозрению в мошенничестве, и "
    "предложили перезвонить по номеру из сообщения. Я перезванивать не стала, но теперь "
    "переживаю: картой пользоваться не могу, в приложении она показывается активной, а "
    "оплата в магазине не проходит. Скажите, это правда блокировка от банка или нет, и как "
    "мне безопасно восстановить доступ к карте.",
]
REPLIES = [
    "Здравствуйте! Меня зовут Анна, сейчас помогу.",
    "Проверяю информацию, пожалуйста, ожидайте.",
    "Спасибо за ожидание. Операция найдена, деньги вернутся в течение 3 рабочих дней.",
    "Никому не сообщайте коды из СМС: сотрудники банка их никогда не спрашивают.",
    "Уточните, пожалуйста, дату и сумму операции.",
    "Карту можно заблокировать в приложении: Карты → Настройки → Заблокировать.",
    "Я передала обращение в профильное подразделение, ответ придёт в течение суток.",
]
NAMES = [
    "Ирина",
    "Сергей",
    "Алексей",
    "Мария",
    "Наталья",
    "Дмитрий",
    "Елена",
    "Андрей",
    "Ольга",
    "Тимур",
    "Гульнара",
    "Виктор",
]


def customer_text(rnd: random.Random) -> str:
    """A customer message: 40% short, 45% medium, 15% long (up to about 800 characters)."""
    roll = rnd.random()
    if roll < 0.40:
        return rnd.choice(SHORT)
    if roll < 0.85:
        return rnd.choice(MEDIUM)
    parts = rnd.sample(LONG, rnd.randint(1, 2))
    return " ".join(parts)


# --------------------------------------------------------------------------------------
# Load-generator process
# --------------------------------------------------------------------------------------

try:  # faster JSON on the client side leaves more of the two cores to the server
    from orjson import loads
except ImportError:  # pragma: no cover
    from json import loads  # type: ignore[assignment]


@dataclass
class Customer:
    token: str
    conversation_id: int | None = None
    operator: int | None = None  # index into the process's operators


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # ms, customer POST -> operator WS
    delivered_at: list[float] = field(default_factory=list)  # s after the start
    acks: list[float] = field(default_factory=list)  # ms, customer POST -> 201
    lags: list[float] = field(default_factory=list)  # ms, actual send - scheduled send
    reply_latencies: list[float] = field(default_factory=list)  # ms, operator POST -> widget WS
    sent: int = 0
    skipped: int = 0
    replies_sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    frames_operator: int = 0
    frames_customer: int = 0
    catchup_frames: int = 0
    dropped: int = 0

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{kind}: {detail[:300]}")


class Generator:
    """One load-generator process: its share of customers and operators."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.idx: int = cfg["idx"]
        self.rnd = random.Random(cfg["seed"] * 1000 + self.idx)
        self.operators: list[tuple[int, str]] = cfg["operators"]
        self.customers: list[Customer] = []
        self.stats = Stats()
        self.pending: dict[str, float] = {}
        self.reply_pending: dict[str, float] = {}
        self.t0 = 0.0
        self.end = 0.0
        self.stopping = False
        self.sockets: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.counter = itertools.count()
        self.client: Any = None
        self.by_conversation: dict[int | None, Customer] = {}

    # setup ----------------------------------------------------------------------------

    async def setup(self, client: Any) -> dict[str, Any]:
        sem = asyncio.Semaphore(16)
        started = time.monotonic()

        async def one_session(i: int) -> Customer:
            async with sem:
                r = await client.post(
                    "/api/v1/widget/sessions",
                    json={"widget_key": self.cfg["widget_key"], "visitor": {"name": NAMES[i % 12]}},
                )
                r.raise_for_status()
                return Customer(token=r.json()["session_token"])

        self.customers = list(
            await asyncio.gather(*(one_session(i) for i in range(self.cfg["customers"])))
        )
        sessions_s = time.monotonic() - started

        async def open_dialog(i: int, cust: Customer) -> None:
            async with sem:
                r = await client.post(
                    "/api/v1/widget/messages",
                    json={"client_msg_id": f"g{self.idx}-hello-{i}", "text": "Здравствуйте"},
                    headers={"Authorization": f"Bearer {cust.token}"},
                )
                r.raise_for_status()
                cust.conversation_id = r.json()["message"]["conversation_id"]
                cust.operator = i % len(self.operators)
                _, op_token = self.operators[cust.operator]
                r = await client.post(
                    f"/api/v1/conversations/{cust.conversation_id}/messages",
                    json={"client_msg_id": f"g{self.idx}-take-{i}", "text": REPLIES[0]},
                    headers={"Authorization": f"Bearer {op_token}"},
                )
                r.raise_for_status()

        started = time.monotonic()
        active = self.customers[: self.cfg["active"]]
        await asyncio.gather(*(open_dialog(i, c) for i, c in enumerate(active)))
        return {"sessions_s": sessions_s, "dialogs_s": time.monotonic() - started}

    # sockets --------------------------------------------------------------------------

    async def connect_all(self) -> dict[str, Any]:
        from websockets.asyncio.client import connect

        base = self.cfg["ws_url"]
        sem = asyncio.Semaphore(50)
        compression = "deflate" if self.cfg["deflate"] else None

        async def open_one(url: str, on_frame: Any) -> None:
            async with sem:
                ws = await connect(
                    url,
                    open_timeout=60,
                    ping_interval=None,  # the server pings; browsers answer, so do we
                    close_timeout=2,
                    compression=compression,
                    max_size=2**20,
                )
                # Catch-up events (committed while this socket connected) come first.
                for _ in range(CATCHUP_LIMIT):
                    frame = loads(await asyncio.wait_for(ws.recv(), 60))
                    if frame.get("type") == "stream.ready":
                        break
                    if frame.get("type") == "stream.error":
                        raise RuntimeError(f"stream refused: {frame}")
                    self.stats.catchup_frames += 1
                else:
                    raise RuntimeError(f"no stream.ready within {CATCHUP_LIMIT} frames")
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self._read(ws, on_frame)))

        started = time.monotonic()
        ops = [
            open_one(f"{base}/api/v1/ws?token={token}", self._on_operator_frame)
            for _, token in self.operators
        ]
        await asyncio.gather(*ops)
        operators_s = time.monotonic() - started
        started = time.monotonic()
        custs = [
            open_one(f"{base}/api/v1/widget/ws?token={c.token}", self._on_customer_frame)
            for c in self.customers
        ]
        await asyncio.gather(*custs)
        return {"operators_s": operators_s, "customers_s": time.monotonic() - started}

    async def _read(self, ws: Any, on_frame: Any) -> None:
        try:
            async for raw in ws:
                on_frame(raw)
        except Exception as exc:
            if not self.stopping:
                self.stats.error("ws_closed", repr(exc))
        if not self.stopping:
            self.stats.dropped += 1

    def _on_operator_frame(self, raw: str | bytes) -> None:
        now = time.monotonic()
        self.stats.frames_operator += 1
        ev = loads(raw)
        if ev.get("type") != "message.created":
            return
        msg = ev["payload"]["message"]
        sent = self.pending.pop(msg.get("client_msg_id") or "", None)
        if sent is None:
            return
        self.stats.latencies.append((now - sent) * 1000)
        self.stats.delivered_at.append(now - self.t0)
        ratio = self.cfg["reply_ratio"]
        if ratio and now < self.end and self.rnd.random() < ratio:
            self._spawn(self._reply(ev["conversation_id"]))

    def _on_customer_frame(self, raw: str | bytes) -> None:
        now = time.monotonic()
        self.stats.frames_customer += 1
        if not self.reply_pending:
            return
        ev = loads(raw)
        if ev.get("type") != "message.created":
            return
        sent = self.reply_pending.pop(ev["payload"]["message"].get("client_msg_id") or "", None)
        if sent is not None:
            self.stats.reply_latencies.append((now - sent) * 1000)

    # traffic --------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _send(self, cust: Customer, scheduled: float | None) -> None:
        cmid = f"g{self.idx}-{next(self.counter)}"
        body = {"client_msg_id": cmid, "text": customer_text(self.rnd)}
        headers = {"Authorization": f"Bearer {cust.token}"}
        sent = time.monotonic()
        if scheduled is not None:
            self.stats.lags.append((sent - scheduled) * 1000)
        self.pending[cmid] = sent  # before the POST: the socket may be faster than the 201
        self.stats.sent += 1
        try:
            r = await self.client.post("/api/v1/widget/messages", json=body, headers=headers)
        except Exception as exc:
            self.pending.pop(cmid, None)
            self.stats.error(type(exc).__name__, repr(exc))
            return
        if r.status_code != 201:
            self.pending.pop(cmid, None)
            self.stats.error(f"http_{r.status_code}", r.text)
            return
        self.stats.acks.append((time.monotonic() - sent) * 1000)

    async def _reply(self, conversation_id: int) -> None:
        cust = self.by_conversation.get(conversation_id)
        if cust is None or cust.operator is None:
            return
        _, token = self.operators[cust.operator]
        cmid = f"g{self.idx}-r{next(self.counter)}"
        self.reply_pending[cmid] = time.monotonic()
        self.stats.replies_sent += 1
        try:
            r = await self.client.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"client_msg_id": cmid, "text": self.rnd.choice(REPLIES)},
                headers={"Authorization": f"Bearer {token}"},
            )
        except Exception as exc:
            self.reply_pending.pop(cmid, None)
            self.stats.error("reply_" + type(exc).__name__, repr(exc))
            return
        if r.status_code != 201:
            self.reply_pending.pop(cmid, None)
            self.stats.error(f"reply_http_{r.status_code}", r.text)

    async def traffic(self, t0: float) -> None:
        """The measured phase: open-loop at a rate, or closed-loop senders."""
        cfg = self.cfg
        self.t0 = t0
        self.end = t0 + cfg["duration"]
        active = [c for c in self.customers if c.conversation_id is not None]
        self.by_conversation = {c.conversation_id: c for c in active}
        self.rnd.shuffle(active)
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        if cfg["concurrency"]:
            await self._closed_loop(active)
        else:
            await self._open_loop(active)
        # Let the last messages arrive; whatever is still pending afterwards counts as undelivered.
        deadline = time.monotonic() + cfg["drain"]
        while (self.pending or self.tasks) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)

    async def _open_loop(self, active: list[Customer]) -> None:
        cfg = self.cfg
        rate = cfg["rate"] / cfg["procs"]
        total = int(rate * cfg["duration"])
        offset = self.idx / cfg["rate"]  # interleave the processes' schedules
        for k in range(total):
            scheduled = self.t0 + offset + k / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(self.tasks) >= cfg["max_inflight"]:
                self.stats.skipped += 1  # the server is this far behind: do not pile on
                continue
            self._spawn(self._send(active[k % len(active)], scheduled))

    async def _closed_loop(self, active: list[Customer]) -> None:
        cfg = self.cfg
        senders = max(1, cfg["concurrency"] // cfg["procs"])
        limit = 200_000  # a hard cap on messages per process, whatever the speed

        async def sender(j: int) -> None:
            n = 0
            while time.monotonic() < self.end and self.stats.sent < limit:
                await self._send(active[(j + n * senders) % len(active)], None)
                n += 1

        await asyncio.gather(*(sender(j) for j in range(senders)))

    async def close(self) -> None:
        self.stopping = True
        sem = asyncio.Semaphore(200)

        async def close_one(ws: Any) -> None:
            async with sem:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 5)

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(close_one(ws) for ws in self.sockets)), 60)
        for task in self.readers:
            task.cancel()

    def result(self) -> dict[str, Any]:
        s = self.stats
        return {
            "latencies": s.latencies,
            "delivered_at": s.delivered_at,
            "acks": s.acks,
            "lags": s.lags,
            "reply_latencies": s.reply_latencies,
            "sent": s.sent,
            "skipped": s.skipped,
            "undelivered": len(self.pending),
            "replies_sent": s.replies_sent,
            "replies_undelivered": len(self.reply_pending),
            "errors": dict(s.errors),
            "first_errors": s.first_errors,
            "frames_operator": s.frames_operator,
            "frames_customer": s.frames_customer,
            "catchup_frames": s.catchup_frames,
            "dropped": s.dropped,
            "sockets": len(self.sockets),
        }

    async def run(self, commands: Any, results: Any) -> None:
        import httpx

        loop = asyncio.get_running_loop()

        async def command(wait: float) -> Any:
            return await loop.run_in_executor(None, commands.get, True, wait)

        limits = httpx.Limits(
            max_connections=self.cfg["http_pool"], max_keepalive_connections=self.cfg["http_pool"]
        )
        async with httpx.AsyncClient(
            base_url=self.cfg["base_url"], limits=limits, timeout=60.0
        ) as client:
            self.client = client
            info = await asyncio.wait_for(self.setup(client), self.cfg["phase_timeout"])
            results.put((self.idx, "setup", info))
            assert (await command(self.cfg["phase_timeout"]))[0] == "connect"
            info = await asyncio.wait_for(self.connect_all(), self.cfg["phase_timeout"])
            results.put((self.idx, "connected", info))
            cmd, t0 = await command(self.cfg["phase_timeout"])
            assert cmd == "go"
            await asyncio.wait_for(self.traffic(t0), self.cfg["duration"] + self.cfg["drain"] + 30)
            await self.close()
        results.put((self.idx, "done", self.result()))


def generator_main(cfg: dict[str, Any], commands: Any, results: Any) -> None:
    """Entry point of a load-generator process."""
    raise_fd_limit()
    gen = Generator(cfg)
    try:
        try:
            import uvloop

            uvloop.run(gen.run(commands, results))
        except ImportError:  # pragma: no cover
            asyncio.run(gen.run(commands, results))
    except BaseException:
        results.put((cfg["idx"], "error", traceback.format_exc()))


# --------------------------------------------------------------------------------------
# The parent: database, server, processes, numbers
# --------------------------------------------------------------------------------------


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024 / 1024
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gb": round(ram, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def okno_version() -> tuple[str, str]:
    """okno's version and the git commit of the copy that is imported (and thus served)."""
    from importlib.metadata import version

    import okno

    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        root = Path(okno.__file__).resolve().parent.parent
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        diff = subprocess.run(
            ["git", "-C", str(root), "diff", "HEAD", "--", "okno"],
            capture_output=True,
            timeout=10,
        ).stdout
        if commit and diff:  # uncommitted changes: name them by a hash of the diff
            commit += "+dirty." + hashlib.sha256(diff).hexdigest()[:8]
    return version("okno"), commit


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[k], 2)


async def recreate_pg_database(admin_url: str, name: str) -> str:
    import asyncpg

    if name in ("test", "postgres", "template0", "template1"):
        raise SystemExit(f"refusing to drop the database {name!r}")
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def seed(settings: Any, operators: int) -> list[int]:
    """Migrate, add the widget and the operators (what `okno channels add` / `users create` do).

    argon2 takes ~0.2 s per hash here, so all operators share one hash of the same password
    instead of 400 hashes (80 s); the stored users are otherwise what the CLI makes.
    """
    from unittest import mock

    from okno.channels import service as channels
    from okno.db import migrate
    from okno.db.session import Database
    from okno.operators import service as staff
    from okno.security.passwords import hash_password

    await migrate.upgrade(settings)
    one_hash = hash_password(PASSWORD)
    db = Database(settings)
    ids = []
    try:
        with mock.patch.object(staff, "hash_password", lambda _password: one_hash):
            async with db.transaction() as session:
                await channels.add_widget(session, key=WIDGET_KEY, name="Банк Пример — чат")
                for i in range(operators):
                    user = await staff.create_user(
                        session,
                        login=f"bench-op-{i + 1:04d}",
                        password=PASSWORD,
                        role="operator",
                        display_name=f"{NAMES[i % len(NAMES)]} ({i + 1})",
                        capacity=100,
                    )
                    ids.append(user.id)
    finally:
        await db.dispose()
    return ids


class Server:
    """`okno serve` as a child process with its own data directory."""

    def __init__(
        self, env: dict[str, str], port: int, log_path: Path, command: str = "", workers: int = 1
    ) -> None:
        self.port = port
        self.log_path = log_path
        self.log = log_path.open("wb")
        exe = shutil.which("okno")
        cmd = (
            shlex.split(command)
            if command
            else [exe]
            if exe
            else [sys.executable, "-m", "okno.cli"]
        )
        self.proc = subprocess.Popen(
            [*cmd, "serve", "--host", "127.0.0.1", "--port", str(port)]
            + (["--workers", str(workers)] if workers > 1 else []),
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"okno serve exited:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
                if r.status_code == 200:
                    return
            time.sleep(0.2)
        raise SystemExit(f"okno serve not ready after {timeout} s:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def problems(self) -> list[str]:
        self.log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in text if "error" in line.lower() or "Traceback" in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


class Sampler:
    """RSS and CPU of the server (all its processes with --workers) and of the generators."""

    def __init__(self, server_pid: int, client_pids: list[int]) -> None:
        import psutil

        self.server = psutil.Process(server_pid)
        self.clients = [psutil.Process(p) for p in client_pids]
        self.known: dict[int, Any] = {}
        self.peak_rss = 0
        self._task: asyncio.Task[None] | None = None

    def _server_tree(self) -> list[Any]:
        import psutil

        found = [self.server]
        with contextlib.suppress(psutil.Error):
            found += self.server.children(recursive=True)
        # Keep one Process object per pid: psutil compares CPU times per object.
        return [self.known.setdefault(p.pid, p) for p in found]

    def rss_mb(self) -> float:
        import psutil

        rss = 0
        for p in self._server_tree():
            with contextlib.suppress(psutil.Error):
                rss += p.memory_info().rss
        self.peak_rss = max(self.peak_rss, rss)
        return round(rss / 2**20, 1)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far: server, load generators, PostgreSQL, and the whole machine."""
        import psutil

        server = 0.0
        for p in self._server_tree():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                server += t.user + t.system
        clients = 0.0
        for p in self.clients:
            with contextlib.suppress(psutil.Error):
                ct = p.cpu_times()
                clients += ct.user + ct.system
        postgres = 0.0
        for p in psutil.process_iter(["name", "cpu_times"]):
            if p.info["name"] in ("postgres", "postmaster") and p.info["cpu_times"]:
                postgres += p.info["cpu_times"].user + p.info["cpu_times"].system
        m = psutil.cpu_times()
        busy = sum(m) - m.idle - getattr(m, "iowait", 0.0)
        return {"server": server, "clients": clients, "postgres": postgres, "all": busy}

    def start(self, seconds: float) -> None:
        async def loop() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                self.rss_mb()
                await asyncio.sleep(0.5)

        self._task = asyncio.create_task(loop())


async def probe_loop(base_url: str, *, until: float) -> list[float]:
    """GET /healthz every 50 ms: how long the server's event loop keeps requests waiting."""
    import httpx

    out: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while time.monotonic() < until and len(out) < 10_000:
            t = time.monotonic()
            with contextlib.suppress(httpx.HTTPError):
                await client.get("/healthz")
                out.append((time.monotonic() - t) * 1000)
            await asyncio.sleep(0.05)
    return out


def summarize_profile(path: Path, *, seconds: float, rate: int, top: int = 12) -> dict[str, Any]:
    """Where the server's samples went (py-spy raw output, idle samples excluded).

    Self time by package and by function, inclusive time by okno function, and samples per
    thread: the event loop's thread and the database driver's threads (aiosqlite runs each
    connection in a thread of its own).
    """
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_thread: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames:
            continue
        thread = "?"
        if frames[0].startswith("thread ("):
            name = frames.pop(0).partition(": ")[2]
            thread = "event loop" if name == "MainThread" else name.split(" ", 1)[-1].strip("()")
        if not frames:
            continue
        total += count
        by_thread[thread] += count
        leaf = _function(frames[-1])
        by_function[leaf] += count
        by_package[_package(frames[-1])] += count
        for f in {_function(f) for f in frames if "(okno/" in f and "okno/cli.py" not in f}:
            inclusive[f] += count
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "busy_cores": round(total / (rate * seconds), 2) if seconds else None,
        "by_thread": [(k, share(v)) for k, v in by_thread.most_common(top)],
        "self_by_package": [(k, share(v)) for k, v in by_package.most_common(top)],
        "self_by_function": [(k, share(v)) for k, v in by_function.most_common(top)],
        "inclusive_okno": [(k, share(v)) for k, v in inclusive.most_common(top)],
    }


def _function(frame: str) -> str:
    """A py-spy frame without its line number: "function (path/file.py)"."""
    name, _, where = frame.rpartition(" (")
    return f"{name} ({where.rstrip(')').rpartition(':')[0] or where})"


def _package(frame: str) -> str:
    """The package a py-spy frame ("function (path/file.py:123)") belongs to."""
    where = frame.rpartition("(")[2].rstrip(")").rpartition(":")[0]
    parts = where.split("/")
    if parts[0] == "okno" and len(parts) > 1:
        return "okno." + parts[1].removesuffix(".py")
    return parts[0].removesuffix(".py") or frame


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from okno.security import tokens
    from okno.settings import load_settings

    fd_limit = raise_fd_limit()
    load_before = os.getloadavg()[0]
    needed = args.customers + args.operators + 500
    if fd_limit < needed:
        raise SystemExit(f"the open-files limit is {fd_limit}; this run needs ~{needed}")
    if not 1 <= args.procs <= args.operators:
        raise SystemExit("--procs must be between 1 and --operators")
    if args.active > args.customers:
        raise SystemExit("--active cannot exceed --customers")

    data_dir = Path(tempfile.mkdtemp(prefix="okno-bench-"))
    secret = os.urandom(32).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OKNO_")}
    env.update(
        OKNO_DATA_DIR=str(data_dir),
        OKNO_SECRET_KEY=secret,
        OKNO_LOG_LEVEL="warning",
        OKNO_DB_POOL_SIZE=str(args.db_pool),
    )
    if args.workers > 1 or args.redis:
        env["OKNO_REDIS_URL"] = args.redis_url
    if args.database == "postgresql":
        db_version = await recreate_pg_database(args.pg_admin_url, PG_DATABASE)
        base = args.pg_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        env["OKNO_DATABASE_URL"] = f"{base}/{PG_DATABASE}"
    else:
        db_version = sqlite3.sqlite_version
    settings = load_settings(
        data_dir=data_dir,
        database_url=env.get("OKNO_DATABASE_URL", ""),
        secret_key=secret,
        log_level="warning",
    )
    t = time.monotonic()
    operator_ids = await seed(settings, args.operators)
    log(f"seeded {args.operators} operators and a widget in {time.monotonic() - t:.1f} s")

    port = free_port()
    server = Server(env, port, data_dir / "server.log", args.server_cmd, args.workers)
    procs: list[Any] = []
    profiler: asyncio.subprocess.Process | None = None
    try:
        server.wait_ready()
        base_url = f"http://127.0.0.1:{port}"
        # One operator signs in through the API (argon2 runs in the request); the others get
        # the same kind of token minted with the server's key, which saves 0.2 s each.
        import httpx

        t = time.monotonic()
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(
                f"{base_url}/api/v1/auth/token",
                json={"login": "bench-op-0001", "password": PASSWORD},
            )
        r.raise_for_status()
        login_ms = (time.monotonic() - t) * 1000
        op_tokens = [r.json()["access_token"]] + [
            tokens.issue(secret, typ=tokens.STAFF, subject=str(uid), ttl=timedelta(hours=2))
            for uid in operator_ids[1:]
        ]
        operators = list(zip(operator_ids, op_tokens, strict=True))

        sampler = Sampler(server.proc.pid, [])
        rss_start = sampler.rss_mb()
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        commands = []
        for i in range(args.procs):
            share = lambda n, i=i: n // args.procs + (1 if i < n % args.procs else 0)  # noqa: E731
            cfg = {
                "idx": i,
                "procs": args.procs,
                "seed": args.seed,
                "base_url": base_url,
                "ws_url": f"ws://127.0.0.1:{port}",
                "widget_key": WIDGET_KEY,
                "operators": operators[i :: args.procs],
                "customers": share(args.customers),
                "active": share(args.active),
                "rate": args.rate,
                "concurrency": args.concurrency,
                "duration": args.duration,
                "drain": args.drain,
                "reply_ratio": args.reply_ratio,
                "deflate": args.deflate,
                "http_pool": args.http_pool,
                "max_inflight": args.max_inflight,
                "phase_timeout": args.phase_timeout,
            }
            q = ctx.Queue()
            p = ctx.Process(target=generator_main, args=(cfg, q, results), daemon=True)
            p.start()
            procs.append(p)
            commands.append(q)
        sampler = Sampler(server.proc.pid, [p.pid for p in procs])

        def collect(stage: str) -> list[Any]:
            got: list[Any] = [None] * args.procs
            deadline = time.monotonic() + args.phase_timeout + args.duration + args.drain + 60
            while any(g is None for g in got):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"load generators did not finish {stage} in time")
                try:
                    idx, kind, payload = results.get(True, min(left, 5))
                except Exception:
                    if any(not p.is_alive() for p in procs):
                        raise SystemExit(f"a load generator died during {stage}") from None
                    continue
                if kind == "error":
                    raise SystemExit(f"load generator {idx} failed during {stage}:\n{payload}")
                if kind != stage:
                    raise SystemExit(f"load generator {idx}: expected {stage}, got {kind}")
                got[idx] = payload
            return got

        t = time.monotonic()
        setup = collect("setup")
        log(
            f"setup: {args.customers} sessions, {args.active} dialogs taken by operators "
            f"in {time.monotonic() - t:.1f} s"
        )
        rss_setup = sampler.rss_mb()
        for q in commands:
            q.put(("connect",))
        t = time.monotonic()
        connected = collect("connected")
        connect_s = time.monotonic() - t
        await asyncio.sleep(3)  # let the server settle before reading its memory
        rss_connected = sampler.rss_mb()
        log(
            f"connected {args.operators} operator + {args.customers} customer WebSockets in "
            f"{connect_s:.1f} s; server RSS {rss_connected} MB"
        )

        if args.profile:
            prof_path = data_dir / "profile.txt"
            profiler = await asyncio.create_subprocess_exec(
                "py-spy", "record", "--pid", str(server.proc.pid), "--format", "raw",
                "--rate", str(PROFILE_RATE), "--duration", str(int(args.duration)),
                "--threads", "--gil", "--subprocesses", "-o", str(prof_path),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )  # fmt: skip
        cpu0 = sampler.cpu()
        t0 = time.monotonic() + 1.0
        for q in commands:
            q.put(("go", t0))
        sampler.start(args.duration + 1.0)
        probes = await probe_loop(base_url, until=t0 + args.duration)
        await asyncio.sleep(max(0.0, t0 + args.duration - time.monotonic()))
        cpu1 = sampler.cpu()
        done = await asyncio.to_thread(collect, "done")
        rss_after = sampler.rss_mb()
    finally:
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()
        if profiler is not None:
            try:
                await asyncio.wait_for(profiler.wait(), 30)
            except TimeoutError:
                profiler.kill()
        problems = server.problems()
        server.stop()

    lat = [x for d in done for x in d["latencies"]]
    delivered_at = [x for d in done for x in d["delivered_at"]]
    in_window = [x for x in delivered_at if 0 <= x < args.duration]
    bins = Counter(int(x) for x in in_window)
    per_second = [bins.get(s, 0) for s in range(1, int(args.duration))]
    errors: Counter[str] = Counter()
    for d in done:
        errors.update(d["errors"])
    replies = [x for d in done for x in d["reply_latencies"]]
    cores = {k: round((cpu1[k] - cpu0[k]) / (args.duration + 1.0), 2) for k in cpu0}
    cores["others"] = round(
        cores["all"] - cores["server"] - cores["clients"] - cores["postgres"], 2
    )
    version, commit = okno_version()
    result: dict[str, Any] = {
        "name": NAME,
        "mode": args.mode,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "parameters": {
            "customers": args.customers,
            "active_dialogs": args.active,
            "operators": args.operators,
            "rate": args.rate,
            "concurrency": args.concurrency,
            "duration_s": args.duration,
            "procs": args.procs,
            "reply_ratio": args.reply_ratio,
            "deflate": args.deflate,
            "db_pool": args.db_pool,
            "workers": args.workers,
            "bus": "redis" if args.workers > 1 or args.redis else "memory",
            "max_inflight": args.max_inflight,
            "server_cmd": args.server_cmd or "okno",
        },
        "count": len(lat),
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "max_ms": round(max(lat), 2) if lat else None,
        "throughput_per_s": round(len(in_window) / args.duration, 1),
        "per_second_min": min(per_second) if per_second else 0,
        "per_second_max": max(per_second) if per_second else 0,
        "sent": sum(d["sent"] for d in done),
        "skipped": sum(d["skipped"] for d in done),
        "undelivered": sum(d["undelivered"] for d in done),
        "errors": dict(errors),
        "ack_p50_ms": pct([x for d in done for x in d["acks"]], 50),
        "ack_p99_ms": pct([x for d in done for x in d["acks"]], 99),
        "client_lag_p99_ms": pct([x for d in done for x in d["lags"]], 99),
        "healthz_p50_ms": pct(probes, 50),
        "healthz_p99_ms": pct(probes, 99),
        "healthz_max_ms": round(max(probes), 1) if probes else None,
        "replies": {
            "sent": sum(d["replies_sent"] for d in done),
            "count": len(replies),
            "undelivered": sum(d["replies_undelivered"] for d in done),
            "p50_ms": pct(replies, 50),
            "p99_ms": pct(replies, 99),
        },
        "connections": {
            "operators": len(operators),
            "customers": args.customers,
            "open": sum(d["sockets"] for d in done),
            "dropped": sum(d["dropped"] for d in done),
            "connect_s": round(connect_s, 1),
            "catchup_frames": sum(d["catchup_frames"] for d in done),
        },
        "server": {
            "rss_mb_start": rss_start,
            "rss_mb_setup": rss_setup,
            "rss_mb_connected": rss_connected,
            "rss_mb_peak": round(sampler.peak_rss / 2**20, 1),
            "rss_mb_after": rss_after,
            "cpu_cores": cores["server"],
            "login_ms": round(login_ms, 1),
            "log_problems": len(problems),
        },
        "clients_cpu_cores": cores["clients"],
        "postgres_cpu_cores": cores["postgres"],
        "machine_busy_cores": cores["all"],
        "other_processes_cpu_cores": cores["others"],
        "loadavg_before": round(load_before, 2),
        "database": args.database,
        "db_version": db_version,
        "version": version,
        "commit": commit,
        "machine": machine(),
    }
    if problems:
        log("server log problems (first 5):\n  " + "\n  ".join(p[:400] for p in problems[:5]))
    first_errors = [e for d in done for e in d["first_errors"]][:5]
    if first_errors:
        log("client errors (first 5):\n  " + "\n  ".join(first_errors))
    if profiler is not None:
        stderr = (await profiler.stderr.read()).decode(errors="replace") if profiler.stderr else ""
        prof = data_dir / "profile.txt"
        if prof.exists():
            summary = summarize_profile(prof, seconds=args.duration, rate=PROFILE_RATE)
            result["profile"] = summary
            kept = HERE / "profiles" / f"{args.mode}-{args.database}.txt"
            kept.parent.mkdir(exist_ok=True)
            shutil.copy(prof, kept)
            log(f"profile: {kept} ({summary['samples']} samples)")
        else:
            log(f"py-spy wrote no profile: {stderr.strip()[-500:]}")
    log(f"setup details: {setup}; connect details: {connected}")
    if args.keep:
        log(f"kept the data directory {data_dir}")
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
    return result


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def report(r: dict[str, Any]) -> str:
    s = r["server"]
    lines = [
        f"{r['mode']} on {r['database']}: {r['throughput_per_s']} msg/s delivered "
        f"(per second {r['per_second_min']}..{r['per_second_max']}), "
        f"{r['count']} messages, latency p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, "
        f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms",
        f"  POST ack p50 {r['ack_p50_ms']} ms p99 {r['ack_p99_ms']} ms; client lag p99 "
        f"{r['client_lag_p99_ms']} ms; GET /healthz meanwhile p50 {r['healthz_p50_ms']} ms, "
        f"p99 {r['healthz_p99_ms']} ms, max {r['healthz_max_ms']} ms",
        f"  sent {r['sent']}, skipped {r['skipped']}, undelivered {r['undelivered']}, errors {r['errors'] or 0}",
        f"  server RSS: start {s['rss_mb_start']} MB, connected {s['rss_mb_connected']} MB, "
        f"peak {s['rss_mb_peak']} MB",
        f"  CPU cores used: server {s['cpu_cores']}, load generators {r['clients_cpu_cores']}, "
        f"PostgreSQL {r['postgres_cpu_cores']}, other processes "
        f"{r['other_processes_cpu_cores']} (machine busy {r['machine_busy_cores']} of "
        f"{r['machine']['nproc']})",
    ]
    if r["replies"]["sent"]:
        rep = r["replies"]
        lines.append(
            f"  operator replies: {rep['count']} of {rep['sent']} delivered, "
            f"p50 {rep['p50_ms']} ms, p99 {rep['p99_ms']} ms"
        )
    if "profile" in r:
        prof = r["profile"]
        lines.append(
            f"  server profile: {prof['samples']} samples = {prof['busy_cores']} busy threads"
        )
        lines.append("  by thread (% of samples):")
        lines += [f"    {v:5.1f}  {k}" for k, v in prof["by_thread"]]
        lines.append("  self time by package:")
        lines += [f"    {v:5.1f}  {k}" for k, v in prof["self_by_package"]]
        lines.append("  self time by function:")
        lines += [f"    {v:5.1f}  {k}" for k, v in prof["self_by_function"]]
        lines.append("  inclusive time in okno functions:")
        lines += [f"    {v:5.1f}  {k}" for k, v in prof["inclusive_okno"]]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0], formatter_class=argparse.RawTextHelpFormatter
    )
    p.add_argument("mode", choices=sorted(PRESETS), help="preset: rate, max or connections")
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--pg-admin-url", default=PG_ADMIN_URL, help="where okno_bench is recreated")
    p.add_argument("--customers", type=int, help="widget customers with an open WebSocket")
    p.add_argument("--active", type=int, help="of them, customers with a dialog who write")
    p.add_argument("--operators", type=int, help="operators with an open WebSocket")
    p.add_argument("--rate", type=float, help="open-loop customer messages per second")
    p.add_argument("--concurrency", type=int, help="closed-loop senders (max mode)")
    p.add_argument("--duration", type=float, default=30, help="measured seconds (max 60)")
    p.add_argument("--drain", type=float, default=5, help="seconds to wait for late deliveries")
    p.add_argument("--procs", type=int, default=2, help="load-generator processes")
    p.add_argument("--reply-ratio", type=float, default=0.0, help="share operators answer")
    p.add_argument("--no-deflate", dest="deflate", action="store_false", help="no WS compression")
    p.add_argument("--http-pool", type=int, default=64, help="HTTP connections per process")
    p.add_argument(
        "--max-inflight",
        type=int,
        help="open POSTs per process before sends are skipped (default: --http-pool; more\n"
        "queue inside httpx, which then burns a core of its own)",
    )
    p.add_argument("--db-pool", type=int, default=10, help="OKNO_DB_POOL_SIZE of the server")
    p.add_argument(
        "--workers", type=int, default=1, help="server processes (okno serve --workers N)"
    )
    p.add_argument("--redis", action="store_true", help="use the Redis bus with one worker too")
    p.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/11",
        help="bus for --workers > 1 (pub/sub only; nothing is stored)",
    )
    p.add_argument("--phase-timeout", type=float, default=300, help="limit of setup/connect")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--server-cmd",
        default="",
        help="command that runs the server instead of `okno` (gets `serve --host --port`),\n"
        "e.g. to compare a variant: --server-cmd 'python my_variant.py'",
    )
    p.add_argument("--profile", action="store_true", help="sample the server with py-spy")
    p.add_argument("--keep", action="store_true", help="keep the data directory")
    p.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    args = p.parse_args(argv)
    for key, value in PRESETS[args.mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.max_inflight is None:
        args.max_inflight = args.http_pool
    if not 0 < args.duration <= 60:
        p.error("--duration must be in (0, 60]")
    if args.concurrency == 0 and args.rate <= 0:
        p.error("give --rate > 0 or --concurrency > 0")
    if args.concurrency and args.rate:
        args.rate = 0.0  # closed loop wins
    if args.active < 1 or args.customers < 1 or args.operators < 1:
        p.error("--customers, --active and --operators must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = asyncio.run(run(args))
    print(report(result), file=sys.stderr)
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    with args.out.open("a", encoding="utf-8") as f:
        f.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
