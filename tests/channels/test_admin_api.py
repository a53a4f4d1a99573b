"""Admins change a widget's texts; customers see them; others may not change them."""

from __future__ import annotations

from fastapi.testclient import TestClient

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
