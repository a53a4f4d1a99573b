"""The sign-in page's extra steps in real Chromium against a real ``okno serve``: the TOTP
second factor (set-up with a QR code and a key, then a code at every sign-in) and the
forced password change after an admin's reset. The phone is pyotp, fed the key the page
shows; the server's side of both is tested through the API in
tests/operators/test_sign_in_security.py.

A code is accepted once only (the step of the last accepted code is kept), one 30-second
step either side of the server's clock: :class:`Phone` hands out the earliest code the
server has not seen yet and, when that code's step has not begun, waits for the clock as
a person would wait for the next code.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pyotp
import pytest

from okno.operators import totp
from okno.security import sessions
from tests.builders import PASSWORD
from tests.e2e import browser as b
from tests.e2e.test_workspace import seeded, token
from tests.system import server as srv

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NEW_PASSWORD = "Rasp-berry-Field-42"


@pytest.fixture
def floor(prepared_data: b.Prepare) -> Iterator[srv.OknoServer]:
    """The personas (anna, igor, olga operators; sveta supervisor; root admin)."""
    with b.serving(prepared_data("staff", seeded)) as server:
        yield server


@pytest.fixture
async def login_page(floor: srv.OknoServer, chromium: Any) -> AsyncIterator[Any]:
    """A fresh browser profile that asked for the workspace and was sent to sign in."""
    context = await chromium.new_context(
        base_url=floor.url, viewport={"width": 1280, "height": 800}, locale="ru-RU"
    )
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.dialogs = b.watch_dialogs(page)
    page.errors = b.watch_errors(page)
    await page.goto(f"{floor.url}/")
    assert "/login" in page.url, page.url
    try:
        yield page
    finally:
        await context.close()


class Phone:
    """An authenticator app with the key typed in from the page."""

    def __init__(self, secret: str) -> None:
        self.totp = pyotp.TOTP(secret, interval=totp.STEP_SECONDS)
        self.used: int | None = None  # the step of the last code the server accepted

    def current(self) -> str:
        """The code one types to confirm the set-up: the one the app showed a moment ago
        (the server takes one step either side), so that the two codes after it are due
        without waiting up to half a minute for the clock; late in a step, when the server
        might already be in the next one, the code the app shows now."""
        now = time.time()
        step = int(now // totp.STEP_SECONDS)
        if totp.STEP_SECONDS - now % totp.STEP_SECONDS > 5:
            step -= 1
        self.used = step
        return self.totp.at(step * totp.STEP_SECONDS)

    async def fresh(self) -> str:
        """A code the server has not accepted yet: the current one, or the next step's,
        which the server takes one step early; waits for the clock when even that one is
        used."""
        assert self.used is not None
        step = max(self.used + 1, int(time.time() // totp.STEP_SECONDS))
        while step > int(time.time() // totp.STEP_SECONDS) + 1:
            await asyncio.sleep(totp.STEP_SECONDS - time.time() % totp.STEP_SECONDS + 0.2)
        self.used = step
        return self.totp.at(step * totp.STEP_SECONDS)

    def wrong(self) -> str:
        """Six digits that are no code of the steps the server would accept now."""
        now = int(time.time() // totp.STEP_SECONDS)
        valid = {self.totp.at(s * totp.STEP_SECONDS) for s in range(now - 2, now + 3)}
        return next(c for c in ("000000", "111111", "222222", "123456") if c not in valid)


def form(page: Any) -> Any:
    return page.locator("[data-okno=login]")


async def submit(page: Any, **fields: str) -> None:
    """Fill the named fields of the sign-in form and press «Войти»."""
    for name, value in fields.items():
        await form(page).locator(f"input[name={name}]").fill(value)
    button = form(page).locator("button[type=submit]")
    await button.click()
    await page.wait_for_function(
        "() => !document.querySelector('[data-okno=login] button[type=submit]').disabled"
    )


async def signed_in(page: Any) -> bool:
    """Whether the browser holds a session the API accepts (what the next page load sees)."""
    me = await page.request.get("/api/v1/me")
    return bool(me.ok)


async def has_session_cookie(page: Any) -> bool:
    return any(c["name"] == sessions.SESSION_COOKIE for c in await page.context.cookies())


async def in_the_workspace(page: Any, base_url: str) -> None:
    await page.wait_for_url(f"{base_url}/")
    await page.locator("[data-okno=conn][data-state=online]").wait_for()
    assert await page.locator("[data-okno=me]").inner_text() == "Анна"


async def test_a_second_factor_is_set_up_at_first_sign_in_then_asked_for_every_time(
    floor: srv.OknoServer, login_page: Any
) -> None:
    page = login_page
    root = token(floor, "root")
    required = httpx.put(
        f"{floor.url}/api/v1/security/two-factor-roles", json={"roles": ["operator"]}, headers=root
    )
    assert required.status_code == 200, required.text

    # The password is right, but operators must use a second factor: set it up first.
    await submit(page, login="anna", password=PASSWORD)
    enrol = page.locator("[data-okno=login-enrol]")
    await enrol.wait_for(state="visible")
    assert "Настройте второй фактор" in await enrol.inner_text()
    qr = page.locator("[data-okno=login-qr]")
    assert await qr.evaluate("img => img.complete && img.naturalWidth > 0")
    secret = (await page.locator("[data-okno=login-secret]").inner_text()).strip()
    assert len(secret) >= 16 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    # the QR code an app scans carries the same key, for this login
    src = await qr.get_attribute("src")
    assert src and src.startswith("data:image/svg+xml;base64,")
    uri = totp.provisioning_uri(secret, login="anna", issuer="okno")
    assert base64.b64decode(src.split(",", 1)[1]).decode() == totp.qr_svg(uri)
    assert await page.locator("[data-okno=login-otp]").is_visible()
    assert "/login" in page.url and not await has_session_cookie(page)

    phone = Phone(secret)
    await submit(page, otp=phone.current())
    note = page.locator("[data-okno=login-note]")
    assert "Второй фактор настроен" in await note.inner_text()
    assert await enrol.is_hidden()
    assert await form(page).locator("input[name=otp]").input_value() == ""
    assert "/login" in page.url and not await signed_in(page)

    # A wrong code: the page says so and nobody is signed in.
    await submit(page, otp=phone.wrong())
    error = page.locator("[data-okno=login-error]")
    assert "Код неверный или уже использован" in await error.inner_text()
    assert "/login" in page.url and not await signed_in(page)

    # The next code from the app signs in and the workspace it asked for opens.
    await form(page).locator("input[name=otp]").fill(await phone.fresh())
    await form(page).locator("button[type=submit]").click()
    await in_the_workspace(page, floor.url)

    # Signed out, the password alone is not enough: the page asks for the code.
    await page.locator("[data-okno=logout]").click()
    await page.wait_for_url("**/login?reason=signed_out")
    assert "Вы вышли из системы" in await page.locator("[data-okno=login-error]").inner_text()
    await submit(page, login="anna", password=PASSWORD)
    assert "Введите шестизначный код" in await note.inner_text()
    assert await page.locator("[data-okno=login-otp]").is_visible()
    assert await enrol.is_hidden()
    assert "/login" in page.url and not await signed_in(page)

    await form(page).locator("input[name=otp]").fill(await phone.fresh())
    await form(page).locator("button[type=submit]").click()
    await in_the_workspace(page, floor.url)
    assert page.errors == [] and page.dialogs == []


async def test_after_an_admins_reset_the_page_asks_for_a_new_password(
    floor: srv.OknoServer, login_page: Any
) -> None:
    page = login_page
    staff = httpx.get(f"{floor.url}/api/v1/users", headers=token(floor, "root"))
    assert staff.status_code == 200, staff.text
    olga = next(u["id"] for u in staff.json()["users"] if u["login"] == "olga")
    reset = httpx.post(
        f"{floor.url}/api/v1/users/{olga}/password-reset", headers=token(floor, "root")
    )
    assert reset.status_code == 200, reset.text
    temporary = reset.json()["temporary_password"]

    # The temporary password is right, but the page asks for a new one first.
    await submit(page, login="olga", password=temporary)
    change = page.locator("[data-okno=login-change]")
    await change.wait_for(state="visible")
    assert "Смените пароль" in await change.inner_text()
    assert "/login" in page.url and not await signed_in(page)

    # Two different entries, then a popular password: each refused with the reason.
    await submit(page, new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD + "x")
    error = page.locator("[data-okno=login-error]")
    assert "Пароли не совпадают" in await error.inner_text()
    await submit(page, new_password="Qwerty12345", new_password_again="Qwerty12345")
    assert "Пароль слишком простой" in await error.inner_text()
    assert "не из списка популярных" in await error.inner_text()
    assert await change.is_visible() and not await signed_in(page)

    # A good one: the password is changed and the page asks to sign in with it.
    await submit(page, new_password=NEW_PASSWORD, new_password_again=NEW_PASSWORD)
    note = page.locator("[data-okno=login-note]")
    assert "Пароль изменён. Войдите с новым паролем" in await note.inner_text()
    assert await change.is_hidden()
    assert await form(page).locator("input[name=password]").input_value() == ""
    assert not await signed_in(page)

    # The temporary password is gone; the new one opens the workspace.
    await submit(page, password=temporary)
    assert "Неверный логин или пароль" in await error.inner_text()
    assert await change.is_hidden() and not await signed_in(page)
    await form(page).locator("input[name=password]").fill(NEW_PASSWORD)
    await form(page).locator("button[type=submit]").click()
    await page.wait_for_url(f"{floor.url}/")
    await page.locator("[data-okno=conn][data-state=online]").wait_for()
    assert await page.locator("[data-okno=me]").inner_text() == "Ольга"
    assert page.errors == [] and page.dialogs == []
