"""Health probes, Prometheus metrics, and logs free of message text."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.builders import bearer, cmid, customer_says, staff_token, widget_session


def test_health_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


def test_metrics_count_messages_connections_and_requests(client: TestClient) -> None:
    token = widget_session(client)["session_token"]
    conv = customer_says(client, token, "Здравствуйте")["conversation_id"]
    anna = staff_token(client, "anna")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": "Добрый день"},
        headers=bearer(anna),
    )
    with client.websocket_connect(f"/api/v1/ws?token={anna}") as ws:
        ws.receive_json()
        text = client.get("/metrics").text
    assert 'okno_messages_in_total{channel="widget"} 1.0' in text
    assert 'okno_messages_out_total{channel="staff"} 1.0' in text
    assert 'okno_websocket_connections{kind="staff"} 1.0' in text
    assert (
        'okno_http_request_duration_seconds_count{method="POST",route="/api/v1/widget/messages",status="201"} 1.0'
        in text
    )
    assert (
        "okno_job_queue_depth" in text
        or "okno_job_oldest_age_seconds" in text
        or "# HELP okno_job_queue_depth" in text
    )


def test_logs_never_contain_message_text(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "Мой паспорт 4510 123456 и карта 4276 1600 1234 5678"
    token = widget_session(client)["session_token"]
    conv = customer_says(client, token, secret)["conversation_id"]
    anna = staff_token(client, "anna")
    client.post(
        f"/api/v1/conversations/{conv}/messages",
        json={"client_msg_id": cmid(), "text": secret},
        headers=bearer(anna),
    )
    client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": secret * 500},
        headers=bearer(token),
    )
    client.get(f"/api/v1/conversations/{conv}", headers=bearer(staff_token(client, "olga")))
    out = capsys.readouterr()
    logged = out.out + out.err
    assert logged  # something was logged (sign-ins, the refused request)
    assert "4276" not in logged and "паспорт" not in logged


def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_openapi_document_is_served(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/auth/token",
        "/api/v1/widget/sessions",
        "/api/v1/widget/messages",
        "/api/v1/conversations/{conversation_id}/transfer",
        "/api/v1/events",
    ):
        assert path in paths
