"""An operator's decisions on a request: approve, answer a question, extend the deadline, reject."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.intents.registry import spec_for
from dsr_mailbot.lifecycle.apply import complete
from dsr_mailbot.lifecycle.base import Context, due, pending_intents, reply, transition
from dsr_mailbot.lifecycle.intake import decide_after_lookup
from dsr_mailbot.lifecycle.systems import DEFERRED, HELD_REPLY, person_of
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.models import (
    FINAL_STATES,
    AuditEvent,
    Request,
    RequestKind,
    RequestState,
)


class DecisionError(Exception):
    """The request is not in a state an operator can decide on."""


def approve(ctx: Context, session: Session, request: Request, actor: str) -> None:
    """Apply and answer the request exactly as the automatic path would, without further checks."""
    if request.kind == RequestKind.CONFIRM or request.state not in (
        RequestState.REVIEW, RequestState.AWAITING_CONFIRMATION
    ):
        raise DecisionError(f"request {request.id} is {request.state}; only review or waiting requests can be approved")
    if spec_for(request.kind).answered_by_person:
        raise DecisionError(f"request {request.id} is a question: answer it with 'requests answer'")
    record_event(session, "operator_approved", request_id=request.id, subject_ref=request.subject_ref,
                 actor=actor, at=ctx.now)
    if (request.intent or {}).get(DEFERRED):
        # A system could not be asked whether it knows the sender, and the request came to review: approving it
        # takes the sender as known, and the rule chain decides the rest — an unverified sender still gets a
        # challenge, so the approval never stands in for the owner's yes.
        decide_after_lookup(ctx, session, request, found=True)
        return
    user = person_of(session, request)
    if user is None:
        recipient = request.reply_address
        if recipient:
            reply(ctx, session, request, "unknown_sender", "reply", recipient, verified=True)
        transition(ctx, session, request, RequestState.REJECTED, outcome="unknown_sender" if recipient else None,
               reason="no_such_user", actor=actor)
        return
    complete(ctx, session, request, user, actor=actor)


def answer(ctx: Context, session: Session, request: Request, text: str, actor: str) -> None:
    """Send an operator's answer to a question, threaded to it, and close it.  The text is not audited."""
    if request.state != RequestState.REVIEW or not spec_for(request.kind).answered_by_person:
        raise DecisionError(f"request {request.id} is a {request.kind} in {request.state}; only waiting questions "
                            "can be answered")
    recipient = request.reply_address
    if not recipient:
        raise DecisionError(f"request {request.id} has no address to answer")
    reply(ctx, session, request, "question_answer", "answer", recipient, ReplyContent(answer=text.strip()),
           verified=True)
    transition(ctx, session, request, RequestState.COMPLETED, outcome="question_answer", reason="answered",
                actor=actor)


def extension_refusal(session: Session, request: Request, policy: PolicyConfig, now: datetime) -> str | None:
    """Why extending the deadline would be refused now, or None: the console offers "extend" only then."""
    if request.kind == RequestKind.CONFIRM or request.state in FINAL_STATES:
        return f"request {request.id} is {request.state}; only open requests can be extended"
    if session.exec(select(AuditEvent).where(AuditEvent.request_id == request.id,
                                             AuditEvent.event == "deadline_extended")).first():
        return f"request {request.id}: its deadline was extended once already; the law allows one"
    pending = pending_intents(request)
    extended = min((policy.clock.due_at(kind, request.received_at, extended=True) for kind in pending),
                   default=request.due_at)
    if extended <= request.due_at:
        profiles = ", ".join(policy.deadline_profile)
        return f"request {request.id}: the deadline profiles ({profiles}) allow no extension for {'+'.join(pending)}"
    if request.due_at <= now:
        # The reasoned notice must reach the person within the term it extends (152-FZ Art. 14 ч.3; GDPR Art. 12(3)
        # "within one month of receipt"): a deadline already missed is late, never extended after the fact.
        return (f"request {request.id}: its deadline ({request.due_at.isoformat(timespec='minutes')}) "
                "has passed; the law allows an extension only before it")
    if not request.reply_address:
        return f"request {request.id} has no address to send the notice to"
    return None


def extend(ctx: Context, session: Session, request: Request, reason: str, actor: str) -> None:
    """Move an open request's due date by the one extension the deadline profiles allow, with a reasoned notice.

    152-FZ Art. 14 ч.3 allows 5 more working days for an access request or
    a question, GDPR Art. 12(3) two more months; each profile extends its
    own rule, and the strictest date still wins (under the default profiles
    the KZ figure allows none, so nothing moves).  Once per request.  The
    reason goes to the person; the audit keeps the dates, not the text.
    """
    refusal = extension_refusal(session, request, ctx.config.policy, ctx.now)
    if refusal is not None:
        raise DecisionError(refusal)
    pending = pending_intents(request)
    extended = due(ctx, request, pending, extended=True)
    recipient = request.reply_address
    assert recipient is not None  # extension_refusal says so otherwise
    reply(ctx, session, request, "deadline_extended", "extension", recipient,
           ReplyContent(kinds=tuple(pending), reason=reason, due_at=extended), verified=True)
    record_event(session, "deadline_extended", request_id=request.id, subject_ref=request.subject_ref, actor=actor,
                 at=ctx.now, previous_due_at=request.due_at.isoformat(), due_at=extended.isoformat())
    request.due_at = extended
    session.add(request)


def reject(ctx: Context, session: Session, request: Request, reason: str, actor: str) -> None:
    """Close the request unapplied and tell the sender why, in their language."""
    if request.kind == RequestKind.CONFIRM or request.state in FINAL_STATES:
        raise DecisionError(f"request {request.id} is {request.state}; it cannot be rejected")
    if HELD_REPLY in (request.intent or {}) and {RequestKind.UPDATE, RequestKind.WITHDRAW} & set(request.intents):
        # Carried out already in the bot's own record and some systems: a rejection ("nothing was changed") would
        # be false, and a withdrawal's erasure is then what the law requires in every system.
        raise DecisionError(f"request {request.id} was carried out already and waits for a system; approve it to "
                            "try that system again")
    recipient = request.reply_address
    if recipient:
        reply(ctx, session, request, "request_rejected", "reply", recipient, ReplyContent(reason=reason),
               verified=True)
    transition(ctx, session, request, RequestState.REJECTED, outcome="request_rejected" if recipient else None,
           reason="operator_rejected", actor=actor)


def dismiss(ctx: Context, session: Session, request: Request, actor: str) -> None:
    """Not a data-subject request (a letter for the staff that only looked like one): closed without a reply.

    Only a request still waiting for a person may be dismissed: nothing was sent and nothing changed.
    """
    if request.kind == RequestKind.CONFIRM or request.state != RequestState.REVIEW:
        raise DecisionError(f"request {request.id} is {request.state}; only a request in review can be dismissed")
    if HELD_REPLY in (request.intent or {}) or (request.intent or {}).get("on_receipt"):
        raise DecisionError(f"request {request.id} was carried out in part already; approve or reject it")
    transition(ctx, session, request, RequestState.IGNORED, outcome=None, reason="not_a_request", actor=actor)
