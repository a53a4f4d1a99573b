"""The /bot page over HTTP: supervisors and admins get it (supervisors marked read-only),
operators are refused; the staff navigation links it for those who may open it."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.web.test_pages import boot_of, get, sign_in


def test_admins_and_supervisors_get_the_bot_page_operators_do_not(client: TestClient) -> None:
    sign_in(client, "root")
    page = get(client, "/bot")
    assert page.status_code == 200
    assert boot_of(page)["me"]["role"] == "admin"
    assert "/static/js/bot.js" in page.text and 'data-okno="read-only"' not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]

    sign_in(client, "sveta")
    page = get(client, "/bot")
    assert page.status_code == 200 and 'data-okno="read-only"' in page.text
    assert 'href="/bot"' in get(client, "/supervisor").text

    sign_in(client, "anna")
    assert get(client, "/bot").status_code == 403
    assert 'href="/bot"' not in get(client, "/").text


def test_without_a_session_the_bot_page_sends_to_sign_in(client: TestClient) -> None:
    response = get(client, "/bot")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/bot"
