"""Keeping closed requests no longer than needed (``[policy] closed_request_retention_days``).

Once a request has been closed that many days:

- its messages in ``processed_folder`` (the letter and any confirmation)
  are expunged, found by their recorded Message-IDs as the erasure finds
  them, and the Message-ID is forgotten (its keyed hash stays, so the same
  letter delivered again is still known);
- a request of an unknown sender (no user on file) also loses the replies
  it was sent: the address and the bytes of each, as an erasure scrubs them.

What stays is what proves the duty was met: the request's number, intents,
state, dates and the keyed hash of the address.  The mailbox goes first and
the store after: a crash between the two leaves the rows to do again, and
expunging again finds nothing.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import col, select

from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.pipeline.services import Services
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.erasure import purge_outbox_row
from dsr_mailbot.store.holds import forget_ended_holds
from dsr_mailbot.store.models import FINAL_STATES, OutboxMessage, OutboxState, Request

log = logging.getLogger("dsr_mailbot")

BATCH = 500  # requests per pass: a backlog of years is worked off over a few passes, none of them long


def expire_closed_requests(services: Services) -> int:
    """Expunge and forget what closed requests older than the retention kept; how many requests were done."""
    now = services.clock()
    cutoff = now - timedelta(days=services.config.policy.closed_request_retention_days)
    with services.store.transaction() as session:
        forget_ended_holds(session, now)
        due = session.exec(select(Request.id, Request.message_id).where(
            col(Request.state).in_(list(FINAL_STATES)), col(Request.completed_at) < cutoff,
            col(Request.message_id).is_not(None)).order_by(col(Request.id)).limit(BATCH)).all()
    if not due:
        return 0
    expunged = 0
    if services.mailbox is not None:
        mailbox = services.mailbox()
        try:
            mailbox.open()
            expunged = mailbox.expunge_processed([m for _, m in due if m])
        except DsrMailbotError as exc:
            log.info("retention waits for the mailbox: %s", exc)
            return 0  # the copies stay until the mailbox answers; the store keeps what finds them
        finally:
            mailbox.close()
    ids = [request_id for request_id, _ in due if request_id is not None]
    forgotten: list[str] = []
    with services.store.transaction() as session:
        for request in session.exec(select(Request).where(col(Request.id).in_(ids))).all():
            request.message_id = None
            if request.user_id is None:  # an unknown sender: what we sent them goes too
                for row in session.exec(select(OutboxMessage).where(
                        OutboxMessage.request_id == request.id, OutboxMessage.recipient != "erased")).all():
                    if row.state != OutboxState.QUEUED:
                        forgotten.append(row.message_id)
                        purge_outbox_row(row, OutboxState(row.state))
            session.add(request)
        record_event(session, "retention_applied", at=now, requests=len(ids), messages_expunged=expunged,
                     replies_scrubbed=len(forgotten), days=services.config.policy.closed_request_retention_days)
    services.transport.forget(forgotten)  # with file delivery, the files were the delivery: they go with the rows
    return len(ids)
