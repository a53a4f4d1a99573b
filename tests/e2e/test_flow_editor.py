"""The flow editor on /bot (tab "Сценарии") in real Chromium against ``okno serve`` with the
demo flows and directory: the admin opens a flow, sees its steps drawn, changes a step's
text and saves (version 2 in the history); a save that points a button at a missing step is
refused with the step named and changes nothing. Screenshot ``flow-editor.png`` is used in
docs/flows.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from okno.bot.text import DATA
from tests.builders import PASSWORD
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def demo_flows(folder: Path) -> None:
    seeded(folder)
    env = srv.okno_env(folder)
    for command, name in (("flows", "demo_flows.yaml"), ("places", "demo_places.csv")):
        out = srv.run_cli([command, "import", str(DATA / name), "--json"], env)
        assert json.loads(out.stdout)["created"] > 0


@pytest.fixture
def bank(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    with b.serving(prepared_data("demo-flows", demo_flows)) as server:
        yield server


async def test_admin_edits_a_flow_and_a_broken_one_is_refused(
    bank: srv.OknoServer, chromium: Any
) -> None:
    page = await b.staff_page(chromium, bank.url, "root", PASSWORD, path="/bot")
    await page.locator("[data-okno=bot-tabs] [data-section=flows]").click()
    await page.locator("[data-okno=flows] tr[data-flow=refund-time]").click()
    steps = page.locator("[data-okno=flow-diagram] .flow-step")
    await steps.first.wait_for()
    # drawn from the start along the buttons
    assert await steps.first.get_attribute("data-step") == "how-paid"
    assert "Картой в магазине" in await steps.first.inner_text()
    assert await steps.count() == 7
    assert "В справочнике: 26" in await page.locator("[data-okno=places-total]").inner_text()

    box = page.locator("[data-okno=flow-yaml]")
    text = await box.input_value()
    await box.fill(
        text.replace("обычно приходит за 3–7 рабочих дней", "приходит за 3–5 рабочих дней")
    )
    await page.locator("[data-okno=flow-save]").click()
    card = page.locator("[data-okno=flow-diagram] [data-step=card-shop]")
    await card.filter(has_text="приходит за 3–5 рабочих дней").wait_for()
    await page.locator("[data-okno=flow-history-open]").click()
    rows = page.locator("[data-okno=flow-history] tbody tr")
    await rows.first.wait_for()
    assert (await rows.first.inner_text()).split("\t")[:2] == ["2", "Админ"]
    await page.screenshot(path=b.shot("flow-editor.png"), full_page=False)

    # a button pointing at a step that does not exist: refused, the step named
    broken = (await box.input_value()).replace("next: late", "next: too-late")
    await box.fill(broken)
    await page.locator("[data-okno=flow-save]").click()
    error = page.locator("[data-okno=flow-error]")
    await error.filter(has_text="too-late").wait_for()
    assert "wait-more" in await error.inner_text()
    assert await card.filter(has_text="3–5").count() == 1  # the saved version is unchanged
    assert page.errors == []
