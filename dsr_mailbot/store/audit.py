"""The audit trail's edge: events are appended with the transaction that does what they record, and read in pages.

An event holds no personal data: references, kinds, reasons, figures.  Each
is chained to the one before it (store/chain.py).  Appends are serialised by
the chain head's row lock (``SELECT … FOR UPDATE`` on PostgreSQL and MariaDB;
SQLite's write lock, taken by every transaction, already does it), taken at
commit time, after the transaction's work, so it is held only for the INSERT
and the commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring  # the string escaping of json.dumps(…, ensure_ascii=False)
from typing import Any

from sqlalchemy import String, cast, event, func, insert, update
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from dsr_mailbot.store.chain import GENESIS, ChainedEvent, canonical, link
from dsr_mailbot.store.models import AuditChain, AuditEvent, Request, utcnow


@dataclass(frozen=True, slots=True)
class AuditRow:
    """An audit event as it is read for export: its columns, not an ORM object (an export reads millions), its
    detail as the JSON text the database returns (read when asked for)."""

    id: int
    at: datetime
    request_id: int | None
    subject_ref: str | None
    event: str
    actor: str
    detail_json: str
    chain_hash: str | None

    @property
    def detail(self) -> dict[str, Any]:
        return dict(json.loads(self.detail_json))


def audit_events_page(session: Session, after_id: int, since: datetime | None = None,
                      limit: int = 1000) -> list[tuple[AuditRow, str | None]]:
    """Up to ``limit`` audit events after event ``after_id`` (and at or after ``since``), oldest first.

    Each comes with the keyed hash of its request's person, for the events
    written without one (a reply sent, a bounce).  An export reads page by
    page, one short transaction each: on SQLite every transaction holds the
    write lock, and a long export must not stop the bot.  Read as plain rows
    by keyset (``id > after_id``): each page costs the same however far the
    export has gone.
    """
    event = AuditEvent
    query = (
        select_columns(col(event.id), col(event.at), col(event.request_id), col(event.subject_ref),
                       col(event.event), col(event.actor), cast(col(event.detail), String), col(event.chain_hash),
                       col(Request.subject_ref))
        .join(Request, col(Request.id) == col(event.request_id), isouter=True)
        .where(col(event.id) > after_id)
    )
    if since is not None:
        query = query.where(col(event.at) >= since)
    rows = session.connection().execute(query.order_by(col(event.id)).limit(limit))  # Core: no ORM loading
    return [(AuditRow(int(row[0] or 0), *row[1:8]), row[8]) for row in rows]


# The encoder json.dumps(…, ensure_ascii=False, sort_keys=True) makes: the export has always been written by it.
# The encoder json.dumps(…, ensure_ascii=False, sort_keys=True) makes: the export has always been written by it.
_EXPORT = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def export_line(row: AuditRow, request_subject_ref: str | None) -> str:
    """The event as one line of ``audit export`` (the fields are in the README), without its newline.

    Byte for byte ``json.dumps`` of the event's object with ``ensure_ascii=False, sort_keys=True``, written
    field by field in that order, each value as that encoder writes it (its own string escaping, ``repr`` of
    an integer, ``null``): the detail, most of an event's cost, is decoded and written once for all the
    events that carry the same text (a reply sent, a request received), not once per event.
    """
    return (f'{{"actor": {_text(row.actor)}, "at": {_text(row.at.isoformat())}, '
            f'"chain_hash": {_text(row.chain_hash)}, "detail": {_detail(row.detail_json)}, '
            f'"event": {_text(row.event)}, "id": {_number(row.id)}, "request_id": {_number(row.request_id)}, '
            f'"subject_ref": {_text(row.subject_ref or request_subject_ref)}}}')


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def _number(value: int | None) -> str:
    return "null" if value is None else int.__repr__(value)


@lru_cache(maxsize=4096)
def _detail(text: str) -> str:
    return _EXPORT.encode(json.loads(text))


def first_event_since(session: Session, since: datetime) -> int | None:
    """The id just before the first event at or after ``since`` (None: there is none), through the index on
    ``at``, so that an export from a date does not page through the years before it.  Every event from
    ``since`` on comes after it, though ids follow commits and ``at`` need not grow strictly with them."""
    # With a count beside it, min(id) is read from the index on ``at`` over the events exported anyway; alone,
    # PostgreSQL walks the primary key through every event before ``since`` (years of them) to find it.
    count, first = session.execute(select(func.count(), func.min(AuditEvent.id))
                                   .where(col(AuditEvent.at) >= since)).one()
    return int(first) - 1 if count else None


def record_event(
    session: Session,
    event_name: str,
    *,
    request_id: int | None = None,
    subject_ref: str | None = None,
    actor: str = "bot",
    at: datetime | None = None,
    **detail: Any,
) -> None:
    """Append an audit event.  ``detail`` must hold no personal data: names of fields, kinds, reasons.

    The transaction's events are written together, in one INSERT, just
    before it commits (:func:`_write_pending_events`), in the order they were
    recorded: nothing reads an event in the transaction that records it.
    """
    session.info.setdefault(_PENDING_EVENTS, []).append(
        {"at": at or utcnow(), "request_id": request_id, "subject_ref": subject_ref, "event": event_name,
         "actor": actor, "detail": detail}
    )


_PENDING_EVENTS = "dsr_mailbot.pending_audit_events"  # the session.info key of events not written yet


@event.listens_for(Session, "before_commit")
def _write_pending_events(session: Session) -> None:
    pending = session.info.pop(_PENDING_EVENTS, None)
    if not pending:
        return
    previous = _lock_head(session)
    for row in pending:
        row["detail"] = json.loads(json.dumps(row["detail"]))  # as it reads back: tuples are lists, keys text
        row["chain_hash"] = previous = link(previous, canonical(row["at"], row["request_id"], row["subject_ref"],
                                                                row["event"], row["actor"], row["detail"]))
    # Core, not the ORM: the ORM's bulk machinery costs more than the INSERT itself.
    session.execute(insert(SQLModel.metadata.tables["audit_events"]), pending)
    last_id = session.execute(select(func.max(AuditEvent.id))).scalar_one()  # ours: the head's lock is held
    session.execute(update(SQLModel.metadata.tables["audit_chain"]).values(last_event_id=last_id,
                                                                             last_hash=previous))


def _lock_head(session: Session) -> str:
    """The last event's hash, the head's row locked until the commit (a store made before 0008 gets its head)."""
    head = session.execute(select(AuditChain.last_hash).where(AuditChain.id == 1).with_for_update()).scalar()
    if head is None:
        session.execute(insert(SQLModel.metadata.tables["audit_chain"]).values(id=1, last_event_id=0,
                                                                               last_hash=GENESIS))
        return GENESIS
    return str(head)


def chain_head(session: Session) -> tuple[int, str]:
    """The last chained event's id and hash (0 and the genesis hash for an empty trail)."""
    head = session.get(AuditChain, 1)
    return (head.last_event_id, head.last_hash) if head is not None else (0, GENESIS)


def chained_events(session: Session, after_id: int, up_to_id: int, limit: int = 1000) -> Iterator[ChainedEvent]:
    """Events after ``after_id`` up to ``up_to_id``, oldest first, as the chain's verifier reads them."""
    rows = session.exec(select(AuditEvent).where(col(AuditEvent.id) > after_id, col(AuditEvent.id) <= up_to_id)
                        .order_by(col(AuditEvent.id)).limit(limit)).all()
    for e in rows:
        assert e.id is not None
        yield ChainedEvent(e.id, canonical(e.at, e.request_id, e.subject_ref, e.event, e.actor, e.detail),
                           e.chain_hash)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_events(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING_EVENTS, None)
