"""Stage 6b: sending the outbox — over SMTP, or into a folder of .eml files (the transports: ``transports``).

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
import time
from dataclasses import dataclass, field
from datetime import timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr
from threading import Event
from typing import Any

from sqlalchemy import update as sa_update
from sqlmodel import Session, SQLModel

from dsr_mailbot.errors import DsrMailbotError, RecipientDeferred, SendError
from dsr_mailbot.faults import crash_point
from dsr_mailbot.reading.parse import header_block
from dsr_mailbot.replies.notices import NoticeCheck, notice_refusal, write_notices
from dsr_mailbot.replies.transports import Transport
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


def envelope_sender(data: bytes, default: str) -> str:
    """The envelope sender of one of our messages: its own From address (with several mailboxes, the one the
    request came to, so that a bounce returns there and SPF and DMARC align), else ``default``."""
    parsed = BytesHeaderParser(policy=compat32).parsebytes(header_block(data))
    address = parseaddr(str(parsed.get("From", "")))[1]
    return address if "@" in address else default


def _try_send(transport: Transport, envelope_from: str, row: OutboxMessage) -> SendError | None:
    try:
        transport.send(envelope_sender(row.data, envelope_from), row.recipient, row.data)
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
