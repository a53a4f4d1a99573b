"""create_app(settings) -> FastAPI: wires storage, the bus, the hub, workers and routers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from okno import health
from okno import openapi as okno_openapi
from okno.analytics import api as analytics_api
from okno.bot import admin_api as bot_admin_api
from okno.bot import api as bot_api
from okno.bot import assist_api, flows_api
from okno.bot.service import knowledge_for
from okno.bus.factory import make_bus
from okno.channels import api as channels_api
from okno.channels import hooks
from okno.channels.mobile import api as mobile_api
from okno.channels.widget import api as widget_api
from okno.conversations import api as conversations_api
from okno.customers import api as customers_api
from okno.customers import verification_api
from okno.db import migrate
from okno.db.base import utcnow
from okno.db.session import Database
from okno.events import api as events_api
from okno.events.hub import Hub
from okno.http import AppState, BodyLimitMiddleware, install_error_handlers, session_cookie_header
from okno.jobs.registry import default_registry
from okno.jobs.worker import Worker
from okno.observability import Metrics, RequestMetricsMiddleware, configure_logging
from okno.operators import api as operators_api
from okno.operators import auth_api as operators_auth_api
from okno.operators import presence, revocation, tokens_api
from okno.operators import service as operators_service
from okno.replies import api as replies_api
from okno.routing import api as routing_api
from okno.security import audit_api, ratelimit, sessions
from okno.security import headers as security_headers
from okno.settings import Settings
from okno.web import pages

log = structlog.get_logger("okno.app")
PUBLIC_PREFIXES = ("/api/v1/widget/", "/api/v1/attachments/", "/widget.js")


class PublicCORS:
    """CORS for what the widget calls from a bank's site; staff endpoints get none."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PUBLIC_PREFIXES):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds security headers (see okno.security.headers), and the renewed session cookie
    when a request renewed it."""

    def __init__(self, app: ASGIApp, idle_minutes: int = 30) -> None:
        self.app = app
        self.idle_minutes = idle_minutes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers += security_headers.for_response(
                    scope["path"],
                    https=scope.get("scheme") == "https",
                    public=scope["path"].startswith(PUBLIC_PREFIXES),
                    present=names,
                )
                renewed = scope.get("state", {}).get("renewed_session")
                if renewed:
                    cookie = session_cookie_header(
                        sessions.SESSION_COOKIE,
                        renewed,
                        max_age=self.idle_minutes * 60,
                        secure=scope.get("scheme") == "https",
                    )
                    headers.append((b"set-cookie", cookie.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


async def _warm_knowledge_base(state: AppState) -> None:
    """Build the bot's index at start-up, in the background: with a large base the first
    customer to type would otherwise wait for it (tens of seconds at 10,000 articles)."""
    try:
        async with state.db.read() as session:
            await state.kb.current(session)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a fresh database without tables yet, say: built on first use
        log.warning("bot.warm_up_failed", error=type(exc).__name__)


async def _presence_heartbeat(state: AppState, stop: asyncio.Event) -> None:
    """Tell the database which operators are connected to this process, every few seconds."""
    checked = utcnow()
    while not stop.is_set():
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=presence.HEARTBEAT_SECONDS)
        connections = state.hub.staff_connections()
        if not connections:
            checked = utcnow()
            continue
        try:
            async with state.db.transaction() as session:
                active = await operators_service.active_user_ids(session, list(connections))
                await presence.heartbeat(session, user_ids=sorted(active))
                # accounts signed out everywhere (maybe by another process) since last round
                now = utcnow()
                revoked = await revocation.revoked_since(session, list(connections), checked)
                checked = now
        except Exception as exc:  # the database is away for a moment; try next round
            log.warning("presence.heartbeat_failed", error=type(exc).__name__)
            continue
        end_stale_sockets(connections, active, time.time(), revoked=revoked)


def end_stale_sockets(
    connections: dict[int, set[Any]],
    active: set[int],
    now: float,
    *,
    revoked: set[int] | frozenset[int] = frozenset(),
) -> None:
    """Close staff sockets of disabled accounts, of accounts signed out everywhere (maybe
    by another process) and of credentials that ran out: checking only when a socket
    opens would let it stream customer data long after."""
    for user_id, conns in connections.items():
        for conn in conns:
            if user_id not in active:
                conn.stop("account_disabled", 4401)
            elif user_id in revoked:
                conn.stop("token_revoked", 4401)
            elif conn.expires_at is not None and now >= conn.expires_at:
                conn.stop("token_expired", 4401)


def create_app(settings: Settings) -> FastAPI:
    """Build the okno application.

    ``settings`` decide the database (SQLite file or PostgreSQL), the bus (in-process or
    Redis), whether migrations run at start-up and whether this process also runs the job
    worker. Nothing connects until the app starts (lifespan).
    """
    configure_logging(settings)
    metrics = Metrics()
    db = Database(settings)
    bus = make_bus(settings)
    hub = Hub()
    state = AppState(
        settings=settings,
        db=db,
        bus=bus,
        hub=hub,
        metrics=metrics,
        signing_key=settings.signing_key(),
        kb=knowledge_for(settings.effective_database_url),
        limits=ratelimit.make_buckets(settings.redis_url, settings.redis_prefix),
    )

    async def publish(events: list[dict[str, Any]]) -> None:
        metrics.events.inc(len(events))
        await bus.publish(events)

    db.publish = publish
    bus.subscribe(hub.dispatch)
    bus.on_gap(hub.resync_all)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await migrate.upgrade(settings)
        await bus.start()
        stop = asyncio.Event()
        worker_task = None
        if settings.worker_in_process:
            worker = Worker(db, settings, default_registry())
            state.worker = worker
            worker_task = asyncio.create_task(worker.run_forever(stop))
        heartbeat_task = asyncio.create_task(_presence_heartbeat(state, stop))
        warm_task = asyncio.create_task(_warm_knowledge_base(state))
        log.info(
            "app.started",
            database=db.dialect,
            bus=type(bus).__name__,
            worker=settings.worker_in_process,
        )
        try:
            yield
        finally:
            stop.set()
            warm_task.cancel()
            heartbeat_task.cancel()
            for task in (warm_task, heartbeat_task):
                with suppress(asyncio.CancelledError, Exception):
                    await task
            if worker_task:
                with suppress(Exception):
                    await asyncio.wait_for(worker_task, timeout=10)
            await bus.stop()
            await state.limits.close()
            await db.dispose()
            log.info("app.stopped")

    app = FastAPI(
        title="okno",
        version="0.1.0",
        description="On-premise omnichannel customer communication for banks.",
        lifespan=lifespan,
    )
    app.state.okno = state
    install_error_handlers(app)
    okno_openapi.install(app)  # the document states okno's one error shape
    for router in (
        operators_api.router,
        operators_auth_api.router,
        tokens_api.router,
        conversations_api.router,
        events_api.router,
        widget_api.router,
        mobile_api.router,
        channels_api.router,
        hooks.router,
        replies_api.router,
        customers_api.router,
        verification_api.router,
        analytics_api.router,
        analytics_api.reports,
        routing_api.router,
        bot_api.router,
        flows_api.router,
        bot_admin_api.router,
        assist_api.router,
        audit_api.router,
        health.router,
        pages.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(pages.STATIC)), name="static")
    # sized by the largest file allowed: a per-type limit may be above OKNO_MAX_ATTACHMENT_MB
    app.add_middleware(BodyLimitMiddleware, limit=settings.largest_attachment_bytes + 256 * 1024)
    app.add_middleware(ratelimit.CustomerRateLimit)  # inside CORS: the widget reads its 429
    app.add_middleware(PublicCORS)
    app.add_middleware(SecurityHeaders, idle_minutes=settings.session_idle_minutes)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` and ``okno serve --workers N``: every worker
    process builds its app from the same ``OKNO_*`` environment."""
    from okno.settings import load_settings

    return create_app(load_settings())
