"""Shared by the browser tests: Chromium launch options, signed-in staff pages, the
screenshot folder, and a spy on browser notifications."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests import services
from tests.system import server as srv

# ``prepared_data(name, build)`` (tests/e2e/conftest.py): this test's copy of a data directory
# that ``build(folder)`` prepared once per session
Prepare = Callable[[str, Callable[[Path], object]], Path]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

# Records every browser notification the page shows (title and body), then shows it as
# usual: the test asserts what the operator would see pop up on their desktop.
NOTIFICATION_SPY = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__oknoNotifications = [];
  class Spy extends Real {
    constructor(title, options) {
      window.__oknoNotifications.push({ title, body: (options && options.body) || "" });
      super(title, options);
    }
  }
  window.Notification = Spy;
})();
"""


# Content-Security-Policy violations seen by any page of the current test (the autouse
# fixture in conftest.py fails the test on any): a page whose policy blocks its own
# script or style is broken even when the part the test looks at works.
CSP_VIOLATIONS: list[str] = []


def _is_csp_violation(text: str) -> bool:
    return "Content Security Policy" in text or "Content-Security-Policy" in text


async def launch(pw: Any) -> Any:
    """Chromium whose every browser context reports CSP violations into CSP_VIOLATIONS."""
    browser = await pw.chromium.launch(
        executable_path=services.require_chromium(), args=CHROMIUM_ARGS
    )
    original = browser.new_context

    async def new_context(*args: Any, **kwargs: Any) -> Any:
        context = await original(*args, **kwargs)

        def on_console(message: Any) -> None:
            if _is_csp_violation(message.text):
                CSP_VIOLATIONS.append(message.text)

        context.on("console", on_console)
        return context

    browser.new_context = new_context
    return browser


def watch_dialogs(page: Any) -> list[str]:
    """alert()/confirm() texts the page tried to open (an XSS would open one)."""
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))
    return seen


def watch_errors(page: Any) -> list[str]:
    """Uncaught script errors and Content-Security-Policy violations: a page that throws
    or whose policy blocks its own code is broken even if it looks fine."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: errors.append(f"CSP: {m.text}") if _is_csp_violation(m.text) else None,
    )
    return errors


async def staff_page(
    browser: Any, base_url: str, login: str, password: str, path: str = "/"
) -> Any:
    """A fresh browser profile (own cookies) signed in through the sign-in form."""
    context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="ru-RU")
    await context.grant_permissions(["notifications"], origin=base_url)
    await context.add_init_script(NOTIFICATION_SPY)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.dialogs = watch_dialogs(page)
    page.errors = watch_errors(page)
    await page.goto(f"{base_url}{path}")
    assert "/login" in page.url, page.url  # not signed in yet: sent to the sign-in page
    form = page.locator("[data-okno=login]")
    await form.locator("input[name=login]").fill(login)
    await form.locator("input[name=password]").fill(password)
    await form.locator("button[type=submit]").click()
    await page.wait_for_url(f"{base_url}{path}")
    return page


async def notifications(page: Any) -> list[dict[str, str]]:
    shown: list[dict[str, str]] = await page.evaluate("window.__oknoNotifications || []")
    return shown


def shot(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / name)


async def customer_page(browser: Any, base_url: str, widget_key: str) -> Any:
    """The demo bank page in a customer's own browser profile, the chat window open."""
    context = await browser.new_context(viewport={"width": 1280, "height": 860}, locale="ru-RU")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.dialogs = watch_dialogs(page)
    page.errors = watch_errors(page)
    await page.goto(f"{base_url}/demo?key={widget_key}")
    await page.locator("[data-okno=bubble]").click()
    await page.locator("[data-okno=window]").wait_for(state="visible")
    return page


async def customer_types(page: Any, text: str) -> None:
    box = page.locator("[data-okno=input]")
    await box.fill(text)
    await box.press("Enter")


def widget_messages(page: Any, author: str | None = None) -> Any:
    selector = "[data-okno=message]" + (f"[data-author={author}]" if author else "")
    return page.locator(selector)


@contextmanager
def serving(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[srv.OknoServer]:
    """``okno serve`` on a seeded data directory, killed (-9) afterwards; its log is printed
    so a failing browser test shows what the server said."""
    services.require_chromium()
    server = srv.OknoServer(data_dir, secret_key=srv.SECRET_KEY, extra_env=extra_env)
    server.start()
    try:
        yield server
    finally:
        server.kill9()
        print(server.log_tail())
