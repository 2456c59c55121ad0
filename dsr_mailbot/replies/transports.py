"""How replies leave: SMTP (one connection reused for a drain), or files in a folder when no SMTP is configured.

Each :class:`Transport` hands one message over and raises
:class:`~dsr_mailbot.errors.SendUnavailable` (retry later) or
:class:`~dsr_mailbot.errors.SendError` (give up on this message).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from dsr_mailbot.config import SmtpConfig
from dsr_mailbot.credentials.sasl import chosen_mechanism, responder
from dsr_mailbot.credentials.tokens import AccessTokens
from dsr_mailbot.errors import ConfigError, CredentialsUnavailable, RecipientDeferred, SendError, SendUnavailable
from dsr_mailbot.reading.parse import header_block
from dsr_mailbot.store.models import utcnow

log = logging.getLogger("dsr_mailbot")


class Transport(Protocol):
    def send(self, envelope_from: str, recipient: str, data: bytes) -> None:
        """Hand one message over; raise SendUnavailable (retry) or SendError (give up)."""

    def close(self) -> None:
        """Release the connection, if any; never raises."""

    def forget(self, message_ids: Sequence[str]) -> None:
        """Remove any copy of these messages the transport keeps (erasure); a copy already gone is no error."""


class SmtpTransport:
    """One SMTP connection, opened on first use and reused for the rest of a drain."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self.conn: smtplib.SMTP | None = None
        self.tokens: AccessTokens | None = None
        self.login_method = ""  # how the connection logged in: "password", a SASL mechanism, or "" (no login)

    def connect(self) -> smtplib.SMTP:
        """The connection, opened and logged in now if it is not yet (``dsr-mailbot check`` tries it so)."""
        if self.conn is None:
            self.conn = self._connect()
        return self.conn

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            conn: smtplib.SMTP
            if cfg.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, local_hostname=cfg.helo_name, timeout=cfg.timeout_seconds,
                    context=ssl.create_default_context(),
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, local_hostname=cfg.helo_name, timeout=cfg.timeout_seconds)
                if cfg.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            self.login_method = ""
            if cfg.oauth2 is not None:
                self._oauth2_login(conn)
            elif cfg.username and cfg.password:
                conn.login(cfg.username, cfg.password)
                self.login_method = "password"
        except CredentialsUnavailable as exc:
            raise SendUnavailable(str(exc)) from exc
        except smtplib.SMTPAuthenticationError as exc:
            # Not the message's fault: every reply would fail the same way until the config is fixed.
            raise ConfigError(f"[smtp] username/password: login refused ({exc.smtp_code})") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendUnavailable(f"SMTP connect: {type(exc).__name__}") from exc
        return conn

    def _oauth2_login(self, conn: smtplib.SMTP) -> None:
        """OAUTHBEARER where offered, else XOAUTH2; a refused token is refreshed once and tried again."""
        cfg = self.config
        assert cfg.oauth2 is not None and cfg.username is not None  # the configuration requires both together
        tokens = self.tokens = self.tokens or AccessTokens(cfg.oauth2, "smtp", "smtp")
        conn.ehlo_or_helo_if_needed()
        mechanism = chosen_mechanism(conn.esmtp_features.get("auth", "").split())
        if mechanism is None:
            raise ConfigError('[smtp] auth = "oauth2": the server offers neither OAUTHBEARER nor XOAUTH2')
        self.login_method = mechanism
        token = tokens.current()
        try:
            conn.auth(mechanism, responder(mechanism, cfg.username, cfg.host, cfg.port, token))
            return
        except smtplib.SMTPAuthenticationError:
            pass  # revoked, or expired early: once more with a fresh token
        token = tokens.refresh(rejected=token)
        try:
            conn.auth(mechanism, responder(mechanism, cfg.username, cfg.host, cfg.port, token))
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigError(f"[smtp] oauth2: the server refused a fresh access token ({mechanism}, "
                              f"{exc.smtp_code}); check the app's SMTP permission and [smtp] username") from exc

    def send(self, envelope_from: str, recipient: str, data: bytes) -> None:
        self.connect()
        assert self.conn is not None
        options: list[str] = []
        if not (recipient.isascii() and envelope_from.isascii() and _ascii_headers(data)):
            try:
                self.conn.ehlo_or_helo_if_needed()
            except (smtplib.SMTPException, OSError) as exc:
                self.close()
                raise SendUnavailable(f"SMTP EHLO: {type(exc).__name__}") from exc
            if not self.conn.has_extn("smtputf8"):
                raise SendError("the recipient's address needs SMTPUTF8, which the SMTP server does not offer")
            options = ["SMTPUTF8"]
        try:
            self.conn.sendmail(envelope_from, [recipient], data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            if 400 <= code < 500:  # this recipient only (a full mailbox, greylisting): the others still go
                raise RecipientDeferred(f"SMTP recipient deferred ({code})") from exc
            raise SendError(f"SMTP recipient refused ({code})") from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            if 400 <= exc.smtp_code < 500:
                raise SendUnavailable(f"SMTP deferred ({exc.smtp_code})") from exc
            raise SendError(f"SMTP refused ({exc.smtp_code})") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise SendUnavailable(f"SMTP send: {type(exc).__name__}") from exc

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except Exception:  # the connection may already be gone; nothing left to release
            conn.close()

    def forget(self, message_ids: Sequence[str]) -> None:
        return None  # mail handed to the SMTP server is the server's; nothing of it is kept here


def _ascii_headers(data: bytes) -> bool:
    return header_block(data).isascii()


class FileTransport:
    """Writes each message as ``<directory>/<message-id>.eml`` (no SMTP configured), private to its owner.

    The folder stands in for the SMTP server and keeps what it was given,
    so erasure removes a person's files from it (:meth:`forget`).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, envelope_from: str, recipient: str, data: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = _file_name(data)
            tmp = self.directory / f".{name}.tmp"
            # 0600 whatever the umask: the file holds a person's address and data.
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                handle.write(data)
            tmp.replace(self.directory / name)
        except OSError as exc:
            raise SendUnavailable(f"cannot write to outbox directory ({exc.strerror})") from exc

    def close(self) -> None:
        return None

    def forget(self, message_ids: Sequence[str]) -> None:
        for message_id in message_ids:
            try:
                (self.directory / file_name_of(message_id)).unlink(missing_ok=True)
            except OSError as exc:  # one file that cannot go must not keep the others
                log.warning("outbox file of an erased person could not be removed (%s)", exc.strerror)


def file_name_of(message_id: str) -> str:
    """The file a message with this Message-ID is written to: the ID without its brackets, made a safe name."""
    return "".join(c if c.isalnum() or c in ".-_@" else "_" for c in message_id.strip().strip("<>")) + ".eml"


def _file_name(data: bytes) -> str:
    for line in data.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return file_name_of(line.split(b":", 1)[1].decode("ascii", "replace"))
        if not line:
            break
    return f"{utcnow().strftime('%Y%m%dT%H%M%S%f')}.eml"
