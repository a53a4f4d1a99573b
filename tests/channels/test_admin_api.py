"""Admins change a widget's settings and key, supervisors only its texts; customers see
them; operators may not change them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from okno.settings import Settings
from tests.builders import Staff, bearer, staff_token


def test_admin_sets_greeting_and_info_message_customers_see(
    client: TestClient, staff: Staff
) -> None:
    root = staff_token(client, "root")
    response = client.patch(
        f"/api/v1/channels/{staff.widget_id}",
        json={"greeting": "Добрый день!", "info_message": "Высокая нагрузка, ответим чуть позже"},
        headers=bearer(root),
    )
    assert response.status_code == 200, response.text
    shown = client.get("/api/v1/widget/config?key=acme").json()
    assert shown["greeting"] == "Добрый день!"
    assert shown["info_message"] == "Высокая нагрузка, ответим чуть позже"


def test_bad_colour_and_origin_are_refused(client: TestClient, staff: Staff) -> None:
    root = staff_token(client, "root")
    for body, code in (
        ({"color": "red"}, "invalid_color"),
        ({"allowed_origins": ["bank.ru"]}, "invalid_origin"),
    ):
        response = client.patch(
            f"/api/v1/channels/{staff.widget_id}", json=body, headers=bearer(root)
        )
        assert response.status_code == 400 and response.json()["code"] == code


def test_operator_cannot_change_channels(client: TestClient, staff: Staff) -> None:
    anna = staff_token(client, "anna")
    response = client.patch(
        f"/api/v1/channels/{staff.widget_id}", json={"greeting": "x"}, headers=bearer(anna)
    )
    assert response.status_code == 403
    assert client.get("/api/v1/channels", headers=bearer(anna)).status_code == 403


def test_origin_list_blocks_other_sites_and_switched_off_widget_stops(
    client: TestClient, staff: Staff
) -> None:
    root = staff_token(client, "root")
    client.patch(
        f"/api/v1/channels/{staff.widget_id}",
        json={"allowed_origins": ["https://bank.example"]},
        headers=bearer(root),
    )
    ok = client.post(
        "/api/v1/widget/sessions",
        json={"widget_key": "acme"},
        headers={"Origin": "https://bank.example"},
    )
    assert ok.status_code == 200
    evil = client.post(
        "/api/v1/widget/sessions",
        json={"widget_key": "acme"},
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 403 and evil.json()["code"] == "origin_not_allowed"
    client.patch(
        f"/api/v1/channels/{staff.widget_id}", json={"is_active": False}, headers=bearer(root)
    )
    token = ok.json()["session_token"]
    off = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": "x1", "text": "Алло"},
        headers=bearer(token),
    )
    assert off.status_code == 401 and off.json()["code"] == "widget_disabled"
    assert client.post("/api/v1/widget/sessions", json={"widget_key": "acme"}).status_code == 404


def test_open_widgets_get_the_new_info_message_at_once(client: TestClient, staff: Staff) -> None:
    from tests.builders import widget_session

    root = staff_token(client, "root")
    token = widget_session(client)["session_token"]
    with (
        client.websocket_connect(f"/api/v1/widget/ws?token={token}") as widget,
        client.websocket_connect(f"/api/v1/ws?token={root}") as staff_ws,
    ):
        widget.receive_json()
        staff_ws.receive_json()
        client.patch(
            f"/api/v1/channels/{staff.widget_id}",
            json={"info_message": "Технические работы до 23:00"},
            headers=bearer(root),
        )
        event = widget.receive_json()
        assert event["type"] == "widget.updated" and event["seq"] is None
        assert event["payload"]["widget"]["info_message"] == "Технические работы до 23:00"
        # staff do not get widget broadcasts: the next thing they see is a real event
        client.put("/api/v1/me/presence", json={"status": "break"}, headers=bearer(root))
        assert staff_ws.receive_json()["type"] == "operator.presence_changed"


def test_supervisor_edits_widget_texts_only(client: TestClient, staff: Staff) -> None:
    sveta = staff_token(client, "sveta")
    url = f"/api/v1/channels/{staff.widget_id}"
    response = client.patch(
        url,
        json={"greeting": "Здравствуйте!", "info_message": "Сбой в приложении, чиним"},
        headers=bearer(sveta),
    )
    assert response.status_code == 200, response.text
    shown = client.get("/api/v1/widget/config?key=acme").json()
    assert (shown["greeting"], shown["info_message"]) == (
        "Здравствуйте!",
        "Сбой в приложении, чиним",
    )
    for body in (
        {"color": "#000000"},
        {"key": "other-key"},
        {"allowed_origins": ["https://bank.example"]},
        {"greeting": "Привет", "is_active": False},
        {"name": "Банк"},
    ):
        refused = client.patch(url, json=body, headers=bearer(sveta))
        assert refused.status_code == 403, body
        assert refused.json()["code"] == "forbidden_role"
    shown = client.get("/api/v1/widget/config?key=acme").json()
    assert shown["greeting"] == "Здравствуйте!" and shown["color"] == "#1f6feb"


def test_supervisor_reads_the_channel_list_without_admin_settings(
    client: TestClient, staff: Staff
) -> None:
    root, sveta = staff_token(client, "root"), staff_token(client, "sveta")
    client.patch(
        f"/api/v1/channels/{staff.widget_id}",
        json={"allowed_origins": ["https://bank.example"]},
        headers=bearer(root),
    )
    response = client.get("/api/v1/channels", headers=bearer(sveta))
    assert response.status_code == 200
    (widget,) = response.json()["channels"]
    assert widget["key"] == "acme"
    assert set(widget["config"]) == {"greeting", "info_message", "color"}
    full = client.get("/api/v1/channels", headers=bearer(root)).json()["channels"][0]
    assert full["config"]["allowed_origins"] == ["https://bank.example"]


def test_admin_changes_the_key_and_only_the_new_one_resolves(
    client: TestClient, staff: Staff
) -> None:
    from tests.builders import customer_says, widget_session

    root = staff_token(client, "root")
    token = widget_session(client)["session_token"]
    with client.websocket_connect(f"/api/v1/widget/ws?token={token}") as widget:
        widget.receive_json()
        response = client.patch(
            f"/api/v1/channels/{staff.widget_id}",
            json={"key": "acme-bank_2"},
            headers=bearer(root),
        )
        assert response.status_code == 200, response.text
        assert response.json()["key"] == "acme-bank_2"
        assert widget.receive_json()["type"] == "widget.updated"
    old = client.get("/api/v1/widget/config?key=acme")
    assert old.status_code == 404 and old.json()["code"] == "unknown_widget_key"
    assert client.post("/api/v1/widget/sessions", json={"widget_key": "acme"}).status_code == 404
    assert client.get("/api/v1/widget/config?key=acme-bank_2").json()["name"] == "Acme Bank"
    fresh = client.post("/api/v1/widget/sessions", json={"widget_key": "acme-bank_2"})
    assert fresh.status_code == 200
    # a visitor already chatting keeps going: the session names the channel, not the key
    customer_says(client, token, "Я ещё здесь")
    # the same key again is no clash with itself
    again = client.patch(
        f"/api/v1/channels/{staff.widget_id}", json={"key": "acme-bank_2"}, headers=bearer(root)
    )
    assert again.status_code == 200


def test_duplicate_or_malformed_key_is_refused(
    client: TestClient, staff: Staff, settings: Settings
) -> None:
    from okno.channels import service as channels
    from okno.db.session import Database
    from tests import services

    async def second_widget() -> None:
        db = Database(settings)
        try:
            async with db.transaction() as session:
                await channels.add_widget(session, key="beta", name="Beta")
        finally:
            await db.dispose()

    services.run_in_thread(second_widget)
    root = staff_token(client, "root")
    url = f"/api/v1/channels/{staff.widget_id}"
    taken = client.patch(url, json={"key": "beta"}, headers=bearer(root))
    assert taken.status_code == 409
    assert taken.json()["code"] == "key_taken" and taken.json()["fields"] == {"field": "key"}
    for bad in ("ab", "has space", "a" * 65, "ключ"):
        response = client.patch(url, json={"key": bad}, headers=bearer(root))
        assert response.status_code == 422, bad
        assert [e["field"] for e in response.json()["fields"]["errors"]] == ["key"]
    assert client.get("/api/v1/widget/config?key=acme").status_code == 200
