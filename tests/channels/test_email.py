"""E-mail channel tests against real mail servers on loopback: Dovecot (IMAP) holds the
bank's mailbox, letters are put in it by IMAP APPEND; aiosmtpd (SMTP) takes okno's answers.

What a bank would notice: a letter becomes a dialog with the customer's own words (quotes
and signatures cut, HTML made safe text, attachments within the rules); the operator's
answer arrives as a reply in the customer's thread; the customer's answer to it lands in
the same dialog; nothing is stored or sent twice; a busy SMTP server is retried; wrong
passwords show in the channel's recent errors.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from fastapi.testclient import TestClient

from okno.app import create_app
from okno.channels import polling
from okno.channels.email.text import html_to_text, trim_reply
from okno.channels.models import Channel
from okno.jobs.worker import JobContext
from okno.settings import Settings
from tests.builders import Staff, bearer, cmid, in_db, staff_token
from tests.channels.mailservers import Dovecot, SmtpServer
from tests.channels.telegram_live import (
    add_channel,
    conversations,
    eventually,
    message_count,
    staff_messages,
)
from tests.conftest import make_settings

# The test SMTP server takes AUTH without TLS on loopback; aiosmtpd warns about that.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")

MAILBOX, MAILBOX_PASSWORD = "support@bank.example", "imap-secret"
SMTP_USER, SMTP_PASSWORD = "okno-relay", "smtp-secret"
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def imap_server() -> Iterator[Dovecot]:
    server = Dovecot({MAILBOX: MAILBOX_PASSWORD}).start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer(SMTP_USER, SMTP_PASSWORD).start()
    yield server
    server.stop()


def channel_values(imap: Dovecot, smtp: SmtpServer, **overrides: str) -> dict[str, str]:
    values = {
        "imap_host": "127.0.0.1",
        "imap_port": str(imap.port),
        "imap_security": "none",
        "imap_user": MAILBOX,
        "imap_password": MAILBOX_PASSWORD,
        "smtp_host": "127.0.0.1",
        "smtp_port": str(smtp.port),
        "smtp_security": "none",
        "smtp_user": SMTP_USER,
        "smtp_password": SMTP_PASSWORD,
        "from_address": MAILBOX,
        "from_name": "Банк Пример",
    }
    values.update(overrides)
    return values


def start_app(settings: Settings, values: dict[str, str]) -> tuple[Settings, int]:
    fast = make_settings(
        settings.data_dir,
        settings.database_url,
        worker_in_process=True,
        worker_poll_seconds=0.2,
        channel_send_timeout_seconds=5.0,
        channel_poll_seconds=0,
    )
    return fast, add_channel(fast, "email", **values)


@pytest.fixture
def live(
    settings: Settings, staff: Staff, imap_server: Dovecot, smtp_server: SmtpServer
) -> Iterator[TestClient]:
    """okno with its worker and one e-mail channel on the two servers."""
    fast, channel_id = start_app(settings, channel_values(imap_server, smtp_server))
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        yield client


def poll(client: TestClient) -> None:
    """Run the mailbox poll now (the worker also runs it every few seconds)."""
    state = client.app.state.okno  # type: ignore[attr-defined]
    ctx = JobContext(settings=state.settings, job_id=0, attempt=1)
    client.portal.call(polling.prepare_poll, state.db, {}, ctx)  # type: ignore[union-attr]


def letter(
    text: str | None = "Здравствуйте! Не приходит смс с кодом для входа.",
    *,
    sender: str = "Иван Петров <Ivan.Petrov@Customer.example>",
    subject: str = "Не приходит смс",
    message_id: str = "<CAF=abc123@mail.customer.example>",
    html: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    files: list[tuple[str, str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """A letter as a customer's mail client writes it."""
    mail = EmailMessage(policy=SMTP)
    mail["From"] = sender
    mail["To"] = f"Банк Пример <{MAILBOX}>"
    mail["Subject"] = subject
    mail["Date"] = "Mon, 23 Nov 2026 10:15:00 +0300"
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
    if references:
        mail["References"] = references
    for name, value in (headers or {}).items():
        mail[name] = value
    if text is not None:
        mail.set_content(text)
        if html is not None:
            mail.add_alternative(html, subtype="html")
    elif html is not None:
        mail.set_content(html, subtype="html")
    for filename, ctype, data in files or []:
        maintype, subtype = ctype.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


def the_dialog(client: TestClient) -> dict[str, Any]:
    return eventually(lambda: conversations(client), what="a dialog in the workspace")[0]


def take_and_reply(client: TestClient, conversation_id: int, text: str) -> None:
    anna = staff_token(client, "anna")
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/assign", json={}, headers=bearer(anna)
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"client_msg_id": cmid(), "text": text},
        headers=bearer(anna),
    )
    assert r.status_code == 201, r.text


def recent_errors(client: TestClient) -> list[dict[str, Any]]:
    root = staff_token(client, "root")
    r = client.get(f"/api/v1/channels/{client.channel_id}/errors", headers=bearer(root))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    return list(r.json()["errors"])


# -- in ----------------------------------------------------------------------------------


def test_a_plain_letter_becomes_a_dialog_with_the_customers_own_words(
    live: TestClient, imap_server: Dovecot
) -> None:
    body = (
        "Здравствуйте! Не приходит смс с кодом для входа.\n"
        "Номер тот же, что и раньше.\n"
        "\n"
        "-- \n"
        "Иван Петров\n"
        "+7 900 000-00-00\n"
    )
    imap_server.append(MAILBOX, letter(body))
    poll(live)
    dialog = the_dialog(live)
    assert dialog["channel"]["kind"] == "email"
    assert dialog["customer"]["name"] == "Иван Петров"
    (message,) = staff_messages(live, dialog["id"])
    assert message["text"] == (
        "Не приходит смс\n\nЗдравствуйте! Не приходит смс с кодом для входа.\n"
        "Номер тот же, что и раньше."
    )
    assert message["meta"]["reply_to"] == {
        "message_id": "<CAF=abc123@mail.customer.example>",
        "references": "<CAF=abc123@mail.customer.example>",
        "subject": "Не приходит смс",
    }
    # Stored letters are marked read on the next look at the mailbox, not before.
    assert imap_server.flags(MAILBOX) == {1: ""}
    poll(live)
    assert imap_server.flags(MAILBOX) == {1: "\\Seen"}


def test_html_only_mail_is_shown_as_text_without_its_scripts(
    live: TestClient, imap_server: Dovecot
) -> None:
    html = (
        "<html><head><title>t</title><style>p {color: red}</style>"
        "<script>alert('xss')</script></head><body>"
        "<p>Добрый день!</p><p>Карта <b>заблокирована</b> &amp; не работает "
        '<a href="https://bank.example/cards?id=1">в приложении</a>.</p>'
        '<img src="https://tracker.example/p.gif" onerror="alert(2)">'
        "<script type='text/javascript'>document.cookie</script>"
        "<ul><li>первое</li><li>второе</li></ul></body></html>"
    )
    imap_server.append(MAILBOX, letter(None, html=html, subject="Карта"))
    poll(live)
    (message,) = staff_messages(live, the_dialog(live)["id"])
    text = message["text"]
    assert "alert" not in text and "document.cookie" not in text and "color" not in text
    assert "<" not in text and ">" not in text
    assert "Карта заблокирована & не работает в приложении (https://bank.example/cards?id=1)." in (
        text
    )
    assert "• первое\n• второе" in text


def test_an_attachment_arrives_as_a_file_and_a_refused_type_is_named(
    live: TestClient, imap_server: Dovecot
) -> None:
    docx = b"PK\x03\x04" + b"\x00" * 100  # an Office document: not an accepted type
    raw = letter(
        "Прикладываю выписку.",
        files=[
            ("выписка.pdf", "application/pdf", PDF),
            ("заявление.docx", "application/octet-stream", docx),
        ],
    )
    imap_server.append(MAILBOX, raw)
    poll(live)
    (message,) = staff_messages(live, the_dialog(live)["id"])
    assert message["text"].endswith("Прикладываю выписку.")
    (attachment,) = message["attachments"]
    assert attachment["filename"] == "выписка.pdf"
    assert attachment["content_type"] == "application/pdf"
    root = staff_token(live, "root")
    downloaded = live.get(attachment["url"], headers=bearer(root))
    assert downloaded.status_code == 200 and downloaded.content == PDF
    assert message["meta"]["files_failed"] == [
        {"filename": "заявление.docx", "reason": "attachment_type_not_allowed"}
    ]


def test_the_same_letter_fetched_again_is_stored_once(
    live: TestClient, imap_server: Dovecot
) -> None:
    raw = letter("Проверка дублей")
    imap_server.append(MAILBOX, raw)
    poll(live)
    assert message_count(live.app.state.okno.settings) == 1  # type: ignore[attr-defined]
    # The same letter delivered twice (a second copy with a new UID) ...
    imap_server.append(MAILBOX, raw)
    poll(live)
    # ... and a crash before the cursor was saved (the poll starts over, unread again).
    settings = live.app.state.okno.settings  # type: ignore[attr-defined]

    async def forget_cursor(session: Any) -> None:
        row = await session.get(Channel, live.channel_id)  # type: ignore[attr-defined]
        row.cursor = None

    in_db(settings, forget_cursor)
    imap_server.set_flags(MAILBOX, 1, "\\Seen", add=False)
    poll(live)
    assert message_count(settings) == 1
    assert [m["text"] for m in staff_messages(live, the_dialog(live)["id"])] == [
        "Не приходит смс\n\nПроверка дублей"
    ]


def test_a_renumbered_mailbox_is_noticed_and_read_from_the_start(
    live: TestClient, imap_server: Dovecot
) -> None:
    settings = live.app.state.okno.settings  # type: ignore[attr-defined]

    async def stale_cursor(session: Any) -> None:
        row = await session.get(Channel, live.channel_id)  # type: ignore[attr-defined]
        row.cursor = "12345:900:900"  # UIDs of a mailbox that was rebuilt since

    in_db(settings, stale_cursor)
    imap_server.append(MAILBOX, letter("После восстановления ящика"))
    poll(live)
    assert message_count(settings) == 1

    async def cursor(session: Any) -> str:
        row = await session.get(Channel, live.channel_id)  # type: ignore[attr-defined]
        return str(row.cursor)

    uidvalidity, last, _ = in_db(settings, cursor).split(":")
    assert uidvalidity != "12345" and last == "1"


def test_automatic_mail_is_not_a_customer_message(live: TestClient, imap_server: Dovecot) -> None:
    imap_server.append(
        MAILBOX,
        letter(
            "Я в отпуске до понедельника.",
            message_id="<ooo-1@customer.example>",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    )
    imap_server.append(
        MAILBOX, letter("Рассылка", message_id="<list-1@x.example>", headers={"List-Id": "<x>"})
    )
    imap_server.append(
        MAILBOX, letter("Копия нашего письма", sender=MAILBOX, message_id="<own@bank.example>")
    )
    poll(live)
    assert message_count(live.app.state.okno.settings) == 0  # type: ignore[attr-defined]
    poll(live)
    assert set(imap_server.flags(MAILBOX).values()) == {"\\Seen"}  # looked at, all the same


def test_move_mode_moves_stored_letters_to_the_done_folder(
    settings: Settings, staff: Staff, imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    fast, _ = start_app(
        settings,
        channel_values(imap_server, smtp_server, after_fetch="move", move_to="Обработано"),
    )
    imap_server.append(MAILBOX, letter("Письмо для переноса"))
    with TestClient(create_app(fast)) as client:
        poll(client)
        assert message_count(fast) == 1
        poll(client)
    assert imap_server.flags(MAILBOX) == {}
    folder = "&BB4EMQRABDAEMQQ+BEIEMAQ9BD4-"  # "Обработано" in IMAP's modified UTF-7
    (flags,) = imap_server.flags(MAILBOX, folder).values()
    assert "\\Seen" in flags.split()


def test_a_poll_waiting_for_mail_returns_as_soon_as_a_letter_arrives(
    imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    import asyncio
    import threading
    import time

    from okno.channels import kinds

    adapter = kinds.adapter_for("email")
    config = {**channel_values(imap_server, smtp_server), "after_fetch": "seen"}

    async def wait_for_mail(wait: float) -> tuple[float, Any]:
        started = time.monotonic()
        polled = await adapter.poll(config, None, wait, 5.0)
        return time.monotonic() - started, polled

    took, polled = asyncio.run(wait_for_mail(1.0))
    assert polled.result.messages == [] and 0.9 < took < 4  # nothing came: it waited
    later = threading.Timer(0.8, imap_server.append, (MAILBOX, letter("Срочно!")))
    later.start()
    took, polled = asyncio.run(wait_for_mail(20.0))
    later.join()
    assert [m.text for m in polled.result.messages] == ["Не приходит смс\n\nСрочно!"]
    assert took < 5  # IMAP IDLE woke it, not the 20 s timeout


# -- out ---------------------------------------------------------------------------------


def test_the_operators_answer_is_a_threaded_reply_and_the_customers_answer_continues_the_dialog(
    live: TestClient, imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    imap_server.append(
        MAILBOX,
        letter(
            "Как поменять лимит?",
            subject="Re: Лимит по карте",
            message_id="<second@customer.example>",
            in_reply_to="<first@customer.example>",
            references="<first@customer.example>",
        ),
    )
    poll(live)
    dialog = the_dialog(live)
    take_and_reply(live, dialog["id"], "Лимит меняется в приложении: Карты → Лимиты.")
    (sent,) = smtp_server.wait_for(1)
    assert sent.mail_from == MAILBOX
    assert sent.rcpt_tos == ["ivan.petrov@customer.example"]
    mail = sent.message
    assert mail["From"] == f"Банк Пример <{MAILBOX}>"
    assert mail["To"] == "ivan.petrov@customer.example"
    assert mail["Subject"] == "Re: Лимит по карте"  # not "Re: Re: ..."
    assert mail["In-Reply-To"] == "<second@customer.example>"
    assert mail["References"] == "<first@customer.example> <second@customer.example>"
    okno_id = str(mail["Message-ID"])
    assert okno_id.startswith("<okno.") and okno_id.endswith("@bank.example>")
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail.get_content().strip() == "Лимит меняется в приложении: Карты → Лимиты."
    assert mail["Auto-Submitted"] is None  # a person wrote it
    eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent", what="sent")

    # The customer answers okno's letter from their mail client.
    answer = (
        "Спасибо, получилось!\n"
        "\n"
        "пн, 23 нояб. 2026 г. в 12:00, Банк Пример <support@bank.example>:\n"
        "> Лимит меняется в приложении: Карты → Лимиты.\n"
    )
    imap_server.append(
        MAILBOX,
        letter(
            answer,
            subject="Re: Лимит по карте",
            message_id="<third@customer.example>",
            in_reply_to=okno_id,
            references=f"<first@customer.example> <second@customer.example> {okno_id}",
        ),
    )
    poll(live)
    texts = eventually(
        lambda: [m["text"] for m in staff_messages(live, dialog["id"])][2:], what="the answer"
    )
    assert texts == ["Спасибо, получилось!"]
    assert [d["id"] for d in conversations(live)] == [dialog["id"]]


def test_buttons_become_numbered_options_and_files_attachments(
    settings: Settings, imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    import asyncio

    import httpx

    from okno.channels import kinds
    from okno.channels.adapter import Outbound, OutboundFile

    adapter = kinds.adapter_for("email")
    config = {**channel_values(imap_server, smtp_server), "_channel_id": 3}
    config.setdefault("after_fetch", "seen")
    message = Outbound(
        message_id=41,
        conversation_id=7,
        recipient="client@customer.example",
        text="Что случилось с картой?",
        files=[OutboundFile("тарифы.pdf", "application/pdf", PDF)],
        buttons=[{"label": "Потерял", "payload": "okno:41:0"}, {"label": "Украли", "payload": "x"}],
        author_kind="bot",
    )

    async def send_twice() -> tuple[str, str]:
        async with httpx.AsyncClient(timeout=5) as client:
            first = await adapter.send(client, config, message)
            second = await adapter.send(client, config, message)
        return first.external_id, second.external_id

    first, second = asyncio.run(send_twice())
    assert first == second  # a resend is the same letter
    letters = smtp_server.wait_for(2)
    mail = letters[0].message
    assert mail["Message-ID"] == first
    assert mail["Subject"] == "Ответ на ваше обращение"
    assert mail["In-Reply-To"] is None
    assert mail["Auto-Submitted"] == "auto-replied"  # the bot: vacation replies stay quiet
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    assert body.get_content().replace("\r\n", "\n").strip() == (
        "Что случилось с картой?\n\n1. Потерял\n2. Украли\n\nОтветьте цифрой варианта."
    )
    (attached,) = list(mail.iter_attachments())
    assert attached.get_filename() == "тарифы.pdf"
    assert attached.get_content_type() == "application/pdf"
    assert attached.get_content() == PDF


def test_a_temporary_smtp_failure_is_retried_and_the_letter_arrives_once(
    live: TestClient, imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    imap_server.append(MAILBOX, letter("Где мой перевод?"))
    poll(live)
    dialog = the_dialog(live)
    smtp_server.faults.append("451 4.3.0 Temporary local problem, try again later")
    take_and_reply(live, dialog["id"], "Перевод зачислен.")
    (sent,) = smtp_server.wait_for(1, within=40)
    assert sent.message.get_content().strip() == "Перевод зачислен."
    assert smtp_server.data_commands == 2
    eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent", what="sent")
    assert len(smtp_server.letters) == 1


def test_an_unknown_recipient_is_not_retried_and_staff_see_not_delivered(
    live: TestClient, imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    imap_server.append(MAILBOX, letter("Вопрос", sender="gone@customer.example"))
    poll(live)
    dialog = the_dialog(live)
    smtp_server.unknown.add("gone@customer.example")
    take_and_reply(live, dialog["id"], "Ответ")
    eventually(
        lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "failed", what="failed"
    )
    assert smtp_server.letters == [] and smtp_server.data_commands == 0
    assert "550" in recent_errors(live)[0]["message"]


def test_a_bounce_for_okno_s_letter_marks_it_not_delivered(
    live: TestClient, imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    imap_server.append(MAILBOX, letter("Вопрос"))
    poll(live)
    dialog = the_dialog(live)
    take_and_reply(live, dialog["id"], "Ответ")
    (sent,) = smtp_server.wait_for(1)
    eventually(lambda: staff_messages(live, dialog["id"])[-1]["delivery"] == "sent")
    # A delivery status notification as Postfix writes it (RFC 3464).
    boundary = "=_report_1"
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\n"
        f"To: {MAILBOX}\n"
        "Subject: Undelivered Mail Returned to Sender\n"
        "Message-ID: <bounce-1@mx.customer.example>\n"
        "Auto-Submitted: auto-replied\n"
        "MIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=delivery-status;\n"
        f'\tboundary="{boundary}"\n\n'
        f"--{boundary}\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
        f"--{boundary}\nContent-Type: message/delivery-status\n\n"
        "Reporting-MTA: dns; mx.customer.example\n\n"
        "Final-Recipient: rfc822; ivan.petrov@customer.example\nAction: failed\n"
        "Status: 5.2.2\nDiagnostic-Code: smtp; 552 5.2.2 Mailbox full\n"
        f"--{boundary}\nContent-Type: text/rfc822-headers\n\n"
        f"From: {MAILBOX}\nMessage-ID: {sent.message['Message-ID']}\nSubject: Re: x\n"
        f"--{boundary}--\n"
    )
    imap_server.append(MAILBOX, dsn.replace("\r\n", "\n").replace("\n", "\r\n").encode())
    poll(live)
    messages = eventually(
        lambda: [m for m in staff_messages(live, dialog["id"]) if m["delivery"] == "failed"],
        what="not delivered",
    )
    assert messages[0]["text"] == "Ответ"
    assert "Mailbox full" in recent_errors(live)[0]["message"]
    assert message_count(live.app.state.okno.settings) == 2  # type: ignore[attr-defined]


# -- checks and errors -------------------------------------------------------------------


def test_the_check_logs_in_to_both_servers(live: TestClient) -> None:
    root = staff_token(live, "root")
    r = live.post(f"/api/v1/channels/{live.channel_id}/check", headers=bearer(root))  # type: ignore[attr-defined]
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True
    assert MAILBOX in r.json()["detail"] and "SMTP" in r.json()["detail"]


def test_wrong_passwords_show_in_the_channels_recent_errors(
    settings: Settings, staff: Staff, imap_server: Dovecot, smtp_server: SmtpServer
) -> None:
    fast, channel_id = start_app(
        settings,
        channel_values(imap_server, smtp_server, imap_password="wrong", smtp_password="also-wrong"),
    )
    imap_server.append(MAILBOX, letter("Не дойдёт"))
    with TestClient(create_app(fast)) as client:
        client.channel_id = channel_id  # type: ignore[attr-defined]
        poll(client)
        assert message_count(fast) == 0
        errors = recent_errors(client)
        assert errors[0]["kind"] == "poll"
        assert "IMAP login failed" in errors[0]["message"]
        assert "wrong" not in errors[0]["message"]  # never the password itself
        root = staff_token(client, "root")
        r = client.post(f"/api/v1/channels/{channel_id}/check", headers=bearer(root))
        assert r.status_code == 200 and r.json()["ok"] is False
        assert "IMAP login failed" in r.json()["detail"]
    # The SMTP side on its own: the server refuses the login with 535.
    import asyncio

    import httpx

    from okno.channels import kinds
    from okno.channels.adapter import SendFailed

    adapter = kinds.adapter_for("email")
    config = channel_values(imap_server, smtp_server, smtp_password="also-wrong")

    async def check() -> str:
        async with httpx.AsyncClient(timeout=5) as http:
            return await adapter.check(http, config)

    with pytest.raises(SendFailed) as failed:
        asyncio.run(check())
    assert "SMTP login refused: 535" in failed.value.reason
    assert failed.value.retry is False


def test_a_webhook_to_an_email_channel_is_refused(live: TestClient) -> None:
    r = live.post(f"/hooks/email/{live.channel_id}", json={"from": "x@y.z"})  # type: ignore[attr-defined]
    assert r.status_code == 404 and r.json()["code"] == "no_webhook"
    assert message_count(live.app.state.okno.settings) == 0  # type: ignore[attr-defined]


def test_settings_that_do_not_fit_are_refused_by_name(settings: Settings) -> None:
    from okno.errors import BadRequest

    base = {
        "imap_host": "imap.bank.example",
        "imap_user": "support",
        "imap_password": "p",
        "smtp_host": "smtp.bank.example",
        "from_address": "support@bank.example",
    }
    for field, value in (
        ("imap_security", "tls13"),
        ("smtp_port", "99999"),
        ("after_fetch", "delete"),
        ("from_address", "Банк <support@bank.example>"),
        ("imap_host", "imap.bank.example/path"),
        ("from_name", "Банк\r\nBcc: all@bank.example"),
    ):
        with pytest.raises(BadRequest) as refused:
            add_channel(settings, "email", **{**base, field: value})
        assert refused.value.fields.get("field") == field
    assert add_channel(settings, "email", **base) > 0


# -- reading letters: the trimming rules on the shapes real clients write -----------------


def test_quoted_history_and_signatures_are_cut_where_clients_mark_them() -> None:
    gmail = "Да, всё верно.\n\nOn Mon, 23 Nov 2026 at 12:00, Bank <s@bank.example>\nwrote:\n> old\n"
    assert trim_reply(gmail) == "Да, всё верно."
    outlook = (
        "Спасибо.\n\n________________________________\nFrom: Bank <s@bank.example>\n"
        "Sent: Monday, November 23, 2026 12:00 PM\nTo: Ivan\nSubject: Re: x\n\nold text\n"
    )
    assert trim_reply(outlook) == "Спасибо."
    outlook_ru = (
        "Хорошо\n\nОт: Банк <s@bank.example>\nОтправлено: 23 ноября 2026 г. 12:00\n"
        "Кому: Иван\nТема: x\n\nстарое\n"
    )
    assert trim_reply(outlook_ru) == "Хорошо"
    yandex = 'Понял\n\n23.11.2026, 12:00, "Банк" <s@bank.example>:\n> старое\n'
    assert trim_reply(yandex) == "Понял"
    thunderbird = "Ок\n\nИван Петров написал:\n> старое\n"
    assert trim_reply(thunderbird) == "Ок"
    iphone = "Да\n\nОтправлено с iPhone"
    assert trim_reply(iphone) == "Да"
    # Answers written between quoted lines are kept whole: no safe cut exists there.
    inline = "> Ваш номер?\n+7 900\n> Город?\nМосква"
    assert trim_reply(inline) == inline
    # Only a quote: better the quote than nothing.
    assert trim_reply("> только цитата") == "> только цитата"


def test_html_to_text_keeps_words_and_links_and_drops_everything_else() -> None:
    html = (
        "<div>Привет,<br>мир</div><noscript>x</noscript>"
        '<a href="javascript:alert(1)">жми</a> <a href="mailto:a@b.example">a@b.example</a>'
        "<table><tr><td>Счёт</td><td>1 000 &#8381;</td></tr></table>"
    )
    text = html_to_text(html)
    assert text == "Привет,\nмир\nжми a@b.example\n\nСчёт 1 000 ₽"


def test_an_old_client_s_koi8_letter_without_message_id_reads_right_and_has_a_stable_id() -> None:
    from okno.channels.email.parsing import parse_mail

    body = "Здравствуйте, карта не работает.".encode("koi8-r")
    raw = (
        b"From: =?koi8-r?B?" + base64.b64encode("Пётр".encode("koi8-r")) + b"?= "
        b"<PETR@Old-Mail.example>\r\n"
        b"To: support@bank.example\r\n"
        b"Subject: =?windows-1251?Q?=CA=E0=F0=F2=E0?=\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=koi8-r\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body + b"\r\n"
    )
    first = parse_mail(raw, own_address=MAILBOX, ref_prefix="imap:1:1")
    again = parse_mail(raw, own_address=MAILBOX, ref_prefix="imap:1:2")
    assert first.incoming is not None and again.incoming is not None
    assert first.incoming.external_customer_id == "petr@old-mail.example"
    assert first.incoming.customer_name == "Пётр"
    assert first.incoming.text == "Карта\n\nЗдравствуйте, карта не работает."
    assert first.incoming.external_id.startswith("sha256:")
    assert first.incoming.external_id == again.incoming.external_id
