"""The bot, wired to real servers, with the helpers the end-to-end tests read like specifications with."""

from __future__ import annotations

import email
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any, cast

from sqlmodel import select

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.config import Config, load_config
from dsr_mailbot.pipeline import RunReport
from dsr_mailbot.service.app import run_once_from_config
from dsr_mailbot.store.database import Store, find_user_by_email
from dsr_mailbot.store.keys import Keyring, keyring_for
from dsr_mailbot.store.models import AuditEvent, OutboxMessage, Request, User, utcnow
from tests.servers import ImapAccount, SmtpServer

REPO = Path(__file__).resolve().parents[1]
PROCESSED = "DSR-Processed"
MX = "mx.smarthings.kz"
TRUST = f'authserv_id = "{MX}"\nverification = "auto"'
RECEIVED = f"Received: from mail.example.ru by {MX} with ESMTPS id 1; Wed, 25 Nov 2026 10:00:00 +0500\r\n"


def via_mx(data: bytes, result: str | None = None) -> bytes:
    """As the operator's server delivers it: its Authentication-Results (if any) above its Received line."""
    auth = f"Authentication-Results: {MX}; {result}\r\n" if result else ""
    return (auth + RECEIVED).encode() + data


def authenticated(data: bytes, domain: str = "example.ru") -> bytes:
    results = f"dkim=pass header.d={domain}; spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}"
    return via_mx(data, results)


def mail(
    sender: str,
    subject: str,
    body: str = "",
    *,
    html: str | None = None,
    message_id: str | None = None,
    to: str = "support@smarthings.kz",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A well-formed message; non-ASCII headers come out RFC 2047-encoded, as mail clients send them."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(utcnow())
    msg["Message-ID"] = message_id or make_msgid(domain="client.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    if html is not None and not body:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
        if html is not None:
            msg.add_alternative(html, subtype="html")
    return msg.as_bytes()


def message_id_of(data: bytes) -> str:
    return str(email.message_from_bytes(data, policy=default_policy)["Message-ID"]).strip()


class Bot:
    def __init__(self, tmp_path: Path, account: ImapAccount, smtp: SmtpServer, db_url: str) -> None:
        self.dir = tmp_path / "bot"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.account = account
        self.smtp = smtp
        self.db_url = db_url
        self.config_path = self.dir / "config.toml"
        self.write_config()
        self.store = Store(db_url)
        self.store.init_schema()

    def write_config(
        self, extra: str = "", smtp_port: int | None = None, trust: str = 'verification = "never"',
        erasure_delay_days: int = 30,
    ) -> None:
        """The bot's configuration; by default without confirmations, which tests/trust/test_trust.py covers."""
        self.config_path.write_text(
            f"""
[imap]
host = "127.0.0.1"
port = {self.account.port}
security = "none"
username = "{self.account.username}"
password = "{self.account.password}"
folder = "INBOX"
processed_folder = "{PROCESSED}"

[smtp]
host = "127.0.0.1"
port = {smtp_port or self.smtp.port}
security = "none"
from_address = "support@smarthings.kz"

[database]
url = "{self.db_url}"

[trust]
{trust}

[policy]
default_language = "ru"
erasure_delay_days = {erasure_delay_days}
{extra}
""",
            encoding="utf-8",
        )

    @property
    def config(self) -> Config:
        return load_config(self.config_path)

    @property
    def keyring(self) -> Keyring:
        config = self.config
        return keyring_for(config.secret_key, config.key_file)

    def run(self, now: datetime | None = None) -> RunReport:
        """One pass; ``now`` sets the bot's clock (for expiry), else the real time."""
        return run_once_from_config(self.config, self.store, clock=(lambda: now) if now else None)

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dsr_mailbot", "-c", str(self.config_path), *args],
            capture_output=True, text=True, cwd=self.dir, env=env, timeout=120, check=False,
        )

    def add_user(self, email_address: str, **fields: Any) -> int:
        fields.setdefault("marketing_consent", True)
        with self.store.transaction() as session:
            user = User(email=normalise_address(email_address) or email_address.lower(), **fields)
            session.add(user)
            session.flush()
            assert user.id is not None
            return user.id

    def user(self, email_address: str) -> User | None:
        with self.store.transaction() as session:
            return find_user_by_email(session, email_address)

    def requests(self) -> list[Request]:
        with self.store.transaction() as session:
            return list(session.exec(select(Request).order_by(Request.id)))  # type: ignore[arg-type]

    def events(self) -> list[AuditEvent]:
        with self.store.transaction() as session:
            return list(session.exec(select(AuditEvent).order_by(AuditEvent.id)))  # type: ignore[arg-type]

    def outbox(self) -> list[OutboxMessage]:
        with self.store.transaction() as session:
            return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))  # type: ignore[arg-type]

    def replies(self) -> list[EmailMessage]:
        """Messages the SMTP server accepted, parsed."""
        return [email.message_from_bytes(m.data, policy=default_policy) for m in self.smtp.messages]

    def reply_text(self, reply: EmailMessage) -> str:
        part = reply.get_body(("plain",))
        assert part is not None
        return cast(str, part.get_content()).replace("\r\n", "\n")

    def close(self) -> None:
        self.store.dispose()




CONFLICTING_PHONES = "Телефон: +7 701 111 22 33\nТелефон: +7 701 999 88 77"


def request_in_review(bot: Bot, sender: str, subject: str = "Personal data update",
                      body: str = CONFLICTING_PHONES) -> int:
    """One pass over a letter that goes to review (by default, two phone numbers conflict); its request's id."""
    bot.account.append(mail(sender, subject, body))
    bot.run()
    [request] = bot.requests()
    assert request.state == "review" and request.id is not None
    return request.id


class DaemonProcess:
    """`dsr-mailbot run` as a real process, with its log in a file the test can wait on."""

    started: list[DaemonProcess] = []  # noqa: RUF012 - killed after each test by a conftest fixture

    def __init__(self, bot: Bot, name: str = "daemon", env: dict[str, str] | None = None) -> None:
        import os

        self.log_path = bot.dir / f"{name}.log"
        self.log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dsr_mailbot", "-c", str(bot.config_path), "run"],
            stdout=self.log_file, stderr=subprocess.STDOUT, cwd=bot.dir, env={**os.environ, **(env or {})},
        )
        DaemonProcess.started.append(self)

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited ({self.process.returncode}) before logging {text!r}:\n{self.log}")
            time.sleep(0.05)
        raise AssertionError(f"daemon did not log {text!r} within {timeout} s:\n{self.log}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then the exit code (raises if it takes longer than ``timeout``)."""
        import signal as signals

        if self.process.poll() is None:
            self.process.send_signal(signals.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.log_file.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        self.log_file.close()


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class WebProcess:
    """`dsr-mailbot web` as a real process on a free loopback port, its log in a file."""

    started: list[WebProcess] = []  # noqa: RUF012 - killed after each test by a conftest fixture

    def __init__(self, bot: Bot, port: int) -> None:
        import os

        from tests.servers import wait_for_port

        self.url = f"http://127.0.0.1:{port}"
        self.log_path = bot.dir / "web.log"
        self.log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dsr_mailbot", "-c", str(bot.config_path), "web"],
            stdout=self.log_file, stderr=subprocess.STDOUT, cwd=bot.dir, env=dict(os.environ),
        )
        WebProcess.started.append(self)
        if not wait_for_port(port, timeout=30):
            self.stop()
            raise AssertionError(f"the console did not listen on {port}:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        import signal as signals

        if self.process.poll() is None:
            self.process.send_signal(signals.SIGTERM)
        code = self.process.wait(timeout=10)
        self.log_file.close()
        return code
