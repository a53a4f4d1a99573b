"""The widget's public API: sessions, sending, history, rating, and every kind of bad input."""

from __future__ import annotations

import base64

from fastapi.testclient import TestClient

from tests.builders import bearer, cmid, customer_says, staff_token, widget_session

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def history(client: TestClient, token: str, after: int = 0) -> list[dict]:
    response = client.get(f"/api/v1/widget/messages?after_seq={after}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return list(response.json()["messages"])


def test_session_returns_token_visitor_and_widget_texts(client: TestClient) -> None:
    data = widget_session(client)
    assert data["session_token"] and data["visitor_id"].startswith("v_")
    assert data["conversation_id"] is None
    assert data["widget"]["name"] == "Acme Bank"
    assert data["widget"]["greeting"]


def test_unknown_widget_key_is_a_404_with_code(client: TestClient) -> None:
    response = client.post("/api/v1/widget/sessions", json={"widget_key": "nope"})
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_widget_key"


def test_malformed_json_is_400_and_stores_nothing(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    response = client.post(
        "/api/v1/widget/messages",
        content=b'{"client_msg_id": "x", "text": ',
        headers={**bearer(token), "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert history(client, token) == []


def test_forged_and_expired_tokens_are_refused(client: TestClient, settings) -> None:
    from datetime import timedelta

    from okno.security import tokens

    good = widget_session(client)["session_token"]
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    body = {"client_msg_id": cmid(), "text": "Здравствуйте"}
    response = client.post("/api/v1/widget/messages", json=body, headers=bearer(forged))
    assert response.status_code == 401
    assert response.json()["code"] == "token_invalid"
    expired = tokens.issue(
        settings.signing_key(),
        typ=tokens.WIDGET,
        subject="1",
        ttl=timedelta(seconds=-5),
        ch=1,
        vid="v_expired_visitor",
    )
    response = client.post("/api/v1/widget/messages", json=body, headers=bearer(expired))
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"
    # a staff token is not a widget token
    staff = staff_token(client, "anna")
    response = client.post("/api/v1/widget/messages", json=body, headers=bearer(staff))
    assert response.status_code == 401
    assert history(client, good) == []


def test_oversized_text_is_refused_and_nothing_stored(client: TestClient, settings) -> None:
    token = widget_session(client)["session_token"]
    response = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": "я" * (settings.max_text_chars + 1)},
        headers=bearer(token),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "text_too_long"
    assert history(client, token) == []


def test_whitespace_only_message_is_refused(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    response = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": "  \n\t "},
        headers=bearer(token),
    )
    assert response.status_code == 400
    assert response.json()["code"] == "empty_message"


def test_retry_with_same_client_msg_id_stores_one_message(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    msg_id = cmid()
    first = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": msg_id, "text": "Карта заблокирована"},
        headers=bearer(token),
    )
    second = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": msg_id, "text": "Карта заблокирована"},
        headers=bearer(token),
    )
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["duplicate"] is True
    assert first.json()["message"] == second.json()["message"]
    assert [m["text"] for m in history(client, token)] == ["Карта заблокирована"]


def test_history_comes_back_for_the_same_visitor(client: TestClient) -> None:
    first = widget_session(client)
    customer_says(client, first["session_token"], "Первое сообщение")
    again = widget_session(client, visitor={"id": first["visitor_id"]})
    assert again["conversation_id"] is not None
    assert [m["text"] for m in history(client, again["session_token"])] == ["Первое сообщение"]
    stranger = widget_session(client)
    assert history(client, stranger["session_token"]) == []


def test_bad_visitor_id_is_refused(client: TestClient) -> None:
    response = client.post(
        "/api/v1/widget/sessions", json={"widget_key": "acme", "visitor": {"id": "../../etc"}}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_visitor_id"


def test_image_and_pdf_are_accepted_and_downloadable_by_both_sides(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    for name, data, ctype in (
        ("photo.png", PNG, "image/png"),
        ("statement.pdf", PDF, "application/pdf"),
    ):
        response = client.post(
            "/api/v1/widget/attachments",
            data={"client_msg_id": cmid(), "text": ""},
            files={"file": (name, data, "application/octet-stream")},
            headers=bearer(token),
        )
        assert response.status_code == 201, response.text
        (att,) = response.json()["message"]["attachments"]
        assert att["content_type"] == ctype and att["size"] == len(data)
        got = client.get(att["url"], headers=bearer(token))
        assert got.status_code == 200 and got.content == data
        assert got.headers["x-content-type-options"] == "nosniff"
        staff = client.get(att["url"], headers=bearer(staff_token(client, "anna")))
        assert staff.status_code == 200 and staff.content == data
        other_customer = widget_session(client)["session_token"]
        assert client.get(att["url"], headers=bearer(other_customer)).status_code == 404


def test_exe_renamed_pdf_is_refused_and_nothing_stored(client: TestClient, settings) -> None:
    token = widget_session(client)["session_token"]
    response = client.post(
        "/api/v1/widget/attachments",
        data={"client_msg_id": cmid()},
        files={"file": ("invoice.pdf", EXE, "application/pdf")},
        headers=bearer(token),
    )
    assert response.status_code == 415
    assert response.json()["code"] == "attachment_type_not_allowed"
    assert history(client, token) == []
    assert not (settings.data_dir / "attachments").exists()


def test_png_named_pdf_is_refused_as_a_mismatch(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    response = client.post(
        "/api/v1/widget/attachments",
        data={"client_msg_id": cmid()},
        files={"file": ("scan.pdf", PNG, "application/pdf")},
        headers=bearer(token),
    )
    assert response.status_code == 415
    assert response.json()["code"] == "attachment_type_mismatch"


def test_oversized_attachment_is_refused(client: TestClient, settings) -> None:
    token = widget_session(client)["session_token"]
    big = PDF + b"0" * (settings.max_attachment_bytes + 10)
    response = client.post(
        "/api/v1/widget/attachments",
        data={"client_msg_id": cmid()},
        files={"file": ("big.pdf", big, "application/pdf")},
        headers=bearer(token),
    )
    assert response.status_code == 413
    assert history(client, token) == []


def test_rating_after_close_once(client: TestClient) -> None:
    session = widget_session(client)
    token = session["session_token"]
    message = customer_says(client, token, "Спасибо, всё понятно")
    conv = message["conversation_id"]
    early = client.post(
        "/api/v1/widget/rating", json={"conversation_id": conv, "score": 5}, headers=bearer(token)
    )
    assert early.status_code == 409 and early.json()["code"] == "not_closed"
    anna = staff_token(client, "anna")
    assert (
        client.post(f"/api/v1/conversations/{conv}/close", headers=bearer(anna)).status_code == 200
    )
    bad = client.post(
        "/api/v1/widget/rating", json={"conversation_id": conv, "score": 6}, headers=bearer(token)
    )
    assert bad.status_code == 422
    ok = client.post(
        "/api/v1/widget/rating",
        json={"conversation_id": conv, "score": 4, "comment": "Быстро"},
        headers=bearer(token),
    )
    assert ok.status_code == 200 and ok.json()["rating"] == 4
    again = client.post(
        "/api/v1/widget/rating", json={"conversation_id": conv, "score": 1}, headers=bearer(token)
    )
    assert again.status_code == 409
    seen = client.get(f"/api/v1/conversations/{conv}", headers=bearer(anna)).json()
    assert seen["rating"] == 4


def test_customer_writing_after_close_opens_a_new_dialog(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    first = customer_says(client, token, "Вопрос один")["conversation_id"]
    anna = staff_token(client, "anna")
    client.post(f"/api/v1/conversations/{first}/close", headers=bearer(anna))
    second = customer_says(client, token, "Вопрос два")["conversation_id"]
    assert second != first
    assert [m["text"] for m in history(client, token)] == ["Вопрос один", "Вопрос два"]


def test_widget_endpoints_answer_cors_preflight_but_staff_endpoints_do_not(
    client: TestClient,
) -> None:
    pre = client.options(
        "/api/v1/widget/messages",
        headers={
            "Origin": "https://bank.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] in ("*", "https://bank.example")
    staff = client.options(
        "/api/v1/conversations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in staff.headers


def test_widget_config_is_public(client: TestClient) -> None:
    response = client.get("/api/v1/widget/config?key=acme")
    assert response.status_code == 200
    assert set(response.json()) == {"name", "greeting", "info_message", "color", "bot"}
    assert client.get("/api/v1/widget/config?key=zzz").status_code == 404
