"""Antivirus scanning through clamd: the wire protocol against a clamd stand-in on
loopback, then what customers and operators see for clean, infected and unscanned files
from the widget, from staff and from a messenger.

Infected files carry the test marker that the stand-in's custom signature (a bank's
``local.ndb`` line) names, the way a real clamd would report them; the EICAR test file
itself is refused by okno as text before any scan (see ``fake_clamd``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.conversations import clamd
from okno.conversations.scanning import SCAN_ATTEMPTS, SCAN_JOB
from okno.db.base import utcnow
from okno.db.session import Database
from okno.jobs.models import Job
from okno.jobs.registry import default_registry
from okno.jobs.worker import Worker
from okno.settings import Settings, SettingsError, load_settings
from tests import services
from tests.builders import Staff, bearer, cmid, in_db, staff_token, widget_session
from tests.channels.telegram_live import add_channel, eventually, staff_messages
from tests.channels.test_widget_api import PDF, PNG
from tests.conftest import make_settings
from tests.conversations.fake_clamd import (
    EICAR,
    EICAR_SIGNATURE,
    MARKER,
    SIGNATURE,
    FakeClamd,
    free_port,
    parse_database,
)
from tests.conversations.media import mp4_of

# A real PNG with the test signature's bytes after its end: passes the type check, and
# is what an infected picture looks like to okno.
INFECTED_PNG = PNG + MARKER


@pytest.fixture
def fake_clamd() -> Iterator[FakeClamd]:
    server = FakeClamd().start()
    yield server
    server.stop()


def scanning_client(settings: Settings, address: str, **extra: Any) -> TestClient:
    scanning = make_settings(
        settings.data_dir,
        settings.database_url,
        clamd_address=address,
        clamd_timeout_seconds=3,
        **extra,
    )
    return TestClient(create_app(scanning))


@pytest.fixture
def scanned(settings: Settings, staff: Staff, fake_clamd: FakeClamd) -> Iterator[TestClient]:
    """okno with clamd configured (no background worker)."""
    with scanning_client(settings, fake_clamd.address) as client:
        yield client


def upload(client: TestClient, token: str, name: str, data: bytes) -> Any:
    return client.post(
        "/api/v1/widget/attachments",
        data={"client_msg_id": cmid(), "text": ""},
        files={"file": (name, data, "application/octet-stream")},
        headers=bearer(token),
    )


def files_under(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def audit_entries(client: TestClient, action: str) -> list[dict[str, Any]]:
    """The audit log's entries of ``action``, oldest first (as a security officer sees them)."""
    response = client.get(
        "/api/v1/audit", params={"action": action}, headers=bearer(staff_token(client, "root"))
    )
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["entries"]))


def staff_events(client: TestClient, kind: str) -> list[dict[str, Any]]:
    events = client.get(
        "/api/v1/events?after_seq=0", headers=bearer(staff_token(client, "root"))
    ).json()["events"]
    return [e for e in events if e["type"] == kind]


def customer_events(client: TestClient, token: str) -> list[dict[str, Any]]:
    """Everything the customer's widget socket replays from the start."""
    seen = []
    with client.websocket_connect(f"/api/v1/widget/ws?token={token}&after_seq=0") as ws:
        while True:
            event = ws.receive_json()
            if event["type"] == "stream.ready":
                return seen
            seen.append(event)


# ---------------------------------------------------------------- the protocol


def test_clamd_reports_clean_and_infected_streams(fake_clamd: FakeClamd) -> None:
    address = clamd.parse_address(fake_clamd.address)
    clean = asyncio.run(clamd.scan(address, PDF, seconds=3))
    infected = asyncio.run(clamd.scan(address, INFECTED_PNG, seconds=3))
    assert clean == clamd.Verdict(infected=False)
    assert infected == clamd.Verdict(infected=True, signature=SIGNATURE)
    assert fake_clamd.scanned == [PDF, INFECTED_PNG]


def test_the_stand_in_matches_signatures_as_clamav_does(fake_clamd: FakeClamd) -> None:
    """EICAR is recognised by the official database's hash signature: the whole 68-byte
    file, not the string inside a bigger one; a body signature matches anywhere."""
    address = clamd.parse_address(fake_clamd.address)

    def verdict(data: bytes) -> clamd.Verdict:
        return asyncio.run(clamd.scan(address, data, seconds=3))

    assert verdict(EICAR) == clamd.Verdict(infected=True, signature=EICAR_SIGNATURE)
    assert verdict(PNG + EICAR) == clamd.Verdict(infected=False)
    assert verdict(EICAR + b"\n") == clamd.Verdict(infected=False)
    assert verdict(MARKER + PDF).signature == SIGNATURE
    assert asyncio.run(clamd.ping(address, seconds=3)) is None
    # syntax the stand-in does not model is refused, never silently misread
    for line in (f"Wild:0:*:{MARKER.hex()}??00", "Pe:1:*:4d5a", "Eof:0:EOF-10:4d5a", "x:y"):
        with pytest.raises(ValueError):
            parse_database([line])


def test_a_large_file_arrives_whole_in_chunks(fake_clamd: FakeClamd) -> None:
    data = bytes(range(256)) * 1200  # 300 KiB: five chunks
    verdict = asyncio.run(clamd.scan(clamd.parse_address(fake_clamd.address), data, seconds=3))
    assert not verdict.infected and fake_clamd.scanned == [data]


def test_clamd_over_a_unix_socket(tmp_path: Path) -> None:
    server = FakeClamd(unix_path=tmp_path / "clamd.ctl").start()
    try:
        address = clamd.parse_address(server.address)
        assert address.path == str(tmp_path / "clamd.ctl")
        verdict = asyncio.run(clamd.scan(address, EICAR, seconds=3))
        assert verdict.signature == EICAR_SIGNATURE
    finally:
        server.stop()


def test_down_erroring_or_overfull_clamd_is_unavailable_never_clean(
    fake_clamd: FakeClamd,
) -> None:
    nobody = clamd.parse_address(f"127.0.0.1:{free_port()}")
    with pytest.raises(clamd.ScannerUnavailable):
        asyncio.run(clamd.scan(nobody, PDF, seconds=3))
    fake_clamd.break_down()
    with pytest.raises(clamd.ScannerUnavailable, match="ERROR"):
        asyncio.run(clamd.scan(clamd.parse_address(fake_clamd.address), PDF, seconds=3))
    small = FakeClamd(max_length=1000).start()
    try:
        with pytest.raises(clamd.ScannerUnavailable):
            asyncio.run(clamd.scan(clamd.parse_address(small.address), PDF * 100, seconds=3))
    finally:
        small.stop()


def test_clamd_address_setting_is_checked() -> None:
    assert load_settings(clamd_address="unix:/run/clamav/clamd.ctl").clamd_address
    assert load_settings(clamd_address="[::1]:3310").clamd_address
    for bad in ("clamd", "host:port", "unix:relative", "10.0.0.5:99999"):
        with pytest.raises(SettingsError, match="OKNO_CLAMD_ADDRESS"):
            load_settings(clamd_address=bad)


# ---------------------------------------------------------------- the widget


def test_a_clean_upload_is_scanned_stored_and_downloadable(
    scanned: TestClient, settings: Settings, fake_clamd: FakeClamd
) -> None:
    token = widget_session(scanned)["session_token"]
    response = upload(scanned, token, "справка.pdf", PDF)
    assert response.status_code == 201, response.text
    (att,) = response.json()["message"]["attachments"]
    assert att["scan_status"] == "clean" and att["scan_signature"] is None
    assert fake_clamd.scanned == [PDF]
    assert scanned.get(att["url"], headers=bearer(token)).content == PDF


def test_the_plain_eicar_file_is_refused_as_text_before_any_scan(
    scanned: TestClient, fake_clamd: FakeClamd
) -> None:
    token = widget_session(scanned)["session_token"]
    for name in ("eicar.com", "eicar.png"):
        refused = upload(scanned, token, name, EICAR)
        assert refused.status_code == 415
        assert refused.json()["code"] == "attachment_type_not_allowed"
    assert fake_clamd.scanned == []


def test_an_infected_upload_is_quarantined_the_message_kept_and_the_customer_told(
    scanned: TestClient, settings: Settings
) -> None:
    token = widget_session(scanned)["session_token"]
    response = upload(scanned, token, "скриншот.png", INFECTED_PNG)
    assert response.status_code == 201, response.text
    message = response.json()["message"]
    (att,) = message["attachments"]
    # the customer is told the file was blocked, not which threat it carried
    assert att["scan_status"] == "blocked" and att["scan_signature"] is None
    # the file left the store for the quarantine folder
    assert files_under(settings.data_dir / "attachments") == []
    assert files_under(settings.data_dir / "quarantine") == [INFECTED_PNG]
    # nobody can download it: not the customer, not staff
    refused = scanned.get(att["url"], headers=bearer(token))
    assert refused.status_code == 403 and refused.json()["code"] == "attachment_blocked"
    assert SIGNATURE not in refused.text
    root = staff_token(scanned, "root")
    staff_refused = scanned.get(att["url"], headers=bearer(root))
    assert staff_refused.status_code == 403
    assert staff_refused.json()["code"] == "attachment_blocked"
    assert staff_refused.json()["fields"]["signature"] == SIGNATURE
    # the operator sees the message with the blocked file; the customer was told
    texts = [
        (m["author_kind"], m["text"], [a["scan_status"] for a in m["attachments"]])
        for m in staff_messages(scanned, message["conversation_id"])
    ]
    assert texts[0] == ("customer", "", ["blocked"])
    assert texts[1][0] == "system" and "скриншот.png" in texts[1][1]
    assert "не принят" in texts[1][1]
    (shown,) = staff_messages(scanned, message["conversation_id"])[0]["attachments"]
    assert shown["scan_signature"] == SIGNATURE  # staff see the threat's name
    widget_side = scanned.get("/api/v1/widget/messages?after_seq=0", headers=bearer(token))
    assert any("не принят" in m["text"] for m in widget_side.json()["messages"])
    assert SIGNATURE not in widget_side.text
    replayed = customer_events(scanned, token)
    assert any(e["type"] == "message.created" for e in replayed)
    assert SIGNATURE not in str(replayed)
    # the block is in the audit log
    entries = audit_entries(scanned, "attachment.blocked")
    assert [(e["object_type"], e["object_id"]) for e in entries] == [("attachment", str(att["id"]))]
    assert entries[0]["details"]["reason"] == "infected"
    assert entries[0]["details"]["threat"] == SIGNATURE


def test_content_found_infected_later_is_blocked_wherever_it_was_stored(
    settings: Settings, staff: Staff, fake_clamd: FakeClamd
) -> None:
    """The same bytes arrived before scanning was configured; once clamd flags them,
    the earlier copy stops being served too."""
    with TestClient(create_app(settings)) as plain:
        token = widget_session(plain)["session_token"]
        earlier = upload(plain, token, "old.png", INFECTED_PNG).json()["message"]
        (old,) = earlier["attachments"]
        assert old["scan_status"] == "none"
        assert plain.get(old["url"], headers=bearer(token)).status_code == 200
    with scanning_client(settings, fake_clamd.address) as client:
        assert upload(client, token, "new.png", INFECTED_PNG).status_code == 201
        refused = client.get(old["url"], headers=bearer(token))
        assert refused.status_code == 403 and refused.json()["code"] == "attachment_blocked"
        (event,) = staff_events(client, "attachment.scanned")
        assert event["payload"]["message_id"] == earlier["id"]
        assert event["payload"]["attachments"][0]["scan_status"] == "blocked"
        sources = [e["details"]["source"] for e in audit_entries(client, "attachment.blocked")]
        assert sorted(sources) == ["arrived", "same_content"]
    assert files_under(settings.data_dir / "attachments") == []


def test_scanner_down_holds_a_customers_file_until_a_retry_scans_it(
    settings: Settings, staff: Staff, fake_clamd: FakeClamd
) -> None:
    fake_clamd.break_down()
    with scanning_client(
        settings, fake_clamd.address, worker_in_process=True, worker_poll_seconds=0.2
    ) as client:
        token = widget_session(client)["session_token"]
        response = upload(client, token, "паспорт.pdf", PDF)
        assert response.status_code == 201, response.text  # nothing the customer sent is lost
        (att,) = response.json()["message"]["attachments"]
        assert att["scan_status"] == "pending"
        held = client.get(att["url"], headers=bearer(token))
        assert held.status_code == 409 and held.json()["code"] == "attachment_pending_scan"
        assert files_under(settings.data_dir / "attachments") == []
        assert files_under(settings.data_dir / "scan-pending") == [PDF]
        fake_clamd.break_down(False)  # clamd is back; the job's retry scans the file

        def settled() -> bool:
            return client.get(att["url"], headers=bearer(token)).status_code == 200

        eventually(settled, within=20, what="the held file scanned clean after a retry")
        assert files_under(settings.data_dir / "scan-pending") == []
        conv = response.json()["message"]["conversation_id"]
        (message,) = staff_messages(client, conv)
        assert message["attachments"][0]["scan_status"] == "clean"
        events = client.get(
            "/api/v1/events?after_seq=0", headers=bearer(staff_token(client, "root"))
        ).json()["events"]
        scanned_events = [e for e in events if e["type"] == "attachment.scanned"]
        assert scanned_events[-1]["payload"]["attachments"][0]["scan_status"] == "clean"


def test_a_held_file_found_infected_on_retry_is_blocked_and_the_customer_told(
    settings: Settings, staff: Staff
) -> None:
    port = free_port()
    with scanning_client(
        settings, f"127.0.0.1:{port}", worker_in_process=True, worker_poll_seconds=0.2
    ) as client:
        token = widget_session(client)["session_token"]
        response = upload(client, token, "фото.png", INFECTED_PNG)
        (att,) = response.json()["message"]["attachments"]
        assert att["scan_status"] == "pending"
        server = FakeClamd(port=port).start()  # clamd comes up where okno looks for it
        try:

            def told() -> list[dict[str, Any]]:
                history = client.get(
                    "/api/v1/widget/messages?after_seq=0", headers=bearer(token)
                ).json()["messages"]
                return [m for m in history if "не принят" in m["text"]]

            eventually(told, within=20, what="the customer told the file was not accepted")
        finally:
            server.stop()
        refused = client.get(att["url"], headers=bearer(token))
        assert refused.status_code == 403 and refused.json()["code"] == "attachment_blocked"
        assert files_under(settings.data_dir / "quarantine") == [INFECTED_PNG]


# ---------------------------------------------------------------- staff uploads


def staff_upload(client: TestClient, token: str, conv: int, name: str, data: bytes) -> Any:
    return client.post(
        f"/api/v1/conversations/{conv}/attachments",
        data={"client_msg_id": cmid(), "text": ""},
        files={"file": (name, data, "application/octet-stream")},
        headers=bearer(token),
    )


def _dialog(client: TestClient) -> tuple[int, str]:
    token = widget_session(client)["session_token"]
    response = client.post(
        "/api/v1/widget/messages",
        json={"client_msg_id": cmid(), "text": "Пришлите, пожалуйста, памятку"},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    return response.json()["message"]["conversation_id"], token


def test_staff_cannot_send_an_infected_file_and_nothing_reaches_the_customer(
    scanned: TestClient, settings: Settings
) -> None:
    conv, token = _dialog(scanned)
    root = staff_token(scanned, "root")
    response = staff_upload(scanned, root, conv, "памятка.png", INFECTED_PNG)
    assert response.status_code == 422
    assert response.json()["code"] == "attachment_infected"
    assert response.json()["fields"]["signature"] == SIGNATURE
    assert files_under(settings.data_dir / "quarantine") == [INFECTED_PNG]
    history = scanned.get("/api/v1/widget/messages?after_seq=0", headers=bearer(token))
    assert [m["author_kind"] for m in history.json()["messages"]] == ["customer"]
    clean = staff_upload(scanned, root, conv, "памятка.pdf", PDF)
    assert clean.status_code == 201, clean.text
    assert clean.json()["message"]["attachments"][0]["scan_status"] == "clean"


def test_an_infected_staff_upload_blocks_earlier_copies_of_the_same_file(
    settings: Settings, staff: Staff, fake_clamd: FakeClamd
) -> None:
    """The customer sent the file before the antivirus was configured; an operator later
    tries to send the same bytes: refused, and the customer's copy stops being served —
    403 blocked (not a missing file) and the open screens are told."""
    with TestClient(create_app(settings)) as plain:
        token = widget_session(plain)["session_token"]
        earlier = upload(plain, token, "счёт.png", INFECTED_PNG).json()["message"]
        (old,) = earlier["attachments"]
        assert plain.get(old["url"], headers=bearer(token)).status_code == 200
    with scanning_client(settings, fake_clamd.address) as client:
        root = staff_token(client, "root")
        refused = staff_upload(client, root, earlier["conversation_id"], "счёт.png", INFECTED_PNG)
        assert refused.status_code == 422 and refused.json()["code"] == "attachment_infected"
        for who in (token, root):
            download = client.get(old["url"], headers=bearer(who))
            assert download.status_code == 403, download.text
            assert download.json()["code"] == "attachment_blocked"
        (shown,) = staff_messages(client, earlier["conversation_id"])[0]["attachments"]
        assert (shown["scan_status"], shown["scan_signature"]) == ("blocked", SIGNATURE)
        (event,) = staff_events(client, "attachment.scanned")
        assert event["payload"] == {
            "message_id": earlier["id"],
            "attachments": [
                {"id": old["id"], "scan_status": "blocked", "scan_signature": SIGNATURE}
            ],
        }
        # the customer's screen updates too, without the threat's name
        (seen,) = [e for e in customer_events(client, token) if e["type"] == "attachment.scanned"]
        assert seen["payload"]["attachments"][0]["scan_status"] == "blocked"
        assert SIGNATURE not in str(seen)
        entries = audit_entries(client, "attachment.blocked")
        assert [(e["object_type"], e["outcome"], e["actor_login"]) for e in entries] == [
            ("file", "denied", "root"),
            ("attachment", "success", "system"),
        ]
        assert entries[0]["details"]["copies_blocked"] == 1
        assert entries[1]["object_id"] == str(old["id"])
    assert files_under(settings.data_dir / "attachments") == []
    assert files_under(settings.data_dir / "quarantine") == [INFECTED_PNG]


def test_staff_upload_with_the_scanner_down_is_refused_with_503(
    settings: Settings, staff: Staff
) -> None:
    with scanning_client(settings, f"127.0.0.1:{free_port()}") as client:
        conv, _ = _dialog(client)
        root = staff_token(client, "root")
        response = staff_upload(client, root, conv, "памятка.pdf", PDF)
        assert response.status_code == 503
        assert response.json()["code"] == "scanner_unavailable"
        assert files_under(settings.data_dir / "attachments") == []


# ---------------------------------------------------------------- giving up, readiness


def test_a_file_the_antivirus_never_checks_is_blocked_and_everyone_told(
    settings: Settings, staff: Staff
) -> None:
    """clamd stays down for as long as the job retries: on the last attempt the file is
    blocked unscanned — the operator sees it could not be checked, the customer is asked
    politely to send it again, the block is audited, nothing is left silently held."""
    down = f"127.0.0.1:{free_port()}"
    with scanning_client(settings, down) as client:
        token = widget_session(client)["session_token"]
        sent = upload(client, token, "договор.pdf", PDF).json()["message"]
        (att,) = sent["attachments"]
        assert att["scan_status"] == "pending"

        async def last_attempt_due(session: AsyncSession) -> None:
            # a day and a half of retries later: the next attempt is the last one
            await session.execute(
                update(Job)
                .where(Job.kind == SCAN_JOB)
                .values(attempts=SCAN_ATTEMPTS - 1, run_at=utcnow())
            )

        in_db(settings, last_attempt_due)
        worker_settings = client.app.state.okno.settings  # type: ignore[attr-defined]

        async def work() -> None:
            db = Database(worker_settings)
            try:
                await Worker(db, worker_settings, default_registry()).drain()
            finally:
                await db.dispose()

        services.run_in_thread(work)

        async def job_status(session: AsyncSession) -> list[str]:
            return list(
                (await session.scalars(select(Job.status).where(Job.kind == SCAN_JOB))).all()
            )

        assert in_db(settings, job_status) == ["done"]
        for who in (token, staff_token(client, "root")):
            refused = client.get(att["url"], headers=bearer(who))
            assert refused.status_code == 403
            assert refused.json()["code"] == "attachment_scan_failed"
        messages = staff_messages(client, sent["conversation_id"])
        assert messages[0]["attachments"][0]["scan_status"] == "failed"
        assert messages[1]["author_kind"] == "system"
        assert (
            "договор.pdf" in messages[1]["text"] and "не удалось проверить" in messages[1]["text"]
        )
        history = client.get("/api/v1/widget/messages?after_seq=0", headers=bearer(token))
        assert any("пришлите файл ещё раз" in m["text"] for m in history.json()["messages"])
        (event,) = staff_events(client, "attachment.scanned")
        assert event["payload"]["attachments"][0]["scan_status"] == "failed"
        (entry,) = audit_entries(client, "attachment.blocked")
        assert entry["object_id"] == str(att["id"])
        assert entry["details"]["reason"] == "not_scanned"
    assert files_under(settings.data_dir / "scan-pending") == []
    assert files_under(settings.data_dir / "quarantine") == [PDF]


def test_readiness_shows_clamd_and_a_down_clamd_degrades_without_stopping_chats(
    settings: Settings, staff: Staff, fake_clamd: FakeClamd
) -> None:
    with scanning_client(settings, fake_clamd.address) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": "ok", "clamd": "ok"}}
    with scanning_client(settings, f"127.0.0.1:{free_port()}") as client:
        degraded = client.get("/readyz")
        assert degraded.status_code == 200  # still in the load balancer
        assert degraded.json() == {
            "status": "degraded",
            "checks": {"database": "ok", "clamd": "down"},
            "degraded": ["clamd"],
        }
        token = widget_session(client)["session_token"]
        said = client.post(
            "/api/v1/widget/messages",
            json={"client_msg_id": cmid(), "text": "Здравствуйте"},
            headers=bearer(token),
        )
        assert said.status_code == 201
    with TestClient(create_app(settings)) as plain:  # no antivirus configured: not checked
        assert "clamd" not in plain.get("/readyz").json()["checks"]


# ---------------------------------------------------------------- size limits per type


def test_a_per_type_limit_above_the_general_one_works_for_uploads(
    settings: Settings, staff: Staff
) -> None:
    """OKNO_MAX_ATTACHMENT_MB 0.1 with video/mp4 allowed 0.5 MB: a 0.4 MB video goes
    through the request-size guard and is stored; a bigger video, or a picture over the
    general limit, is refused naming its type and limit."""
    roomy = make_settings(
        settings.data_dir,
        settings.database_url,
        max_attachment_mb=0.1,
        attachment_type_limits_mb={"video/mp4": 0.5},
    )
    with TestClient(create_app(roomy)) as client:
        token = widget_session(client)["session_token"]
        video = mp4_of(400 * 1024)
        sent = upload(client, token, "видео.mp4", video)
        assert sent.status_code == 201, sent.text
        assert sent.json()["message"]["attachments"][0]["content_type"] == "video/mp4"
        conv = sent.json()["message"]["conversation_id"]
        root = staff_token(client, "root")
        assert staff_upload(client, root, conv, "ответ.mp4", video).status_code == 201
        for name, data, kind, limit in (
            ("длинное.mp4", mp4_of(600 * 1024), "video/mp4", 0.5),
            ("скан.png", PNG + b"\0" * 200 * 1024, "image/png", 0.1),
        ):
            refused = upload(client, token, name, data)
            assert refused.status_code == 413, refused.text
            body = refused.json()
            assert body["code"] == "attachment_too_large"
            assert kind in body["detail"] and body["fields"]["max_mb"] == limit
        # beyond the largest limit the request-size guard refuses before reading the body
        huge = upload(client, token, "огромное.mp4", mp4_of(1024 * 1024))
        assert huge.status_code == 413 and huge.json()["code"] == "request_too_large"


def test_size_limits_per_type(settings: Settings, staff: Staff) -> None:
    tight = make_settings(
        settings.data_dir, settings.database_url, attachment_type_limits_mb={"image/*": 0.00005}
    )
    with TestClient(create_app(tight)) as client:
        token = widget_session(client)["session_token"]
        refused = upload(client, token, "big.png", PNG + b"\0" * 100)
        assert refused.status_code == 413
        body = refused.json()
        assert body["code"] == "attachment_too_large"
        assert "image/png" in body["detail"] and body["fields"]["max_bytes"] == 52
        assert upload(client, token, "doc.pdf", PDF).status_code == 201


def test_unknown_type_in_the_limits_setting_names_the_key() -> None:
    with pytest.raises(SettingsError, match="OKNO_ATTACHMENT_TYPE_LIMITS_MB"):
        load_settings(attachment_type_limits_mb={"text/html": 1})


# ---------------------------------------------------------------- messengers


def test_an_infected_telegram_photo_is_blocked_and_the_customer_told_in_telegram(
    settings: Settings, staff: Staff, fake_clamd: FakeClamd
) -> None:
    from tests.channels.fakes.telegram import TOKEN, FakeTelegram, message_update

    # Telegram re-encodes photos as JPEG; the test signature's bytes ride after a JFIF header
    infected_jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + MARKER
    platform = FakeTelegram().start()
    try:
        live = make_settings(
            settings.data_dir,
            settings.database_url,
            clamd_address=fake_clamd.address,
            worker_in_process=True,
            worker_poll_seconds=0.2,
            channel_send_timeout_seconds=2.0,
        )
        channel_id = add_channel(
            live,
            "telegram",
            bot_token=TOKEN,
            webhook_secret="wh-secret_0123456789",
            api_base=platform.url,
        )
        platform.add_file("AgACAgIAAxkBAAIB", infected_jpeg, "photos/file_7.jpg")
        update = message_update(
            None,
            caption="Вот скриншот",
            photo=[
                {
                    "file_id": "AgACAgIAAxkBAAIB",
                    "file_unique_id": "b",
                    "width": 1280,
                    "height": 853,
                    "file_size": len(infected_jpeg),
                }
            ],
        )
        with TestClient(create_app(live)) as client:
            response = client.post(
                f"/hooks/telegram/{channel_id}",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "wh-secret_0123456789"},
            )
            assert response.status_code == 200, response.text
            calls = eventually(lambda: platform.calls("/sendMessage"), what="a notice sent")
            assert "не принят" in calls[0].json()["text"]
            conv = eventually(
                lambda: client.get(
                    "/api/v1/conversations?status=all",
                    headers=bearer(staff_token(client, "root")),
                ).json()["conversations"]
            )[0]["id"]
            first = staff_messages(client, conv)[0]
            assert first["text"] == "Вот скриншот"  # the message itself is kept
            assert first["attachments"][0]["scan_status"] == "blocked"
        assert files_under(settings.data_dir / "quarantine") == [infected_jpeg]
        assert files_under(settings.data_dir / "attachments") == []
    finally:
        platform.stop()
