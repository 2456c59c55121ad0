"""What the monthly report reads from the store, streamed: a month's requests with their closing replies.

A month can hold 100,000 requests and the store millions: they are read as
plain rows of the columns the report counts (references, kinds, states and
times; no personal data), a page at a time from a server-side cursor on
PostgreSQL and MariaDB (SQLite's cursor steps through its rows anyway), and
folded one by one (replies/report.py), never held together as ORM objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlmodel import Session, col

from dsr_mailbot.store.models import OutboxMessage, Request

CLOSING_PURPOSES = ("reply", "answer")  # the outbox purposes of a request's answer (not challenges, not notices)
PAGE = 2_000  # rows per fetch from the server-side cursor


@dataclass(frozen=True, slots=True)
class Closing:
    """The reply that closes a request (its answer): whether one was written, and when it was sent."""

    written: bool
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReportedRequest:
    """A request as the report counts it: its reference, what was asked, its state and times, its closing reply."""

    id: int | None
    kind: str  # the primary intent
    intents: Sequence[str]
    state: str
    received_at: datetime
    due_at: datetime
    completed_at: datetime | None
    closing: Closing | None = None  # None: no reply or answer was written for it

    @classmethod
    def of(cls, request: Request, closing: Closing | None = None) -> ReportedRequest:
        return cls(request.id, request.kind, request.intents, request.state, request.received_at, request.due_at,
                   request.completed_at, closing)


def month_requests(session: Session, start: datetime, end: datetime) -> Iterator[ReportedRequest]:
    """The requests received in ``[start, end)``, by id, each with its closing reply: its last reply or answer in
    the outbox (a question's acknowledgement comes before its answer), and when the SMTP server accepted it.

    One query: the requests joined to their closing replies, ordered so that a request's replies follow it; a
    request's last row carries its closing reply.
    """
    reply = OutboxMessage
    query = (
        select(col(Request.id), col(Request.kind), col(Request.intents), col(Request.state),
               col(Request.received_at), col(Request.due_at), col(Request.completed_at), col(reply.id),
               col(reply.sent_at))
        .outerjoin(reply, and_(col(reply.request_id) == col(Request.id), col(reply.purpose).in_(CLOSING_PURPOSES)))
        .where(col(Request.received_at) >= start, col(Request.received_at) < end)
        .order_by(col(Request.id), col(reply.id))
        .execution_options(yield_per=PAGE)
    )
    held: ReportedRequest | None = None
    for request_id, kind, intents, state, received_at, due_at, completed_at, reply_id, sent_at in \
            session.execute(query):
        if held is not None and held.id != request_id:
            yield held
        held = ReportedRequest(request_id, kind, intents or [], state, received_at, due_at, completed_at,
                               Closing(True, sent_at) if reply_id is not None else None)
    if held is not None:
        yield held
