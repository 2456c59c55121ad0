"""Destroying the data of people who withdrew their consent, once their erasure date has come.

This first version deletes the user's row and scrubs what else names them in
the store: the address and text of replies addressed to them, and any open
request's address, subject and fields.  The audit trail keeps a
``user_erased`` event under the person's pseudonymous reference, with the
categories of data destroyed and the reason, but not the data.  (Leaving no
trace in database files, backups or the mailbox is a later issue; SQLite
already runs with ``secure_delete``.)
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from dsr_mailbot.keys import Keyring
from dsr_mailbot.models import OutboxMessage, OutboxState, Request, User
from dsr_mailbot.store import record_event

ERASED_FIELDS = ("email", "phone", "surname", "first_name", "patronymic")


def erase_due_users(session: Session, keyring: Keyring, now: datetime) -> int:
    due = session.exec(
        select(User)
        .where(User.erasure_due_at <= now)  # type: ignore[operator]
        .with_for_update(skip_locked=True)  # on PostgreSQL, two workers never erase the same person twice
    ).all()
    for user in due:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.recipient == user.email)).all():
            if row.state == OutboxState.QUEUED:
                row.state = OutboxState.FAILED
                row.last_error = "recipient erased before sending"
            row.recipient, row.data = "erased", b""
        for request in session.exec(select(Request).where(Request.user_id == user.id)).all():
            request.user_id = None
            request.reply_address, request.subject, request.intent = None, None, {}
        record_event(session, "user_erased", subject_ref=keyring.subject_ref(user.email),
                     fields=list(ERASED_FIELDS), reason="consent_withdrawn")
        session.delete(user)
    return len(due)
