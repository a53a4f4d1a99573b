"""Fixtures of the browser tests: a seeded ``okno serve`` process and a Chromium page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.e2e import browser as b
from tests.system import server as srv


@pytest.fixture
def okno(tmp_path: Path) -> Iterator[srv.OknoServer]:
    services.require_chromium()
    srv.seed(srv.okno_env(tmp_path))
    with b.serving(tmp_path) as server:
        yield server


@pytest.fixture
async def chromium() -> AsyncIterator[Any]:
    """A Chromium browser for tests that open several profiles (customer and staff)."""
    services.require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await b.launch(pw)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(okno: srv.OknoServer) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await b.launch(pw)
        context = await browser.new_context(viewport={"width": 1280, "height": 860})
        page = await context.new_page()
        page.set_default_timeout(15_000)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.dialogs = dialogs
        try:
            yield page
        finally:
            await browser.close()
