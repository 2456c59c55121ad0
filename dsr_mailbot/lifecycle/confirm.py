"""The confirmation loop: a reply to a challenge checked and read, and challenges nobody answered in time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from sqlmodel import Session, select

from dsr_mailbot.lifecycle.apply import after_owner, complete
from dsr_mailbot.lifecycle.base import Context, intent_of, reply, transition
from dsr_mailbot.lifecycle.systems import person_of
from dsr_mailbot.reading.consent import ConsentReading, Verdict
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.models import (
    Request,
    RequestState,
)
from dsr_mailbot.trust.tokens import OWNER, Token, TokenStatus, check_token


def confirm(ctx: Context, session: Session, row: Request, headers: Headers, token: Token,
            consent: ConsentReading) -> Request:
    """Check a received reply to a challenge and, when it is the right person's clear yes, move its request on.

    ``consent``: what the reply says, read before the transaction
    (:func:`~dsr_mailbot.reading.consent.read_confirmation`).  Only a clear
    yes (or an empty reply) confirms.  A no confirms nothing and the request
    goes to review: a forged request's owner answering «НЕТ, я не
    отправлял!» must never be read as a yes.  Anything else goes to review
    too, with the reply kept for the person who decides.
    """
    target = session.get(Request, token.request_id)
    row.language = target.language if target else ctx.config.policy.default_language
    row.related_request_id = token.request_id
    session.add(row)
    status = check_token(ctx.keyring, token, ctx.now)
    if status is TokenStatus.TAMPERED or target is None:
        transition(ctx, session, row, RequestState.REJECTED, reason="bad_token")
        return row
    if target.state != RequestState.AWAITING_CONFIRMATION or target.awaiting != token.audience:
        transition(ctx, session, row, RequestState.REJECTED, reason="token_used")
        return row
    if status is TokenStatus.EXPIRED:
        expire(ctx, session, target)
        transition(ctx, session, row, RequestState.REJECTED, reason="token_expired")
        return row
    user = person_of(session, target)
    if user is None:  # the user was erased while the request waited
        transition(ctx, session, target, RequestState.REJECTED, reason="user_gone")
        transition(ctx, session, row, RequestState.REJECTED, reason="user_gone")
        return row
    expected = user.email if token.audience == OWNER else intent_of(target).changes.get("email")
    if headers.sender is None or headers.sender != expected:
        transition(ctx, session, target, RequestState.REVIEW, reason="confirmation_from_other_address")
        transition(ctx, session, row, RequestState.REJECTED, reason="other_address")
        return row
    match consent.verdict:
        case Verdict.NO:
            target.owner_reply = consent.own_words  # the reviewer reads the objection too
            transition(ctx, session, target, RequestState.REVIEW, reason="owner_objected")
            transition(ctx, session, row, RequestState.REJECTED, reason="objection")
            return row
        case Verdict.UNCLEAR:
            target.owner_reply = consent.own_words
            transition(ctx, session, target, RequestState.REVIEW, reason="unclear_confirmation")
            transition(ctx, session, row, RequestState.REJECTED, reason="unclear")
            return row
        case Verdict.YES:
            pass
        case _:
            assert_never(consent.verdict)
    transition(ctx, session, row, RequestState.COMPLETED, outcome="confirmed")
    record_event(session, "confirmed", request_id=target.id, subject_ref=target.subject_ref, at=ctx.now,
                 audience=token.audience, confirmation_request_id=row.id)
    if token.audience == OWNER:
        after_owner(ctx, session, target, user, verified=True)
    else:
        complete(ctx, session, target, user, verified=True)
    return row


def expire(ctx: Context, session: Session, request: Request) -> None:
    """Close an unconfirmed request with a short notice to the address on file."""
    user = person_of(session, request)
    if user is not None:
        reply(ctx, session, request, "confirmation_expired", "expired", user.email, verified=False)
    transition(ctx, session, request, RequestState.EXPIRED, outcome="confirmation_expired" if user else None,
           reason="not_confirmed_in_time")


def expire_overdue(ctx: Context, session: Session) -> int:
    overdue: Sequence[Request] = session.exec(
        select(Request)
        .where(
            Request.state == RequestState.AWAITING_CONFIRMATION,
            Request.confirm_expires_at <= ctx.now,  # type: ignore[operator]
        )
        .with_for_update(skip_locked=True)  # on PostgreSQL, two workers never send the same notice
    ).all()
    for request in overdue:
        expire(ctx, session, request)
    return len(overdue)
