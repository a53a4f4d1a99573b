"""Attachment checks by content, not by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from okno.conversations.attachments import check, clean_filename, store
from okno.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from tests.builders import bearer, cmid, staff_token, widget_session
from tests.channels.telegram_live import staff_messages
from tests.channels.test_widget_api import EXE, PDF, PNG
from tests.conversations.media import GIF, M4A, MP3, MP4, WEBP

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb") + b"\x00" * 64


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.png", PNG, "image/png"),
        ("scan.JPG", JPEG, "image/jpeg"),
        ("doc.pdf", PDF, "application/pdf"),
        ("anim.gif", GIF, "image/gif"),
        ("photo.webp", WEBP, "image/webp"),
        ("voice.mp3", MP3, "audio/mpeg"),
        ("voice.m4a", M4A, "audio/mp4"),
        ("voice.mp4", M4A, "audio/mp4"),  # Viber names its voice notes .mp4
        ("clip.mp4", MP4, "video/mp4"),
    ],
)
def test_allowed_files_pass_with_their_sniffed_type(name: str, data: bytes, expected: str) -> None:
    assert check(data, name, max_bytes=1 << 20) == (name, expected)


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("virus.pdf", EXE, "attachment_type_not_allowed"),
        ("virus.exe", EXE, "attachment_type_not_allowed"),
        ("notes.txt", b"just text", "attachment_type_not_allowed"),
        ("photo.pdf", PNG, "attachment_type_mismatch"),
        ("doc.png", PDF, "attachment_type_mismatch"),
        ("clip.mp3", MP4, "attachment_type_mismatch"),
        ("voice.m4a", MP3, "attachment_type_mismatch"),
        ("clip.m4a", MP4, "attachment_type_mismatch"),
        ("photo.gif", WEBP, "attachment_type_mismatch"),
    ],
)
def test_disguised_or_unsupported_files_are_refused(name: str, data: bytes, code: str) -> None:
    with pytest.raises(UnsupportedMedia) as err:
        check(data, name, max_bytes=1 << 20)
    assert err.value.code == code


def test_size_and_emptiness_are_checked() -> None:
    with pytest.raises(PayloadTooLarge):
        check(PDF + b"0" * 100, "x.pdf", max_bytes=50)
    with pytest.raises(BadRequest):
        check(b"", "x.pdf", max_bytes=50)


def test_file_names_lose_paths_and_control_characters() -> None:
    assert clean_filename("../../etc/passwd.pdf") == "passwd.pdf"
    assert clean_filename("C:\\Users\\x\\выписка.pdf") == "выписка.pdf"
    assert clean_filename('a"<b>\x00.pdf') == "a__b__.pdf"
    assert clean_filename("") == "file"


def test_same_content_is_stored_once_under_its_hash(tmp_path: Path) -> None:
    a = store(PNG, "a.png", data_dir=tmp_path, max_bytes=1 << 20)
    b = store(PNG, "b.png", data_dir=tmp_path, max_bytes=1 << 20)
    assert a.storage_path == b.storage_path and a.sha256 == b.sha256
    files = [p for p in (tmp_path / "attachments").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].read_bytes() == PNG


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("анимация.gif", GIF, "image/gif"),
        ("фото.webp", WEBP, "image/webp"),
        ("голосовое.mp3", MP3, "audio/mpeg"),
        ("голосовое.m4a", M4A, "audio/mp4"),
        ("видео.mp4", MP4, "video/mp4"),
    ],
)
def test_a_customer_sends_pictures_voice_and_video_and_the_operator_gets_them(
    client: TestClient, name: str, data: bytes, expected: str
) -> None:
    """The type is found in the content (the browser claims octet-stream), stored, shown to
    the operator and sent back with that type."""
    token = widget_session(client)["session_token"]
    sent = client.post(
        "/api/v1/widget/attachments",
        data={"client_msg_id": cmid(), "text": ""},
        files={"file": (name, data, "application/octet-stream")},
        headers=bearer(token),
    )
    assert sent.status_code == 201, sent.text
    (att,) = sent.json()["message"]["attachments"]
    assert (att["filename"], att["content_type"], att["size"]) == (name, expected, len(data))
    (shown,) = staff_messages(client, sent.json()["message"]["conversation_id"])
    assert shown["attachments"][0]["content_type"] == expected
    download = client.get(att["url"], headers=bearer(staff_token(client, "root")))
    assert download.status_code == 200 and download.content == data
    assert download.headers["content-type"] == expected
    inline = expected.startswith("image/")
    assert download.headers["content-disposition"].startswith("inline" if inline else "attachment")
