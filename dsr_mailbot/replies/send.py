"""Stage 6b: sending the outbox — over SMTP, or into a folder of .eml files.

Replies are never sent straight from the pipeline: they are written to the
``outbox`` table in the transaction that applies the change, and this
module sends what is queued.  A reply is marked sent only after the server
accepted it, in its own transaction.  A crash between the two re-sends the
same bytes — the same Message-ID — on the next run: the one at-least-once
window, which receiving systems can deduplicate (see the README).

An SMTP 4xx answer or an unreachable server leaves the reply queued
(:class:`~dsr_mailbot.errors.SendUnavailable`); a 5xx refusal of the
recipient marks it ``failed`` with the SMTP code and stops retrying.

A recipient with a non-ASCII local part (``иван@xn--e1afmkfd.xn--p1ai``;
domains are stored in IDNA A-labels already) is sent with SMTPUTF8
(RFC 6531) when the server offers it, and is marked ``failed`` with a clear
reason when it does not.  Whatever else goes wrong with one row is recorded
on that row (``failed``, with the exception's class), and the drain goes on
with the next: one reply never blocks the queue.
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from threading import Event
from typing import Any, Protocol

from sqlalchemy import update as sa_update
from sqlmodel import Session, SQLModel

from dsr_mailbot.config import SmtpConfig
from dsr_mailbot.errors import ConfigError, DsrMailbotError, RecipientDeferred, SendError, SendUnavailable
from dsr_mailbot.faults import crash_point
from dsr_mailbot.reading.parse import header_block
from dsr_mailbot.replies.notices import NoticeCheck, notice_refusal, write_notices
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import (
    Store,
    is_notice,
    notices_sent_since,
    queued_outbox,
    sendable_outbox,
)
from dsr_mailbot.store.models import OutboxMessage, OutboxState, utcnow

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

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            conn: smtplib.SMTP
            if cfg.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout_seconds,
                    context=ssl.create_default_context(),
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
                if cfg.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
            if cfg.username and cfg.password:
                conn.login(cfg.username, cfg.password)
        except smtplib.SMTPAuthenticationError as exc:
            # Not the message's fault: every reply would fail the same way until the config is fixed.
            raise ConfigError(f"[smtp] username/password: login refused ({exc.smtp_code})") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise SendUnavailable(f"SMTP connect: {type(exc).__name__}") from exc
        return conn

    def send(self, envelope_from: str, recipient: str, data: bytes) -> None:
        if self.conn is None:
            self.conn = self._connect()
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


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    notices_sent: int = 0  # of ``sent``: a campaign's notices
    unavailable: str | None = None  # why sending stopped early, if it did
    # Rows whose recipient the server deferred: left queued, and not tried again in this drain.
    deferred: set[int] = field(default_factory=set)


# How long a reply whose recipient's server keeps deferring it is tried (Postfix's maximal_queue_lifetime).
DEFERRED_GIVE_UP = timedelta(days=5)


def drain_outbox(store: Store, transport: Transport, envelope_from: str, stop: Event | None = None,
                 notices_per_minute: int | None = None, notice_check: NoticeCheck | None = None) -> DrainResult:
    """Send queued replies until none is left, the server stops taking them, or ``stop`` is set.

    ``notices_per_minute`` (``[smtp] max_per_minute``): a campaign's notices
    (policy 7.2) are sent at most this many in any minute; once the minute's
    are used up the drain sends only replies, and the notices wait for a
    later drain.  Replies to requests are never held back.

    Several workers may drain one outbox.  On PostgreSQL and MariaDB each reply is claimed
    with ``SELECT … FOR UPDATE SKIP LOCKED`` and its row stays locked while it is
    sent, so two workers never send the same row, and a worker that dies mid-send
    releases it with its connection.  SQLite allows one process (the run lock,
    :mod:`locks`).  Within one process, threads take turns through
    ``store.send_lock`` on both: they share one SMTP connection, which two
    threads must never talk on at once (the watcher sends after a pass while
    the scheduler's outbox job may be sending too).
    """
    result = DrainResult()
    budget = _NoticeBudget(notices_per_minute, notice_check)
    send_some = _send_claimed if store.serves_many_workers else _send_page
    with store.send_lock:
        try:
            while not (stop and stop.is_set()):
                if send_some(store, transport, envelope_from, result, budget, stop):
                    continue
                # Nothing more may go now: write the next page of queued notices, unless the server stopped taking.
                if result.unavailable is not None or not _write_queued_notices(store, budget):
                    break
        finally:
            transport.close()
    return result


def _write_queued_notices(store: Store, budget: _NoticeBudget) -> bool:
    """The outbox is empty of what may go now: write the next page of a campaign's queued notices into it.

    No more than this minute's allowance is written, so the outbox never
    holds more of a campaign than it may send soon.  False when none was taken.
    """
    writer = budget.check.writer if budget.check is not None else None
    if writer is None or not budget.left():
        return False
    limit = SEND_PAGE if budget.per_minute is None else min(SEND_PAGE, budget.per_minute - budget.sent)
    try:
        with store.transaction() as session:
            if not budget.allows_notices(session):
                return False
            written = write_notices(session, writer, limit, lock=store.serves_many_workers)
    except Exception as exc:  # the campaign waits; the drain, the replies and the rest of the pass go on
        if isinstance(exc, DsrMailbotError) and exc.temporary:
            raise
        log.error("a page of campaign notices could not be written: %s", type(exc).__name__)
        return False
    if written.consumed:
        crash_point("after_notices_written")
    return written.consumed > 0


SEND_PAGE = 100  # SQLite: queued rows read in one transaction, then sent and marked one at a time


class _NoticeBudget:
    """How many campaign notices may go now (``[smtp] max_per_minute``).

    The database counts the notices of the last minute at most once a
    second; in between, each notice sent is counted here.  Replies to
    requests never use it.
    """

    def __init__(self, per_minute: int | None, check: NoticeCheck | None = None) -> None:
        self.per_minute = per_minute
        self.check = check  # and who may still get a notice (notices.notice_refusal)
        self.sent = 0
        self.counted_at: float | None = None

    def allows_notices(self, session: Session) -> bool:
        if self.per_minute is None:
            return True
        if self.counted_at is None or time.monotonic() - self.counted_at >= 1.0:
            self.sent = notices_sent_since(session, utcnow() - timedelta(minutes=1))
            self.counted_at = time.monotonic()
        return self.sent < self.per_minute

    def left(self) -> bool:
        return self.per_minute is None or self.sent < self.per_minute

    def spend(self, row: OutboxMessage) -> None:
        if is_notice(row.purpose):
            self.sent += 1


def _send_claimed(store: Store, transport: Transport, envelope_from: str, result: DrainResult,
                  budget: _NoticeBudget, stop: Event | None) -> bool:
    """PostgreSQL, MySQL/MariaDB: claim one row, send it while its row lock keeps every other worker off it, mark it."""
    with store.transaction() as session:
        row = session.exec(
            sendable_outbox(budget.allows_notices(session), result.deferred).limit(1).with_for_update(skip_locked=True)
        ).first()
        if row is None:
            return False
        error = _refusal(session, row, budget.check) or _try_send(transport, envelope_from, row)
        go_on = _record(session, row, error, result)
    if error is None:
        budget.spend(row)
    crash_point("after_send_commit", row.message_id)
    return go_on


def _send_page(store: Store, transport: Transport, envelope_from: str, result: DrainResult,
               budget: _NoticeBudget, stop: Event | None) -> bool:
    """SQLite (one process sends): read a page of queued rows, then send and mark each in a transaction of its own."""
    with store.transaction() as session:
        rows = list(queued_outbox(session, limit=SEND_PAGE, notices_allowed=budget.allows_notices(session),
                                  skip=result.deferred))
    sent_any = False
    for row in rows:
        if stop is not None and stop.is_set():
            return False
        if is_notice(row.purpose) and not budget.left():
            continue  # this minute's notices are used up: it waits for a later drain
        if is_notice(row.purpose):
            with store.transaction() as session:
                refused = _refusal(session, row, budget.check)
        else:
            refused = None
        error = refused or _try_send(transport, envelope_from, row)
        with store.transaction() as session:
            go_on = _record(session, row, error, result)
        if error is None:
            budget.spend(row)
        crash_point("after_send_commit", row.message_id)
        if not go_on:
            return False
        sent_any = True
    return sent_any


def _refusal(session: Session, row: OutboxMessage, check: NoticeCheck | None) -> SendError | None:
    """A campaign's notice whose user withdrew consent (or is gone) since it was queued: failed, never sent."""
    reason = notice_refusal(session, row.recipient, check) if is_notice(row.purpose) else None
    return SendError(reason) if reason else None


def _try_send(transport: Transport, envelope_from: str, row: OutboxMessage) -> SendError | None:
    try:
        transport.send(envelope_from, row.recipient, row.data)
    except SendError as exc:
        return exc
    except DsrMailbotError:
        raise  # not this row's fault (a refused login): every row would fail the same way
    except Exception as exc:  # a bug or a library surprise with this one row: it fails, the queue goes on
        transport.close()  # the connection may be in any state now
        return SendError(f"unexpected {type(exc).__name__} while sending")
    crash_point("after_smtp_accept", row.message_id)
    return None


def _record(session: Session, row: OutboxMessage, error: SendError | None, result: DrainResult) -> bool:
    """Write down what happened to one reply, in one UPDATE by its id; False when sending should stop for now.

    A row gone meanwhile (purged by erasure) is left gone, and nothing is recorded for it.
    """
    outbox = SQLModel.metadata.tables["outbox"]
    values: dict[str, Any] = {"attempts": outbox.c.attempts + 1}
    if isinstance(error, RecipientDeferred) and row.created_at > utcnow() - DEFERRED_GIVE_UP:
        values["last_error"] = str(error)[:500]
        session.execute(sa_update(outbox).where(outbox.c.id == row.id).values(values))
        assert row.id is not None
        result.deferred.add(row.id)
        return True
    if isinstance(error, RecipientDeferred):
        error = SendError(f"{error}, for {DEFERRED_GIVE_UP.days} days: given up")
    if error is None:
        values.update(state=OutboxState.SENT, sent_at=utcnow(), last_error=None)
    else:
        values["last_error"] = str(error)[:500]
        if not error.temporary:
            values["state"] = OutboxState.FAILED
    updated = session.execute(sa_update(outbox).where(outbox.c.id == row.id).values(values))
    if error is not None and error.temporary:
        result.unavailable = str(error)
        return False
    if not updated.rowcount:  # type: ignore[attr-defined]
        return True
    if error is None:
        record_event(session, "reply_sent", request_id=row.request_id, purpose=row.purpose)
        result.sent += 1
        result.notices_sent += is_notice(row.purpose)
    else:
        record_event(session, "reply_failed", request_id=row.request_id, purpose=row.purpose, error=str(error)[:200])
        result.failed += 1
    return True
