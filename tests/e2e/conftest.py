"""Fixtures of the browser tests: seeded data directories, a seeded ``okno serve`` process
and a Chromium page.

Preparing a data directory (migrations, staff, widgets, knowledge bases imported by the CLI)
costs seconds; each kind is prepared once per session and every test gets its own copy, so
tests stay independent of each other (own database, own server) without paying for it
each time.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import services
from tests.e2e import browser as b
from tests.system import server as srv


@pytest.fixture(autouse=True)
def no_csp_violations() -> Iterator[None]:
    """Every page of every browser test runs under its Content-Security-Policy without a
    violation (collected from the browser console by ``browser.launch``)."""
    b.CSP_VIOLATIONS.clear()
    yield
    assert b.CSP_VIOLATIONS == [], b.CSP_VIOLATIONS


@pytest.fixture(scope="session")
def data_templates() -> dict[str, Path]:
    """Data directories prepared once per session, by name."""
    return {}


@pytest.fixture
def prepared_data(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, data_templates: dict[str, Path]
) -> b.Prepare:
    """``prepare(name, build)`` -> ``tmp_path`` holding a copy of the data directory that
    ``build(folder)`` prepared (once per session for each ``name``)."""

    def prepare(name: str, build: Callable[[Path], object]) -> Path:
        services.require_chromium()
        template = data_templates.get(name)
        if template is None:
            template = tmp_path_factory.mktemp(f"data-{name}")
            build(template)
            data_templates[name] = template
        for item in template.iterdir():
            if item.is_dir():
                shutil.copytree(item, tmp_path / item.name, dirs_exist_ok=True)
            else:
                shutil.copy2(item, tmp_path / item.name)
        return tmp_path

    return prepare


@pytest.fixture
def okno(tmp_path: Path, prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """Operator ``anna`` and widget ``acme``, created by the CLI."""
    prepared_data("cli-seeded", lambda folder: srv.seed(srv.okno_env(folder)))
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
