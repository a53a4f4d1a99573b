"""Load-balancer probes and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from okno.http import State
from okno.jobs.service import queue_stats

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (restart it if this fails)."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> JSONResponse:
    """Ready for traffic: the database answers, and Redis when it is configured."""
    checks: dict[str, str] = {}
    try:
        async with state.db.read() as session:
            await session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    if state.settings.redis_url:
        checks["redis"] = "ok" if await state.bus.ping() else "down"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


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
