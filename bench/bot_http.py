"""As-you-type suggestions over HTTP with a 10,000-article knowledge base.

Usage:
    python bench/bot_http.py                       # 10,000 articles, 2,000 requests, 1 and 8 clients
    python bench/bot_http.py --articles 1000 --requests 500 --clients 1,4

One run starts its own ``okno serve`` on 127.0.0.1 with a fresh data directory (SQLite),
imports the demo knowledge base grown to ``--articles`` with the same generator as
``bench/bot_eval.py --latency`` (``okno kb import``, not timed), opens a widget session, and
then sends ``GET /api/v1/bot/suggest?q=…`` with prefixes of the dev-set phrasings as a
customer types them (3 letters and more), first one request at a time, then with several
clients at once (closed loop: each sends again when answered). Latency is from sending the
request to having the whole JSON body; the first 50 requests warm up and are not counted.
It prints p50/p95/p99 per concurrency and appends one JSON line to ``results.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bot_eval import load_entries, synthetic_base  # noqa: E402
from message_path import Server, free_port, machine, okno_version, pct  # noqa: E402

WARMUP = 50


def prefixes(rng: random.Random, phrasings: list[str], count: int) -> list[str]:
    """What customers have typed when the widget asks: a prefix of 3+ letters of a real
    phrasing, cut at a random point (as keys arrive)."""
    out = []
    while len(out) < count:
        text = rng.choice(phrasings)
        if len(text) < 3:
            continue
        out.append(text[: rng.randint(3, min(len(text), 60))])
    return out


def write_kb(path: Path, size: int) -> int:
    entries = synthetic_base(load_entries(), size)
    articles = [
        {
            "id": e.article_id,
            "title": e.title[:300],
            "questions": list(e.questions),
            "answer": e.answer,
            "topic": e.topic,
        }
        for e in entries
    ]
    path.write_text(yaml.safe_dump({"articles": articles}, allow_unicode=True), encoding="utf-8")
    return len(articles)


def cli(env: dict[str, str], *args: str) -> None:
    import subprocess

    exe = shutil.which("okno")
    cmd = [exe] if exe else [sys.executable, "-m", "okno.cli"]
    done = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"okno {' '.join(args)} failed:\n{done.stderr}")


async def measure(
    base_url: str, token: str, queries: list[str], clients: int
) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue = list(queries)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, timeout=10, limits=limits) as http:

        async def one_client() -> None:
            nonlocal errors
            while queue:
                q = queue.pop()
                started = time.perf_counter()
                response = await http.get(
                    "/api/v1/bot/suggest", params={"q": q, "limit": 5}, headers=headers
                )
                response.json()
                took = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    errors += 1
                latencies.append(took)

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies, errors


async def run(args: argparse.Namespace) -> dict[str, Any]:
    phrasings = [
        p["text"]
        for p in yaml.safe_load((HERE / "bot_eval" / "phrasings.yaml").read_text("utf-8"))[
            "phrasings"
        ]
    ]
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="okno-bot-http-"))
    env = {**os.environ, "OKNO_DATA_DIR": str(work / "data"), "OKNO_LOG_LEVEL": "warning"}
    env.pop("OKNO_DATABASE_URL", None)
    kb = work / "kb.yaml"
    started = time.perf_counter()
    count = write_kb(kb, args.articles)
    cli(env, "migrate")
    cli(env, "channels", "add", "widget", "--key", "bench", "--name", "Bench", "--bot")
    cli(env, "kb", "import", str(kb))
    print(f"seeded {count} articles in {time.perf_counter() - started:.0f} s", flush=True)
    port = free_port()
    server = Server(env, port, work / "server.log")
    try:
        server.wait_ready(120)
        base = f"http://127.0.0.1:{port}"
        session = httpx.post(
            f"{base}/api/v1/widget/sessions", json={"widget_key": "bench"}, timeout=10
        )
        session.raise_for_status()
        token = session.json()["session_token"]
        # the first request builds the server's index of the base (not timed)
        t0 = time.perf_counter()
        httpx.get(
            f"{base}/api/v1/bot/suggest",
            params={"q": "карта"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        ).raise_for_status()
        build_s = time.perf_counter() - t0
        print(f"index built on first use in {build_s:.1f} s", flush=True)
        levels = []
        for clients in args.clients:
            queries = prefixes(rng, phrasings, args.requests + WARMUP)
            lat, errors = await measure(base, token, queries, clients)
            lat = lat[WARMUP:]
            level = {
                "clients": clients,
                "count": len(lat),
                "errors": errors,
                "p50_ms": pct(lat, 50),
                "p95_ms": pct(lat, 95),
                "p99_ms": pct(lat, 99),
                "max_ms": round(max(lat), 2),
                "per_second": round(len(lat) / (sum(lat) / 1000 / clients), 1),
            }
            levels.append(level)
            print(
                f"{clients:>3} client(s): p50 {level['p50_ms']} ms, p95 {level['p95_ms']} ms, "
                f"p99 {level['p99_ms']} ms, max {level['max_ms']} ms, "
                f"~{level['per_second']}/s, errors {errors}",
                flush=True,
            )
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    version, commit = okno_version()
    return {
        "name": "bot_http_suggest",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "version": version,
        "commit": commit,
        "machine": machine(),
        "parameters": {"articles": count, "requests": args.requests, "seed": args.seed},
        "first_use_build_s": round(build_s, 1),
        "levels": levels,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=2000, help="measured per level")
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 8],
        help="concurrency levels, e.g. 1,8",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument("--out", type=Path, default=HERE / "results.jsonl")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    with args.out.open("a", encoding="utf-8") as f:
        f.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
