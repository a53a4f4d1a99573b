"""Load-balancer probes and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from okno.conversations import clamd, scanning
from okno.http import State
from okno.jobs.service import queue_stats

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (restart it if this fails)."""
    return {"status": "ok"}


# Checks whose failure degrades okno but leaves it ready for traffic (see readyz).
DEGRADING = ("clamd",)
CLAMD_PING_SECONDS = 2.0


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    """Ready for traffic: the database answers, and Redis when it is configured: 503
    ``not ready`` otherwise.

    With an antivirus configured (``OKNO_CLAMD_ADDRESS``) clamd is asked ``PING`` too and
    its state shown under ``checks.clamd``; when it does not answer the answer is still
    200, with ``status: degraded``. Taking okno out of the load balancer because clamd is
    down would stop every customer chatting, although okno fails closed without it:
    customers' files are held until clamd is back (never served unscanned), staff
    uploads are refused with ``scanner_unavailable``, and text keeps flowing. So clamd
    down is something to alert on (``status`` = ``degraded``), not a reason to route
    traffic away."""
    checks: dict[str, str] = {}
    try:
        async with state.db.read() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    if state.settings.redis_url:
        checks["redis"] = "ok" if await state.bus.ping() else "down"
    address = scanning.scanner_of(state.settings)
    if address is not None:
        seconds = min(CLAMD_PING_SECONDS, state.settings.clamd_timeout_seconds)
        try:
            await clamd.ping(address, seconds=seconds)
            checks["clamd"] = "ok"
        except clamd.ScannerUnavailable:
            # no address or reason here: the probe is unauthenticated
            checks["clamd"] = "down"
    ready = all(v == "ok" for k, v in checks.items() if k not in DEGRADING)
    degraded = [k for k in DEGRADING if checks.get(k, "ok") != "ok"]
    status = "not ready" if not ready else "degraded" if degraded else "ready"
    body: dict[str, object] = {"status": status, "checks": checks}
    if degraded:
        body["degraded"] = degraded
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(state: State) -> Response:
    """Prometheus metrics; job queue figures are read from the database at scrape time."""
    m = state.metrics
    try:
        async with state.db.read() as session:
            stats = await queue_stats(session)
        m.job_depth.clear()
        m.job_age.clear()
        for queue, depth, age in stats:
            m.job_depth.labels(queue).set(depth)
            m.job_age.labels(queue).set(age)
    except Exception:
        pass  # still serve the in-process figures when the database is away
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)
