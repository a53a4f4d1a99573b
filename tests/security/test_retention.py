"""Retention: dialogs closed longer ago than the period lose their text and files, their
customers their name and contacts; audit entries go only once shipped, and the chain
still verifies; every run leaves a report and an audit entry."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from okno.app import create_app
from okno.cli import main as okno_main
from okno.conversations.models import Attachment, Conversation, Message
from okno.customers.models import Customer, CustomerIdentity
from okno.db.base import utcnow
from okno.db.session import Database
from okno.security import audit, retention, siem
from okno.security.audit_models import AuditEntry
from okno.settings import Settings
from tests import services
from tests.builders import (
    Staff,
    bearer,
    cmid,
    customer_says,
    in_db,
    staff_token,
    widget_session,
)
from tests.channels.test_widget_api import PDF, PNG
from tests.conftest import make_settings
from tests.conversations.fake_clamd import MARKER, FakeClamd, free_port
from tests.conversations.test_scanning import upload

DAYS = 30


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url,
        retention_messages_days=DAYS,
        retention_attachments_days=DAYS,
    )


@pytest.fixture
def client(settings: Settings, staff: Staff) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _dialog_with_a_file(client: TestClient, name: str) -> tuple[int, str]:
    """A customer named ``name`` writes text and sends a picture; returns the dialog id
    and the picture's URL."""
    token = widget_session(client, visitor={"name": name})["session_token"]
    conv = customer_says(client, token, "Мой паспорт 4510 123456, помогите")["conversation_id"]
    sent = client.post(
        "/api/v1/widget/attachments",
        data={"client_msg_id": f"file-{name}", "text": "скан"},
        files={"file": ("scan.png", PNG, "image/png")},
        headers=bearer(token),
    )
    assert sent.status_code == 201, sent.text
    return conv, sent.json()["message"]["attachments"][0]["url"]


def _age(settings: Settings, conversation_id: int, days: int) -> None:
    """The dialog was closed ``days`` ago."""

    async def run(session: AsyncSession) -> None:
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(status="closed", closed_at=utcnow() - timedelta(days=days))
        )

    in_db(settings, run)


def _snapshot(settings: Settings, conversation_id: int) -> dict[str, Any]:
    async def run(session: AsyncSession) -> dict[str, Any]:
        conv = await session.get(Conversation, conversation_id)
        assert conv is not None
        customer = await session.get(Customer, conv.customer_id)
        assert customer is not None
        texts = (
            await session.scalars(
                select(Message.text).where(Message.conversation_id == conversation_id)
            )
        ).all()
        files = (
            await session.execute(
                select(Attachment.filename, Attachment.storage_path).where(
                    Attachment.conversation_id == conversation_id
                )
            )
        ).all()
        identities = (
            await session.scalars(
                select(CustomerIdentity.id).where(CustomerIdentity.customer_id == customer.id)
            )
        ).all()
        return {
            "texts": list(texts),
            "files": [tuple(f) for f in files],
            "name": customer.display_name,
            "identities": len(identities),
            "preview": conv.last_message_preview,
        }

    result: dict[str, Any] = in_db(settings, run)
    return result


def _stored_files(settings: Settings) -> list[Path]:
    return [p for p in (settings.data_dir / "attachments").rglob("*") if p.is_file()]


def test_a_dry_run_reports_and_changes_nothing_then_a_run_erases_old_dialogs_only(
    client: TestClient, settings: Settings
) -> None:
    old, old_url = _dialog_with_a_file(client, "Пётр Старый")
    recent, _ = _dialog_with_a_file(client, "Анна Новая")
    _age(settings, old, DAYS + 5)
    _age(settings, recent, DAYS - 5)
    root = staff_token(client, "root")

    dry = client.post("/api/v1/retention/runs", headers=bearer(root))
    assert dry.status_code == 201, dry.text
    report = dry.json()["report"]
    assert dry.json()["dry_run"] is True
    assert report["messages"] == {
        "cutoff": report["messages"]["cutoff"],
        "messages_erased": 2,
        "dialogs": 1,
    }
    assert report["customers"]["anonymised"] == 1
    # both dialogs sent the same picture: stored once, still needed by the recent one
    assert report["attachments"]["rows_marked"] == 1
    assert report["attachments"]["files_deleted"] == 0
    assert _snapshot(settings, old)["name"] == "Пётр Старый"

    applied = client.post(
        "/api/v1/retention/runs", params={"dry_run": "false"}, headers=bearer(root)
    )
    assert applied.status_code == 201, applied.text
    gone = _snapshot(settings, old)
    assert gone["texts"] == ["", ""] and gone["preview"] == ""
    assert gone["files"] == [(retention.REMOVED_NAME, retention.REMOVED_PATH)]
    assert gone["name"] == "" and gone["identities"] == 0
    kept = _snapshot(settings, recent)
    assert kept["name"] == "Анна Новая" and "Мой паспорт 4510 123456, помогите" in kept["texts"]
    assert len(_stored_files(settings)) == 1  # the recent dialog's copy stays

    download = client.get(old_url, headers=bearer(staff_token(client, "anna")))
    assert download.status_code == 410 and download.json()["code"] == "attachment_removed"

    runs = client.get("/api/v1/retention/runs", headers=bearer(root)).json()["runs"]
    assert [r["dry_run"] for r in runs] == [False, True]
    entries = client.get(
        "/api/v1/audit", params={"action": "retention.run"}, headers=bearer(root)
    ).json()["entries"]
    assert entries[0]["details"]["messages_erased"] == 2
    assert entries[0]["details"]["dry_run"] is False and entries[0]["actor_login"] == "root"

    again = client.post(
        "/api/v1/retention/runs", params={"dry_run": "false"}, headers=bearer(root)
    ).json()["report"]
    assert again["messages"]["messages_erased"] == 0 and again["customers"]["anonymised"] == 0


def test_a_file_is_deleted_from_disk_once_no_kept_dialog_uses_it(
    client: TestClient, settings: Settings
) -> None:
    old, _ = _dialog_with_a_file(client, "Пётр")
    _age(settings, old, DAYS + 1)
    assert len(_stored_files(settings)) == 1
    root = staff_token(client, "root")
    report = client.post(
        "/api/v1/retention/runs", params={"dry_run": "false"}, headers=bearer(root)
    ).json()["report"]
    assert report["attachments"]["files_deleted"] == 1
    assert report["attachments"]["bytes_freed"] == len(PNG)
    assert _stored_files(settings) == []


def test_quarantined_and_held_files_go_with_their_dialogs(
    settings: Settings, staff: Staff, tmp_path: Path
) -> None:
    """Files the antivirus blocked (in quarantine/) or could not check yet (in
    scan-pending/) are deleted with their expired dialogs and counted; a quarantined
    staff upload that no dialog holds goes once older than the period."""
    clamd = FakeClamd().start()
    try:

        def scanning(address: str) -> TestClient:
            return TestClient(
                create_app(
                    settings.model_copy(
                        update={"clamd_address": address, "clamd_timeout_seconds": 3}
                    )
                )
            )

        with scanning(f"127.0.0.1:{free_port()}") as down:  # clamd down: the file is held
            token = widget_session(down)["session_token"]
            held = upload(down, token, "паспорт.pdf", PDF)
            assert held.json()["message"]["attachments"][0]["scan_status"] == "pending"
        with scanning(clamd.address) as client:
            token = widget_session(client)["session_token"]
            blocked = upload(client, token, "фото.png", PNG + MARKER)
            assert blocked.json()["message"]["attachments"][0]["scan_status"] == "blocked"
            root = staff_token(client, "root")
            refused_old = PNG + MARKER + b"old"
            refused_new = PNG + MARKER + b"new"
            conv = blocked.json()["message"]["conversation_id"]
            for data in (refused_old, refused_new):
                sent = client.post(
                    f"/api/v1/conversations/{conv}/attachments",
                    data={"client_msg_id": cmid(), "text": ""},
                    files={"file": ("памятка.png", data, "image/png")},
                    headers=bearer(root),
                )
                assert sent.json()["code"] == "attachment_infected"
            # the first refused upload was quarantined longer ago than the period
            long_ago = (utcnow() - timedelta(days=DAYS + 1)).timestamp()
            digest = hashlib.sha256(refused_old).hexdigest()
            old_file = settings.data_dir / "quarantine" / digest[:2] / digest[2:4] / digest
            os.utime(old_file, (long_ago, long_ago))
            for message in (held, blocked):
                _age(settings, message.json()["message"]["conversation_id"], DAYS + 1)
            assert len(_files(settings, "quarantine")) == 3
            assert len(_files(settings, "scan-pending")) == 1

            report = client.post(
                "/api/v1/retention/runs", params={"dry_run": "false"}, headers=bearer(root)
            ).json()["report"]["attachments"]
            assert report["files_deleted"] == 3
            assert report["quarantined_files_deleted"] == 2
            assert report["held_files_deleted"] == 1
            assert report["rows_marked"] == 2
            assert _files(settings, "scan-pending") == []
            assert _files(settings, "quarantine") == [refused_new]  # within the period
            (entry,) = client.get(
                "/api/v1/audit", params={"action": "retention.run"}, headers=bearer(root)
            ).json()["entries"]
            assert entry["details"]["quarantined_files_deleted"] == 2
            assert entry["details"]["held_files_deleted"] == 1
            # the held file's retry finds nothing to scan; the download says it was removed
            url = held.json()["message"]["attachments"][0]["url"]
            assert client.get(url, headers=bearer(root)).json()["code"] == "attachment_removed"
    finally:
        clamd.stop()


def _files(settings: Settings, area: str) -> list[bytes]:
    folder = settings.data_dir / area
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_only_officers_and_admins_run_retention(client: TestClient) -> None:
    for login in ("anna", "sveta"):
        response = client.post("/api/v1/retention/runs", headers=bearer(staff_token(client, login)))
        assert response.status_code == 403
    root = staff_token(client, "root")
    assert client.get("/api/v1/retention/runs/999", headers=bearer(root)).status_code == 404


def test_the_cli_prints_the_dry_run_report_as_json(settings: Settings, staff: Staff) -> None:
    env = {
        "OKNO_DATA_DIR": str(settings.data_dir),
        "OKNO_DATABASE_URL": settings.database_url,
        "OKNO_SECRET_KEY": settings.secret_key,
        "OKNO_RETENTION_MESSAGES_DAYS": "30",
        "OKNO_LOG_LEVEL": "error",
    }
    result = CliRunner().invoke(okno_main, ["retention", "run", "--dry-run", "--json"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["dry_run"] is True and out["trigger"] == "cli"
    assert out["report"]["periods_days"]["messages"] == 30
    assert out["report"]["recordings"]["note"] == "okno stores no call recordings yet"


# ---------------------------------------------------------------- the audit log itself


async def _record(db: Database, count: int) -> None:
    for n in range(count):
        async with db.transaction() as session:
            await audit.record(session, action=audit.CUSTOMER_VIEWED, object_id=n)


async def test_audit_entries_go_only_after_shipping_and_the_chain_still_verifies(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipping = settings.model_copy(
        update={"audit_ship_file": str(tmp_path / "audit.jsonl"), "retention_audit_days": 1}
    )
    db = Database(shipping)
    try:
        await _record(db, 5)
        await siem.ship_once(db, shipping)  # 1..5 reached the SIEM
        await _record(db, 2)  # 6, 7 did not
        later = utcnow() + timedelta(days=10)
        monkeypatch.setattr(retention, "utcnow", lambda: later)
        async with db.transaction() as session:
            run = await retention.run(session, shipping)
        assert run.report["audit"]["entries_deleted"] == 5
        assert run.report["audit"]["checkpoint_seq"] == 5
        assert run.report["audit"]["not_yet_shipped"] == 2
        async with db.read() as session:
            left = (await session.scalars(select(AuditEntry.seq))).all()
            result = await audit.verify(session)
        assert sorted(left) == [6, 7, 8]  # 8: the retention run itself
        assert result.ok and result.count == 3 and result.base_seq == 5
    finally:
        await db.dispose()


async def test_without_a_siem_target_no_audit_entry_is_deleted(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = settings.model_copy(update={"retention_audit_days": 1})
    db = Database(keep)
    try:
        await _record(db, 3)
        later = utcnow() + timedelta(days=10)
        monkeypatch.setattr(retention, "utcnow", lambda: later)
        async with db.transaction() as session:
            run = await retention.run(session, keep)
        assert run.report["audit"]["entries_deleted"] == 0
        assert "no SIEM target" in run.report["audit"]["kept_reason"]
    finally:
        await db.dispose()


@pytest.mark.skipif(services.DB_BACKEND == "postgres", reason="SQLite file")
def test_after_a_purge_verify_names_the_checkpoint_and_entries_above_it_stay_protected(
    settings: Settings, tmp_path: Path
) -> None:
    import sqlite3

    shipping = settings.model_copy(
        update={"audit_ship_file": str(tmp_path / "audit.jsonl"), "retention_audit_days": 1}
    )

    async def prepare() -> None:
        db = Database(shipping)
        try:
            await _record(db, 4)
            await siem.ship_once(db, shipping)
            async with db.transaction() as session:
                retention_utc = retention.utcnow
                try:
                    retention.utcnow = lambda: retention_utc() + timedelta(days=10)  # type: ignore[assignment]
                    await retention.run(session, shipping)
                finally:
                    retention.utcnow = retention_utc  # type: ignore[assignment]
        finally:
            await db.dispose()

    services.run_in_thread(prepare)
    env = {
        "OKNO_DATA_DIR": str(settings.data_dir),
        "OKNO_SECRET_KEY": settings.secret_key,
        "OKNO_LOG_LEVEL": "error",
    }
    result = CliRunner().invoke(okno_main, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "1 entries verified" in result.output
    assert "entries up to 4 removed by retention" in result.output
    conn = sqlite3.connect(settings.data_dir / "okno.db", isolation_level=None)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit_entries WHERE seq = 5")
    conn.close()


async def test_the_daily_job_runs_only_when_a_period_is_set(settings: Settings) -> None:
    from okno.jobs import service as jobs
    from okno.jobs.registry import default_registry
    from okno.jobs.worker import Worker

    off = settings.model_copy(
        update={"retention_messages_days": 0, "retention_attachments_days": 0}
    )
    for current, expected in ((off, []), (settings, ["job"])):
        db = Database(current)
        try:
            async with db.transaction() as session:
                await jobs.enqueue(session, kind=retention.RUN)
            await Worker(db, current, default_registry()).drain()
            async with db.read() as session:
                runs = await retention.list_runs(session)
        finally:
            await db.dispose()
        assert [r.trigger for r in runs] == expected
