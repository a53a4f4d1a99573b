"""Real mail servers on loopback for the e-mail channel's tests: Debian's Dovecot for IMAP
(started with a configuration written into a temporary folder, listening on a free port)
and aiosmtpd for SMTP (recording every letter it takes; faults scripted per test).

Letters reach the mailbox by IMAP APPEND, as a mail delivery agent would put them there.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests import services

CONFIG = """\
base_dir = {root}/run
instance_name = okno-test-{port}
protocols = imap
listen = 127.0.0.1
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# A wrong password is answered at once (the tests try one on purpose).
auth_failure_delay = 0
login_trusted_networks = 127.0.0.0/8
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/home/%n
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
"""


class Dovecot:
    """A Dovecot instance of its own: users with plain passwords, Maildirs in a temp dir."""

    def __init__(self, users: dict[str, str]) -> None:
        self.binary = services.require_dovecot()
        self.users = users
        self.port = services.free_port()
        self.root = Path(tempfile.mkdtemp(prefix="okno-imap-"))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Dovecot:
        os.chmod(self.root, 0o755)  # the mail user (not root) must reach the Maildirs
        (self.root / "home").mkdir()
        if os.geteuid() == 0:
            # Dovecot refuses to serve mail as root: the Debian package's own users do it.
            internal, login, mail = "dovecot", "dovenull", pwd.getpwnam("dovecot")
        else:
            me = pwd.getpwuid(os.getuid())
            internal, login, mail = me.pw_name, me.pw_name, me
        os.chown(self.root / "home", mail.pw_uid, mail.pw_gid)
        (self.root / "passwd").write_text(
            "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self.users.items())
        )
        conf = self.root / "dovecot.conf"
        conf.write_text(
            CONFIG.format(
                root=self.root,
                port=self.port,
                internal_user=internal,
                internal_group=_group_name(pwd.getpwnam(internal).pw_gid),
                login_user=login,
                mail_uid=mail.pw_uid,
                mail_gid=mail.pw_gid,
            )
        )
        self.process = subprocess.Popen(
            [self.binary, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.1)
        log = (
            (self.root / "dovecot.log").read_text() if (self.root / "dovecot.log").exists() else ""
        )
        self.stop()
        raise RuntimeError(f"Dovecot did not start:\n{log}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)

    def client(self, user: str) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(user, self.users[user])
        return conn

    def append(self, user: str, raw: bytes, folder: str = "INBOX", flags: str = "") -> None:
        """Deliver a letter into the mailbox (IMAP APPEND)."""
        conn = self.client(user)
        try:
            status, data = conn.append(folder, flags or None, None, raw)
            assert status == "OK", data
        finally:
            conn.logout()

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, str]:
        """UID -> the letter's flags, for every letter in ``folder``."""
        conn = self.client(user)
        try:
            status, _ = conn.select(folder)
            if status != "OK":
                return {}
            status, data = conn.uid("FETCH", "1:*", "(FLAGS)")
            found: dict[int, str] = {}
            for item in data or []:
                if isinstance(item, bytes):
                    uid = re.search(rb"UID (\d+)", item)
                    flags = re.search(rb"FLAGS \(([^)]*)\)", item)
                    if uid and flags:
                        found[int(uid.group(1))] = flags.group(1).decode()
            return found
        finally:
            conn.logout()

    def set_flags(self, user: str, uid: int, flags: str, *, add: bool) -> None:
        conn = self.client(user)
        try:
            conn.select("INBOX")
            conn.uid("STORE", str(uid), "+FLAGS" if add else "-FLAGS", f"({flags})")
        finally:
            conn.logout()


def _group_name(gid: int) -> str:
    import grp

    return grp.getgrgid(gid).gr_name


@dataclass
class Letter:
    """One letter the SMTP server took."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        parsed = message_from_bytes(self.data, policy=default)
        assert isinstance(parsed, EmailMessage)
        self.message = parsed


class SmtpServer:
    """aiosmtpd on loopback with AUTH; ``faults`` are answered to the next DATA commands
    (e.g. "451 4.3.0 Try again later"), ``unknown`` recipients get 550 at RCPT."""

    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.letters: list[Letter] = []
        self.faults: list[str] = []
        self.unknown: set[str] = set()
        self.data_commands = 0
        self.logins: list[tuple[str, bool]] = []
        self._lock = threading.Lock()
        self.port = services.free_port()
        self.controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        with self._lock:
            self.logins.append((auth_data.login.decode(), ok))
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.unknown:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.data_commands += 1
            if self.faults:
                return self.faults.pop(0)
            self.letters.append(
                Letter(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
            )
        return "250 2.0.0 Ok: queued"

    def start(self) -> SmtpServer:
        # AUTH without TLS, which aiosmtpd warns about, is fine on loopback in a test.
        self.controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=False,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    def wait_for(self, count: int = 1, within: float = 30.0) -> list[Letter]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.letters) >= count:
                    return list(self.letters)
            time.sleep(0.05)
        raise AssertionError(f"{count} letters not taken within {within} s: {self.letters}")
