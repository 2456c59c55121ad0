"""The audit trail's edge: events are appended with the transaction that does what they record, and read in pages.

An event holds no personal data: references, kinds, reasons, figures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import event, insert
from sqlmodel import Session, SQLModel, col, select

from dsr_mailbot.store.models import AuditEvent, Request, utcnow


def audit_events_page(session: Session, after_id: int, since: datetime | None = None,
                      limit: int = 1000) -> list[tuple[AuditEvent, str | None]]:
    """Up to ``limit`` audit events after event ``after_id`` (and at or after ``since``), oldest first.

    Each comes with the keyed hash of its request's person, for the events
    written without one (a reply sent, a bounce).  An export reads page by
    page, one short transaction each: on SQLite every transaction holds the
    write lock, and a long export must not stop the bot.
    """
    query = (
        select(AuditEvent, Request.subject_ref)
        .join(Request, col(Request.id) == col(AuditEvent.request_id), isouter=True)
        .where(col(AuditEvent.id) > after_id)
    )
    if since is not None:
        query = query.where(col(AuditEvent.at) >= since)
    return [(event, ref) for event, ref in session.exec(query.order_by(col(AuditEvent.id)).limit(limit)).all()]


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
    if pending:
        # Core, not the ORM: the ORM's bulk machinery costs more than the INSERT itself.
        session.execute(insert(SQLModel.metadata.tables["audit_events"]), pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending_events(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING_EVENTS, None)
