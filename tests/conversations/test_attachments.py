"""Attachment checks by content, not by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from okno.conversations.attachments import check, clean_filename, store
from okno.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from tests.channels.test_widget_api import EXE, PDF, PNG

JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb") + b"\x00" * 64


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("a.png", PNG, "image/png"),
        ("scan.JPG", JPEG, "image/jpeg"),
        ("doc.pdf", PDF, "application/pdf"),
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
