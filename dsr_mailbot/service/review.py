"""Operator decisions on one request: the one code path of the CLI and the console.

An operator approves, rejects, answers or extends (:data:`ReviewAction`).
:func:`decide_request` runs the matching :mod:`~dsr_mailbot.lifecycle`
function in one transaction, with the operator as the actor, and then sends
what it queued.  ``requests approve|reject|answer|extend`` and the console's
``POST /requests/{id}/…`` both call it, so a decision sends the same reply
and leaves the same audit event whoever makes it.

:func:`reveal_field` is the console's other write: showing a masked field
leaves an audit event naming who, when, which request and which field
(never the value).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import assert_never

from sqlmodel import Session

from dsr_mailbot.lifecycle import DecisionError, answer, approve, dismiss, extend, reject
from dsr_mailbot.pipeline import Services
from dsr_mailbot.reading.extract import FIELDS
from dsr_mailbot.replies.send import drain_outbox
from dsr_mailbot.service.locks import run_lock_for
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.models import FINAL_STATES, Request, User


@dataclass(frozen=True)
class Approve:
    """Apply the request as the automatic path would (review, or waiting for a confirmation)."""


@dataclass(frozen=True)
class Reject:
    reason: str  # told to the person, in the reply


@dataclass(frozen=True)
class Answer:
    text: str  # the answer to a question; sent, never audited


@dataclass(frozen=True)
class Extend:
    reason: str  # told to the person in the notice; the audit keeps the dates only


@dataclass(frozen=True)
class Dismiss:
    """Not a data-subject request: closed without a reply."""


ReviewAction = Approve | Reject | Answer | Extend | Dismiss


class UnknownRequest(LookupError):
    """No request has this id."""


@dataclass(frozen=True)
class ReviewResult:
    request_id: int
    state: str
    outcome: str | None
    due_at: datetime | None  # while the request stays open
    sent: int  # replies sent right after the decision
    # Why the reply is still queued, if it is: the SMTP server was unreachable, or (SQLite) the running
    # daemon holds the store and sends it on its next outbox run.
    queued_because: str | None = None
    smtp_unavailable: bool = False


def _apply(services: Services, session: Session, request: Request, action: ReviewAction, actor: str) -> None:
    ctx = services.context()
    match action:
        case Approve():
            approve(ctx, session, request, actor)
        case Reject(reason):
            if not reason.strip():
                raise DecisionError("a rejection needs a reason (it is told to the person)")
            reject(ctx, session, request, reason.strip(), actor)
        case Answer(text):
            if not text.strip():
                raise DecisionError("the answer is empty")
            answer(ctx, session, request, text, actor)
        case Extend(reason):
            if not reason.strip():
                raise DecisionError("an extension needs a reason (it is told to the person)")
            extend(ctx, session, request, reason.strip(), actor)
        case Dismiss():
            dismiss(ctx, session, request, actor)
        case _:
            assert_never(action)


def decide_request(services: Services, request_id: int, action: ReviewAction, actor: str) -> ReviewResult:
    """Carry out an operator's decision, then send its reply.

    Raises :class:`UnknownRequest`, or :class:`~dsr_mailbot.lifecycle.DecisionError`
    when the request's state does not allow the decision (nothing is changed then).
    """
    with services.store.transaction() as session:
        request = session.get(Request, request_id)
        if request is None:
            raise UnknownRequest(f"no request {request_id}")
        _apply(services, session, request, action, actor)
        state, outcome = request.state, request.outcome
        due = request.due_at if request.state not in FINAL_STATES else None
    # SQLite serves one sending process: while a daemon holds the store, it sends the reply itself.
    lock = run_lock_for(services.store, services.config.source_name) if not services.store.serves_many_workers else None
    if lock is not None and not lock.try_acquire():
        return ReviewResult(request_id, state, outcome, due, 0,
                            queued_because="the running daemon sends it on its next outbox run")
    try:
        drained = drain_outbox(services.store, services.transport, services.config.reply_from,
                               notices_per_minute=services.config.notices_per_minute,
                               notice_check=services.notice_check)
    finally:
        if lock is not None:
            lock.release()
    return ReviewResult(request_id, state, outcome, due, drained.sent, queued_because=drained.unavailable,
                        smtp_unavailable=drained.unavailable is not None)


# Revealing a masked field


def _user_field(name: str) -> Callable[[Request, User | None], str | None]:
    def value(request: Request, user: User | None) -> str | None:
        return getattr(user, name) if user is not None else None

    return value


def _asked(name: str) -> Callable[[Request, User | None], str | None]:
    def value(request: Request, user: User | None) -> str | None:
        changes = (request.intent or {}).get("changes", {})
        found = changes.get(name)
        return str(found) if found is not None else None

    return value


# Every field the console masks, by the name the audit event records.  Read in this order on the page.
REVEALABLE: Mapping[str, Callable[[Request, User | None], str | None]] = {
    "sender": lambda request, user: request.reply_address,
    # People put their name, phone and new address in the subject: masked like every other personal field.
    "subject": lambda request, user: request.letter_subject,
    "letter": lambda request, user: request.letter_text,
    "owner_reply": lambda request, user: request.owner_reply,
    **{f"user.{name}": _user_field(name) for name in FIELDS},
    **{f"asked.{name}": _asked(name) for name in FIELDS},
}


def reveal_field(services: Services, request_id: int, field: str, actor: str) -> str | None:
    """The value of one masked field of a request, and an audit event saying who looked at it.

    Raises :class:`UnknownRequest`, or :class:`KeyError` for a field the console does not mask.
    Nothing is recorded when there is nothing to show (the request closed, the user was erased).
    """
    read = REVEALABLE[field]
    with services.store.transaction() as session:
        request = session.get(Request, request_id)
        if request is None:
            raise UnknownRequest(f"no request {request_id}")
        user = session.get(User, request.user_id) if request.user_id is not None else None
        value = read(request, user)
        if value is not None:
            record_event(session, "field_revealed", request_id=request.id, subject_ref=request.subject_ref,
                         actor=actor, at=services.clock(), field=field)
    return value
