"""Real servers for the tests: a private Dovecot, an SMTP server (aiosmtpd), a fresh PostgreSQL database.

Nothing here is a mock: the bot talks to these over TCP on 127.0.0.1 the
way it talks to production servers.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from imapclient import IMAPClient

IMAP_PASSWORD = "test-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM a daemon the tests started, and wait until it is gone (or the timeout passes)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


DOVECOT_CONF = """\
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
protocols = imap
auth_mechanisms = plain login{mechanisms}
{extra}passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={base}/mail/%u
}}
mail_location = maildir:{base}/mail/%u
mail_uid = mail
mail_gid = mail
first_valid_uid = 8
service imap-login {{
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


class Dovecot:
    """A private Dovecot instance; every test gets its own account (mailbox) on it."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.base = Path(tempfile.mkdtemp(prefix="dsr-dovecot-"))
        self.base.chmod(0o755)
        self.port = free_port()
        self.conf = self.base / "dovecot.conf"

    def start(self) -> None:
        mail = self.base / "mail"
        mail.mkdir(exist_ok=True)
        entry = pwd.getpwnam("mail")
        os.chown(mail, entry.pw_uid, entry.pw_gid)
        # A static passdb takes any user name with the shared password, so each
        # test gets a fresh, empty mailbox just by choosing a new name.
        self.conf.write_text(
            DOVECOT_CONF.format(base=self.base, port=self.port, password=IMAP_PASSWORD,
                                mechanisms=self.extra_mechanisms, extra=self.extra_config()),
            encoding="utf-8",
        )
        # Dovecot daemonises and its children inherit stdout/stderr: capture into a
        # file, not a pipe, or waiting for the pipe to close waits for Dovecot to stop.
        with (self.base / "start.log").open("wb") as out:
            subprocess.run([self.binary, "-c", str(self.conf)], check=True,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        if not wait_for_port(self.port):
            log_path = self.base / "dovecot.log"
            log = log_path.read_text(errors="replace") if log_path.exists() else ""
            raise RuntimeError(f"dovecot did not start on port {self.port}: {log[-2000:]}")

    extra_mechanisms = ""  # SASL mechanisms beyond PLAIN and LOGIN (tests.oauth_servers: OAUTHBEARER, XOAUTH2)

    def extra_config(self) -> str:
        """Settings and passdb blocks before the static passdb (which takes any user with the shared password)."""
        return ""

    def stop(self) -> None:
        """Stop the master and every process it started: open IMAP sessions drop, as in a real outage."""
        pid_file = self.base / "run" / "master.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        terminate(pid)
        # The master is a session leader; its imap, log and stats processes can outlive it.
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == pid:  # field 6 of stat: the session id
                    os.kill(int(stat.parent.name), 9)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def new_account(self) -> ImapAccount:
        return ImapAccount(port=self.port, username=f"u{secrets.token_hex(6)}", dovecot=self)


@dataclass
class Snapshot:
    """What a folder holds: per Message-ID, the flags (without \\Recent) and the exact bytes."""

    messages: dict[str, tuple[frozenset[bytes], bytes]]


@dataclass
class ImapAccount:
    port: int
    username: str
    dovecot: Dovecot
    password: str = IMAP_PASSWORD
    host: str = "127.0.0.1"

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.login(self.username, self.password)
        try:
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, data: bytes, folder: str = "INBOX", flags: tuple[bytes, ...] = (),
               arrived: datetime | None = None) -> int:
        """APPEND a message; ``arrived`` sets its INTERNALDATE (when it reached the mailbox)."""
        with self.client() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            response = client.append(folder, data, flags=flags, msg_time=arrived)
        text = response.decode() if isinstance(response, bytes) else str(response)
        return int(text.split("APPENDUID", 1)[1].split("]")[0].split()[1])

    def folders(self) -> set[str]:
        with self.client() as client:
            return {name for _flags, _sep, name in client.list_folders()}

    def snapshot(self, folder: str = "INBOX") -> dict[int, tuple[frozenset[bytes], bytes]]:
        """Every message in ``folder``: UID → (flags without \\Recent, exact bytes), read with PEEK."""
        with self.client() as client:
            if not client.folder_exists(folder):
                return {}
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            if not uids:
                return {}
            fetched = client.fetch(uids, ["FLAGS", "BODY.PEEK[]"])
        return {
            uid: (frozenset(f for f in item[b"FLAGS"] if f != b"\\Recent"), item[b"BODY[]"])
            for uid, item in fetched.items()
        }

    def uidvalidity(self, folder: str = "INBOX") -> int:
        with self.client() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    accepted_at: float = field(default_factory=time.monotonic)  # when the server accepted it


@dataclass
class RecordingHandler:
    messages: list[ReceivedMail] = field(default_factory=list)
    data_reply: str | None = None  # e.g. "451 try later" to defer every message
    rcpt_reply: str | None = None  # e.g. "550 no such user" to refuse every recipient
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # one recipient's answer, e.g. "452 mailbox full"
    ehlo_names: list[str] = field(default_factory=list)  # the name each client announced

    async def handle_EHLO(  # noqa: N802 - the name aiosmtpd calls
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.ehlo_names.append(hostname)
        session.host_name = hostname
        return responses

    async def handle_RCPT(  # noqa: N802 - the name aiosmtpd calls
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        content = envelope.original_content or envelope.content
        self.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), bytes(content)))
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on a fixed free port, which tests can stop and start again."""

    def __init__(self, smtputf8: bool = True) -> None:
        self.port = free_port()
        self.handler = RecordingHandler()
        self.controller: Controller | None = None
        self.smtputf8 = smtputf8  # offer SMTPUTF8 (RFC 6531), as Postfix does by default

    @property
    def messages(self) -> list[ReceivedMail]:
        return self.handler.messages

    def start(self) -> None:
        if self.controller is None:
            self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                         enable_SMTPUTF8=self.smtputf8)
            self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def mariadb_binaries() -> tuple[str, str] | None:
    server = shutil.which("mariadbd") or ("/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None)
    install = shutil.which("mariadb-install-db")
    return (server, install) if server and install else None


class MariaDB:
    """A private MariaDB server (Debian's ``mariadb-server``): its own data directory, socket, port and pid file.

    It runs as ``mysql``, so its directory's parents must be 0755.  Root logs in
    over TCP without a password, and every test run creates its own databases.
    """

    def __init__(self, server: str, install: str) -> None:
        self.server = server
        self.install = install
        self.base = Path(tempfile.mkdtemp(prefix="dsr-mariadb-"))
        self.base.chmod(0o755)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        data, run = self.base / "data", self.base / "run"
        if not data.exists():
            for path in (data, run):
                path.mkdir()
                shutil.chown(path, "mysql", "mysql")
            with (self.base / "install.log").open("wb") as out:
                subprocess.run([self.install, "--no-defaults", "--user=mysql", f"--datadir={data}",
                                "--auth-root-authentication-method=normal", "--skip-test-db"],
                               check=True, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        self.log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(
            [self.server, "--no-defaults", "--user=mysql", f"--datadir={data}", f"--socket={run / 'mysqld.sock'}",
             f"--pid-file={run / 'mysqld.pid'}", f"--port={self.port}", "--bind-address=127.0.0.1",
             "--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=64M",
             # A test suite needs no durability across power loss: don't fsync every commit.
             "--innodb-flush-log-at-trx-commit=2"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        if not wait_for_port(self.port, timeout=30):
            self.stop()
            text_log = (self.base / "server.log").read_text(errors="replace")
            raise RuntimeError(f"mariadbd did not start on port {self.port}: {text_log[-2000:]}")

    def url(self, database: str) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new database in utf8mb4, as the README asks an operator to create one; returns its URL."""
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        finally:
            conn.close()
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
            self.log.close()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
