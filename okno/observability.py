"""Structured JSON logs and Prometheus metrics.

Logs never carry message text or personal data at info level: events name ids, kinds,
codes and durations only, so they can go to a SIEM as they are. As a second line of
defence every string that reaches a log line is passed through the personal-data masker
(``mask_personal_data``, ``MaskPersonalData``).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from okno.security import masking, redact
from okno.settings import Settings

_configured = False


def configure_logging(settings: Settings) -> None:
    """Route structlog and stdlib logging to stdout as JSON (or plain text)."""
    global _configured
    level = getattr(logging, settings.log_level.upper())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact.redact_secrets,  # credentials out: tokens, passwords, bot tokens in URLs
        mask_personal_data,  # last before rendering: tracebacks are text by now
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=False,
    )
    if not _configured:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(
            logging.Formatter('{"level":"%(levelname)s","logger":"%(name)s","event":"%(message)s"}')
        )
        handler.addFilter(redact.RedactSecrets())
        handler.addFilter(MaskPersonalData())
        root = logging.getLogger()
        root.handlers[:] = [handler]
        # uvicorn's loggers keep their own handlers (set after this runs): filter at the
        # loggers, where uvicorn's logging config leaves filters in place
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).addFilter(redact.RedactSecrets())
            logging.getLogger(name).addFilter(MaskPersonalData())
        root.setLevel(logging.WARNING)
        _configured = True


def mask_personal_data(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: every string in the event (nested ones, the formatted
    traceback) with card, phone, passport, INN, SNILS, account numbers and e-mails masked.

    okno's own log lines name ids, never texts; this is the second line of defence for
    what slips through: an exception quoting its input, a library's message, a future
    log call that passes a text by mistake.
    """
    return {key: masking.value(value) for key, value in event_dict.items()}


class MaskPersonalData(logging.Filter):
    """The same for stdlib logging records (libraries, uvicorn): the message with its
    arguments applied, and the traceback, masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = masking.text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = masking.text(record.exc_text)
        if record.stack_info:
            record.stack_info = masking.text(record.stack_info)
        return True


class Metrics:
    """One registry per app, so several apps (tests) never clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_in = Counter(
            "okno_messages_in", "Customer messages stored", ["channel"], registry=r
        )
        self.messages_out = Counter(
            "okno_messages_out", "Staff messages stored", ["channel"], registry=r
        )
        self.ws_connections = Gauge(
            "okno_websocket_connections", "Open WebSocket connections", ["kind"], registry=r
        )
        self.job_depth = Gauge(
            "okno_job_queue_depth", "Due jobs waiting to run", ["queue"], registry=r
        )
        self.job_age = Gauge(
            "okno_job_oldest_age_seconds", "Age of the oldest due job", ["queue"], registry=r
        )
        self.events = Counter("okno_events_published", "Events published", registry=r)
        self.request_seconds = Histogram(
            "okno_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


class RequestMetricsMiddleware:
    """Times each HTTP request by its route template and logs one line without bodies."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.log = structlog.get_logger("okno.http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_seconds.labels(scope["method"], template, str(status)).observe(
                elapsed
            )
            if status >= 500:
                self.log.error(
                    "http.request",
                    method=scope["method"],
                    route=template,
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )
            elif status >= 400:
                self.log.info(
                    "http.request",
                    method=scope["method"],
                    route=template,
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )
            else:
                self.log.debug(
                    "http.request",
                    method=scope["method"],
                    route=template,
                    status=status,
                    ms=round(elapsed * 1000, 1),
                )
