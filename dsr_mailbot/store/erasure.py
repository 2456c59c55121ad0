"""Destroying the data of people who withdrew their consent, once their erasure date has come.

Everything that names the person in the store goes, found **by user and by
request**, never by recipient address (an e-mail change leaves replies to
the old address behind, and those name the person too):

- the user row;
- every request linked to the user, and every confirmation of those: the
  address to answer, the thread, the fields asked, and the inbound
  Message-ID (it often holds the address).  The Message-ID's keyed hash,
  the dedup key, stays, so a redelivered copy is still recognised;
- every outbox row of those requests, and any other reply addressed to the
  person's current address: recipient and bytes.

The audit trail keeps a ``user_erased`` event under the person's
pseudonymous reference, with the categories of data destroyed and the
reason, but not the data.  (Leaving no trace in database files, backups or
the mailbox is a later issue; SQLite already runs with ``secure_delete``.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from dsr_mailbot.store.database import record_event
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import OutboxMessage, OutboxState, Request, User

ERASED_FIELDS = ("email", "phone", "surname", "first_name", "patronymic")


def erase_due_users(session: Session, keyring: Keyring, now: datetime) -> int:
    due = session.exec(
        select(User)
        .where(User.erasure_due_at <= now)  # type: ignore[operator]
        .with_for_update(skip_locked=True)  # on PostgreSQL, two workers never erase the same person twice
    ).all()
    for user in due:
        erase_user(session, keyring, user)
    return len(due)


def erase_user(session: Session, keyring: Keyring, user: User) -> None:
    subject_ref = keyring.subject_ref(user.email)
    requests = list(session.exec(
        select(Request).where(or_(col(Request.user_id) == user.id, col(Request.subject_ref) == subject_ref))
    ).all())
    request_ids = [r.id for r in requests if r.id is not None]
    if request_ids:
        requests += session.exec(
            select(Request).where(col(Request.related_request_id).in_(request_ids), col(Request.id).not_in(request_ids))
        ).all()
    for request in requests:
        request.user_id = None
        request.message_id = None
        request.reply_address, request.thread, request.intent = None, None, {}
    replies = session.exec(
        select(OutboxMessage).where(
            or_(col(OutboxMessage.request_id).in_([r.id for r in requests]), col(OutboxMessage.recipient) == user.email)
        )
    ).all()
    for row in replies:
        if row.state == OutboxState.QUEUED:
            row.state = OutboxState.FAILED
            row.last_error = "recipient erased before sending"
        row.recipient, row.data = "erased", b""
    record_event(session, "user_erased", subject_ref=subject_ref, fields=list(ERASED_FIELDS),
                 reason="consent_withdrawn", requests=len(requests), replies=len(replies))
    session.delete(user)
