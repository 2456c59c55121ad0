"""Destroying the data of people who withdrew their consent, once their erasure date has come.

Everything that names the person in the store goes, found **by user and by
request**, never by recipient address (an e-mail change leaves replies to
the old address behind, and those name the person too):

- the user row;
- every request linked to the user, and every confirmation of those,
  whatever its state: every text it holds of them (the address to answer,
  the thread, the fields asked, the letter's subject and words, a reply to a
  challenge: :data:`~dsr_mailbot.store.models.PERSONAL_REQUEST_TEXT`) and
  the inbound Message-ID (it often holds the address).  The Message-ID's
  keyed hash, the dedup key, stays, so a redelivered copy is still
  recognised.  A request still open (a question awaiting its answer, a
  letter in review) is closed as ``rejected`` with the reason ``erased``:
  there is nobody left to answer;
- every outbox row of those requests, and any other reply addressed to the
  person's current address: recipient and bytes.  The caller also has the
  transport forget its copies (the ``.eml`` files of file delivery).

The audit trail keeps a ``user_erased`` event under the person's
pseudonymous reference, with the categories of data destroyed and the
reason, but not the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.holds import forget_hold
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import (
    FINAL_STATES,
    ActionState,
    OutboxMessage,
    OutboxState,
    Request,
    RequestKind,
    RequestState,
    SystemAction,
    User,
    close_request,
    forget_personal_text,
)
from dsr_mailbot.store.notices import OWN_USER, forget_queued_notices, system_recipient_key

ERASED_FIELDS = ("email", "phone", "surname", "first_name", "patronymic")


@dataclass(frozen=True)
class ErasurePlan:
    """What erasing one person needs to know, read before anything is destroyed."""

    user_id: int
    email: str
    subject_ref: str
    full_name: str
    categories: tuple[str, ...]  # the fields that held a value
    message_ids: tuple[str, ...]  # their request and confirmation messages, to expunge from the mailbox
    reply_ids: tuple[str, ...]  # the Message-IDs of every reply to them: the transport forgets its copies
    withdrawal: Request | None  # the request whose withdrawal is the reason
    language: str | None  # of their last request
    # A request of theirs still waits for the data map's systems (its answer not yet queued): the erasure waits.
    waiting_for_systems: bool = False


def due_user_ids(session: Session, now: datetime) -> list[int]:
    return [u for u in session.exec(select(User.id).where(User.erasure_due_at <= now)).all()  # type: ignore[operator]
            if u is not None]


def person_requests(session: Session, keyring: Keyring, user: User,
                    received_before: datetime | None = None) -> list[Request]:
    """Every request of the person (by user and by their address's keyed hash), and every confirmation of those.

    ``received_before``: an address that was theirs only until then (someone else may have it now).
    """
    subject_ref = keyring.subject_ref(user.email)
    # A stand-in for someone only the shop's systems know has no id: their address's keyed hash finds them.
    mine = (or_(col(Request.user_id) == user.id, col(Request.subject_ref) == subject_ref) if user.id is not None
            else col(Request.subject_ref) == subject_ref)
    query = select(Request).where(mine)
    if received_before is not None:
        query = query.where(col(Request.received_at) < received_before)
    requests = list(session.exec(query).all())
    request_ids = [r.id for r in requests if r.id is not None]
    if request_ids:
        requests += session.exec(
            select(Request).where(col(Request.related_request_id).in_(request_ids), col(Request.id).not_in(request_ids))
        ).all()
    return sorted(requests, key=lambda r: r.id or 0)


def person_replies(session: Session, user: User, requests: Sequence[Request],
                   current: bool = True) -> Sequence[OutboxMessage]:
    """Every reply of the person's requests, and (``current``: the address is still theirs) any other message to
    their address."""
    theirs = col(OutboxMessage.request_id).in_([r.id for r in requests])
    return session.exec(select(OutboxMessage).where(
        or_(theirs, col(OutboxMessage.recipient) == user.email) if current else theirs)).all()


def plan_erasure(session: Session, keyring: Keyring, user: User) -> ErasurePlan:
    assert user.id is not None
    requests = person_requests(session, keyring, user)
    # A withdrawal carried out: answered, or waiting for a system of the data map (its erasures were written).
    erasing = set(session.exec(select(SystemAction.request_id).where(
        col(SystemAction.request_id).in_([r.id for r in requests]), SystemAction.action == "erase")).all())
    withdrawals = [r for r in requests if RequestKind.WITHDRAW in (r.intents or [r.kind])
                   and (r.state == RequestState.COMPLETED or r.id in erasing)]
    asked = [r for r in requests if r.kind != RequestKind.CONFIRM]
    return ErasurePlan(
        user_id=user.id,
        email=user.email,
        subject_ref=keyring.subject_ref(user.email),
        full_name=" ".join(p for p in (user.surname, user.first_name, user.patronymic) if p) or "(no name held)",
        categories=tuple(name for name in ERASED_FIELDS if getattr(user, name)),
        message_ids=tuple(sorted({r.message_id for r in requests if r.message_id})),
        reply_ids=tuple(sorted(row.message_id for row in person_replies(session, user, requests))),
        withdrawal=withdrawals[-1] if withdrawals else None,
        language=asked[-1].language if asked else None,
        waiting_for_systems=any(r.state == RequestState.CARRYING_OUT for r in requests),
    )


def close_actions(session: Session, request_ids: Sequence[int], kept: frozenset[str] | None) -> None:
    """Requests closed: nothing the systems returned or were to be sent is kept (an access's records, a failed
    action's address and values).  Closed unapplied (rejected, expired, erased), their pending actions on the data
    map's systems are cancelled too, but those of ``kept`` (lifecycle.base.KEPT_ON_CLOSE); completed (``kept`` is
    None), what is pending stays (an erasure at its date)."""
    for action in session.exec(select(SystemAction).where(col(SystemAction.request_id).in_(request_ids))).all():
        if kept is not None and action.state == ActionState.PENDING and action.action not in kept:
            action.state, action.payload, action.last_error = ActionState.CANCELLED, {}, None
        if action.state == ActionState.FAILED:
            action.payload = {}
        action.result = {k: v for k, v in action.result.items() if k != "records"}
        session.add(action)


def erase_user(session: Session, keyring: Keyring, user: User, *, now: datetime, actions_kept: frozenset[str],
               keep_outbox: Sequence[str] = (), act: str | None = None, expunged: int = 0,
               left_in_inbox: int = 0, received_before: datetime | None = None) -> list[str]:
    """Destroy the person's data in the store; return the Message-IDs of the replies scrubbed.

    ``keep_outbox``: Message-IDs of replies left as they are (the notice of
    destruction, purged once sent); ``actions_kept``: the data map's actions
    left due when the person's open requests close (:func:`close_actions`);
    ``received_before``: an address of theirs only until then
    (:func:`person_requests`).
    """
    subject_ref = keyring.subject_ref(user.email)
    held = [name for name in ERASED_FIELDS if getattr(user, name)]  # the log extract names what was held
    requests = person_requests(session, keyring, user, received_before)
    for request in requests:
        request.user_id = None
        request.message_id = None
        forget_personal_text(request)
        if request.state not in FINAL_STATES:  # a question awaiting its answer, a letter in review
            request.state, request.outcome, request.reason = RequestState.REJECTED, None, "erased"
            close_request(request, now)
            record_event(session, "request_rejected", request_id=request.id, subject_ref=request.subject_ref, at=now,
                         reason="erased")
    close_actions(session, [r.id for r in requests if r.id is not None], actions_kept)
    if received_before is None:  # the address is still theirs: their notices not written yet go with it
        # Before the outbox is read: a worker writing them now is waited for, and what it wrote is scrubbed below.
        forget_queued_notices(session, [OWN_USER + user.ref, system_recipient_key(keyring, user.email)])
    scrubbed = [row for row in person_replies(session, user, requests, current=received_before is None)
                if row.message_id not in keep_outbox]
    for row in scrubbed:
        if row.state == OutboxState.QUEUED:
            row.state = OutboxState.FAILED
            row.last_error = "recipient erased before sending"
        row.recipient, row.data = "erased", b""
    record_event(session, "user_erased", subject_ref=subject_ref, fields=held,
                 reason="consent_withdrawn", requests=len(requests), replies=len(scrubbed), act=act,
                 messages_expunged=expunged, messages_left_in_inbox=left_in_inbox)
    forget_hold(session, user.email)
    if user.id is not None:  # a stand-in (someone only the shop's systems knew) was never stored
        session.delete(user)
    return [row.message_id for row in scrubbed]


def purge_outbox_row(row: OutboxMessage, state: OutboxState, reason: str | None = None) -> None:
    """Forget a sent or dropped notice of destruction: its address and its bytes."""
    row.state = state
    if reason:
        row.last_error = reason
    row.recipient, row.data = "erased", b""
