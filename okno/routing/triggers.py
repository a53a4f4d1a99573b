"""Asking for a dispatch pass, importable from any domain (it depends on jobs only): a
dialog starts waiting, a dialog closes, an operator comes online."""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession

from okno.jobs import service as jobs

DISPATCH = "routing.dispatch"


async def request_dispatch(session: AsyncSession) -> None:
    """A dispatch pass after this transaction commits, deduplicated per 250 ms: a burst of
    arrivals costs one pass, and the watchdog covers anything that falls between."""
    bucket = int(time.time() * 4)
    await jobs.enqueue(
        session, kind=DISPATCH, queue="routing", priority=0, dedup_key=f"{DISPATCH}:{bucket}"
    )
