"""The request lifecycle: every change of a request's state, each inside the caller's transaction.

::

    received ─┬─► completed | rejected           applied, or nothing to apply; answered either way
              ├─► awaiting_confirmation ─┬─► completed       the address on file (and a new address) confirmed
              │                          ├─► review          a "confirmation" came from another address
              │                          └─► expired         nobody confirmed in time; a short notice
              ├─► review ─► completed | rejected             an operator decided (approve / reject)
              └─► ignored                                    auto-replies, bulk mail, loops: never answered

Who may change what (see verify.py and the README, "How requests are
verified"): an opt-out needs no confirmation (harmless if forged); an update
or a withdrawal is applied at once only when ``[trust] verification`` allows
it — ``never``, or ``auto`` with a trusted Authentication-Results pass —
and otherwise waits for the owner's reply to a challenge sent **to the
address on file**.  A change of the e-mail address also waits for a reply
from the new address, and the old address is told once it is done.

Anything that cannot be decided automatically goes to ``review`` with a
reason: conflicting values, a letter naming another user's address, a
confirmation from the wrong address, a sender past the daily reply limit,
a second unverified update while the owner's challenge for one is open.

**One open challenge per user and intent.**  A forger can send any number
of letters in the owner's name; each one sending a challenge would flood
the owner and use up their daily allowance.  While a challenge for the same
user and kind is open, a further unverified withdrawal is closed without a
reply (the open challenge already asks the owner), and a further unverified
update goes to review (its fields may differ, and the owner must confirm
exactly what they saw).  Replies to unverified mail never count against an
authenticated request's daily limit (``for_verified`` in the outbox).

The message's text is read before the transaction opens
(:mod:`~dsr_mailbot.facts`); :func:`intake` then loads what the store knows
into :class:`~dsr_mailbot.decisions.Facts`, the rule chain of
:mod:`~dsr_mailbot.decisions` decides (pure), and the functions here carry
the decision out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import assert_never

from sqlmodel import Session, select

from dsr_mailbot.config import Config
from dsr_mailbot.decisions import Action, Decision, Facts, decide
from dsr_mailbot.facts import Reading
from dsr_mailbot.intents.apply import Outcome, combined
from dsr_mailbot.intents.deadlines import due_at, erasure_due_at
from dsr_mailbot.intents.registry import Target, in_order, spec_for
from dsr_mailbot.reading.consent import ConsentReading, Verdict
from dsr_mailbot.reading.extract import Problem, UpdateIntent
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.replies.outbox import mask_address, queue_reply, replies_in_last_day
from dsr_mailbot.replies.reply import Renderer, ReplyContent
from dsr_mailbot.store.database import find_user_by_email, record_event
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import (
    FINAL_STATES,
    AuditEvent,
    Request,
    RequestKind,
    RequestState,
    User,
    close_request,
)
from dsr_mailbot.trust.tokens import NEW_ADDRESS, OWNER, Token, TokenStatus, check_token, make_token
from dsr_mailbot.trust.verify import Confirmation, identify


@dataclass(frozen=True)
class Context:
    config: Config
    keyring: Keyring
    renderer: Renderer
    now: datetime


@dataclass(frozen=True)
class Arrival:
    """Where a message was found: enough to record it and to move it later."""

    source: str
    uidvalidity: int
    uid: int
    received_at: datetime


# Recording


def _new_request(ctx: Context, arrival: Arrival, headers: Headers, kind: str, language: str) -> Request:
    policy = ctx.config.policy
    return Request(
        message_ref=ctx.keyring.message_ref(headers.message_id),
        message_id=headers.message_id,
        source=arrival.source,
        uidvalidity=arrival.uidvalidity,
        uid=arrival.uid,
        kind=kind,
        intents=[] if kind == RequestKind.CONFIRM else [kind],
        state=RequestState.RECEIVED,
        language=language,
        received_at=arrival.received_at,
        due_at=due_at(kind, arrival.received_at, policy.deadline_profile, policy.calendar, policy.timezone),
        subject_ref=ctx.keyring.subject_ref(headers.sender) if headers.sender else "-",
        reply_address=headers.sender,
        thread=" ".join(headers.references) or None,
    )


def _transition(ctx: Context, session: Session, request: Request, state: RequestState, *, outcome: str | None = None,
           reason: str | None = None, actor: str = "bot", **detail: object) -> None:
    request.state = state
    request.outcome = outcome
    request.reason = reason
    if state in FINAL_STATES:
        # A closed request needs none of the person's data: the reply, if any, carries its own recipient.
        close_request(request, ctx.now)
    record_event(session, f"request_{state}", request_id=request.id, subject_ref=request.subject_ref,
                 actor=actor, at=ctx.now, outcome=outcome, reason=reason, **detail)


def _reply(ctx: Context, session: Session, request: Request, template: str, purpose: str, recipient: str,
           content: ReplyContent | None = None, *, verified: bool) -> None:
    """Queue a reply; ``verified``: it answers mail whose sender was authenticated or confirmed."""
    queue_reply(session, config=ctx.config, keyring=ctx.keyring, renderer=ctx.renderer, request=request,
                template=template, purpose=purpose, recipient=recipient, content=content or ReplyContent(),
                now=ctx.now, for_verified=verified)


def record_ignored(ctx: Context, session: Session, arrival: Arrival, headers: Headers, kind: str, language: str,
                   reason: str) -> Request:
    """Mail that looks like a request or a confirmation but must never be answered."""
    request = _new_request(ctx, arrival, headers, kind, language)
    session.add(request)
    session.flush()
    _transition(ctx, session, request, RequestState.IGNORED, reason=reason)
    return request


def record_received(ctx: Context, session: Session, arrival: Arrival, headers: Headers, kind: str,
                    language: str) -> Request:
    """The first transition: the message is ours to handle.  Committed before any work on it.

    Work on it follows at once, so its first attempt is counted here (see ``pipeline.MAX_ATTEMPTS``).
    """
    request = _new_request(ctx, arrival, headers, kind, language)
    request.attempts = 1
    session.add(request)
    session.flush()
    record_event(session, "request_received", request_id=request.id, subject_ref=request.subject_ref, at=ctx.now,
                 kind=kind)
    return request


def set_aside(ctx: Context, session: Session, request: Request, reason: str) -> None:
    """A message the bot failed on: to review, unanswered, with the failing stage as the reason."""
    _transition(ctx, session, request, RequestState.REVIEW, reason=reason[:500])


# New requests


def _intent_of(request: Request) -> UpdateIntent:
    stored = request.intent or {}
    return UpdateIntent(
        changes=dict(stored.get("changes", {})),
        problems=tuple(Problem(f, c) for f, c in stored.get("problems", [])),
    )


def _someone_elses(session: Session, address: str, user: User | None) -> bool:
    """Is ``address`` the stored address of a user other than ``user``?"""
    other = find_user_by_email(session, address)
    return other is not None and (user is None or other.id != user.id)


def _other_users_named(session: Session, addresses: frozenset[str], user: User | None) -> bool:
    """Does the letter name the address of a user other than the sender?"""
    return any(_someone_elses(session, address, user) for address in sorted(addresses))


def _open_challenge(session: Session, request: Request, user: User) -> Request | None:
    """Another request of the same kind from this user that already waits for the owner's confirmation."""
    return session.exec(
        select(Request).where(
            Request.state == RequestState.AWAITING_CONFIRMATION,
            Request.user_id == user.id,
            Request.kind == request.kind,
            Request.awaiting == OWNER,
            Request.id != request.id,
        )
    ).first()


def _due(ctx: Context, request: Request, kinds: Sequence[str], *, extended: bool = False) -> datetime:
    """The strictest due date of these intents, counted from the request's receipt (``extended``: once extended)."""
    policy = ctx.config.policy
    return min((due_at(kind, request.received_at, policy.deadline_profile, policy.calendar, policy.timezone,
                       extended=extended) for kind in kinds), default=request.due_at)


def _carry_out(ctx: Context, session: Session, request: Request, user: User,
               kinds: Sequence[str]) -> list[Outcome]:
    """Run the handlers of these intents on the user, in the registry's order."""
    target = Target(
        user=user, intent=_intent_of(request), received_at=request.received_at, now=ctx.now,
        erasure_delay_days=ctx.config.policy.erasure_delay_days,
        email_taken=lambda email: _someone_elses(session, email, user),
    )
    outcomes = [spec_for(kind).handle(target) for kind in in_order(kinds)]
    session.add(user)
    return outcomes


def _on_receipt_intents(request: Request) -> list[str]:
    """What a letter's confirmation does not wait for: the intents that never need one, when others do."""
    now = [kind for kind in request.intents if spec_for(kind).confirmation is Confirmation.NEVER]
    return now if len(now) < len(request.intents) else []


def pending_intents(request: Request) -> list[str]:
    """The intents whose deadline the request's due date is: all but those carried out on receipt."""
    early = (request.intent or {}).get("on_receipt", [])
    return [kind for kind in request.intents or [request.kind] if kind not in early]


def _on_receipt(ctx: Context, session: Session, request: Request, user: User) -> None:
    """While the rest of a letter waits for confirmation, carry out at once what never needs one (an opt-out).

    Harmless if forged, and due on receipt by law; its handler runs again,
    changing nothing, when the rest is carried out.  The due date becomes
    that of what is left.
    """
    now = _on_receipt_intents(request)
    if not now:
        return
    outcomes = _carry_out(ctx, session, request, user, now)
    request.intent = {**request.intent, "on_receipt": now}
    request.due_at = _due(ctx, request, pending_intents(request))
    record_event(session, "applied_on_receipt", request_id=request.id, subject_ref=request.subject_ref, at=ctx.now,
                 intents=now, changed=sorted({f for o in outcomes for f in o.changed_fields}))


def intake(ctx: Context, session: Session, request: Request, headers: Headers, reading: Reading,
           replied_to: int | None = None) -> Request:
    """Take a received request (its message read in full, before this transaction) as far as it can go now.

    ``replied_to``: the request one of whose messages this mail answers.  Such
    mail is a person talking to us ("I did not send this!"), never a new
    request, whatever its subject says: it is read, and goes to review.
    """
    cfg = ctx.config
    request.language = reading.language
    kinds = [kind.value for kind in in_order(reading.intents)]
    request.intents = kinds
    request.due_at = _due(ctx, request, kinds)
    identity = identify(headers, lambda email: find_user_by_email(session, email))
    auth, intent = reading.auth, reading.intent
    request.authenticated = auth.authenticated
    request.user_id = identity.user.id if identity.user else None
    request.intent = {"changes": intent.changes, "problems": [[p.field, p.code] for p in intent.problems],
                      "from_words": reading.from_words}
    request.letter_subject = reading.subject
    request.letter_text = reading.own_words
    session.add(request)
    record_event(session, "request_read", request_id=request.id, subject_ref=request.subject_ref, at=ctx.now,
                 language=reading.language, intents=kinds, authentication=auth.summary, fields=sorted(intent.changes),
                 problems=[f"{p.field}:{p.code}" for p in intent.problems], **reading.detail)

    user = identity.user
    recipient = user.email if user else identity.sender
    verified = auth.authenticated
    waiting = _open_challenge(session, request, user) if user is not None else None
    facts = Facts(
        intents=tuple(kinds),
        replies_to_our_message=replied_to is not None,
        has_sender=recipient is not None,
        sender_known=user is not None,
        replies_today=replies_in_last_day(session, recipient, ctx.now, verified_only=verified) if recipient else 0,
        daily_limit=cfg.trust.max_replies_per_sender_per_day,
        names_another_user=_other_users_named(session, reading.named_addresses, user),
        conflicting_values=any(p.code == "conflict" for p in intent.problems),
        update_understood=intent.understood,
        authenticated=auth.authenticated,
        verification=cfg.trust.verification,
        challenge_open=waiting is not None,
        irreversible_from_words=any(spec_for(kind).irreversible for kind in reading.from_words),
    )
    decision = decide(facts)
    # The request this one relates to: the one whose message it answers, or the one whose open challenge stops it.
    if replied_to is not None:
        request.related_request_id = replied_to
    elif decision.reason == "challenge_already_open" and waiting is not None:
        request.related_request_id = waiting.id
    _carry_out_decision(ctx, session, request, decision, user, recipient, verified)
    return request


def _carry_out_decision(ctx: Context, session: Session, request: Request, decision: Decision, user: User | None,
                        recipient: str | None, verified: bool) -> None:
    """Do what :func:`decide` chose: every action has its branch, and there is no other."""
    if decision.on_receipt and user is not None:
        _on_receipt(ctx, session, request, user)
    match decision.action:
        case Action.REVIEW:
            _transition(ctx, session, request, RequestState.REVIEW, reason=decision.reason)
        case Action.ACKNOWLEDGE:
            # A question: told at once when it will be answered, then it waits for a person (requests answer).
            assert recipient is not None
            _reply(ctx, session, request, "question_acknowledged", "reply", recipient,
                   ReplyContent(kinds=(request.kind,), due_at=request.due_at), verified=verified)
            _transition(ctx, session, request, RequestState.REVIEW, reason=decision.reason)
        case Action.UNKNOWN_SENDER:
            assert recipient is not None
            _reply(ctx, session, request, "unknown_sender", "reply", recipient, verified=verified)
            _transition(ctx, session, request, RequestState.REJECTED, outcome="unknown_sender",
                        reason=decision.reason)
        case Action.NOT_UNDERSTOOD:
            assert recipient is not None
            intent = _intent_of(request)
            _reply(ctx, session, request, "update_not_understood", "reply", recipient,
                   ReplyContent(problems=tuple((p.field, p.code) for p in intent.problems)), verified=verified)
            _transition(ctx, session, request, RequestState.REJECTED, outcome="update_not_understood",
                        reason=decision.reason)
        case Action.CLOSE_UNANSWERED:
            _transition(ctx, session, request, RequestState.REJECTED, reason=decision.reason)
        case Action.AWAIT_OWNER:
            assert user is not None
            _await(ctx, session, request, user, OWNER)
        case Action.CARRY_OUT:
            assert user is not None
            _after_owner(ctx, session, request, user, verified=verified)
        case _:
            assert_never(decision.action)


def _await(ctx: Context, session: Session, request: Request, user: User, audience: str) -> None:
    """Send a challenge and wait for its reply."""
    assert request.id is not None
    expires = ctx.now + timedelta(days=ctx.config.trust.confirm_expiry_days)
    token = make_token(ctx.keyring, request.id, audience, expires)
    request.state = RequestState.AWAITING_CONFIRMATION
    request.awaiting = audience
    request.confirm_expires_at = token.expires_at
    intent = _intent_of(request)
    if audience == OWNER:
        recipient = user.email
        template, purpose = "challenge", "challenge_o"
        content = ReplyContent(
            kinds=tuple(request.intents), changes=intent.changes, token=str(token), expires_at=token.expires_at,
            erasure_due_at=erasure_due_at(request.received_at, ctx.config.policy.erasure_delay_days),
            understood={kind: phrase for kind, phrase in (request.intent or {}).get("from_words", {}).items()
                        if spec_for(kind).irreversible},
        )
    else:
        recipient = intent.changes["email"]
        template, purpose = "challenge_new_address", "challenge_n"
        content = ReplyContent(kinds=tuple(request.intents), token=str(token), expires_at=token.expires_at)
    # A challenge to the owner answers whatever came in their name; one to a new address follows a verified owner.
    _reply(ctx, session, request, template, purpose, recipient, content,
           verified=audience == NEW_ADDRESS or request.authenticated)
    record_event(session, "confirmation_requested", request_id=request.id, subject_ref=request.subject_ref,
                 at=ctx.now, audience=audience)


def _after_owner(ctx: Context, session: Session, request: Request, user: User, *, verified: bool) -> None:
    """The owner is verified (or ``verification = never`` believes them): confirm a new address, else finish."""
    intent = _intent_of(request)
    new_email = intent.changes.get("email")
    if (RequestKind.UPDATE in request.intents and new_email and new_email != user.email
            and ctx.config.trust.verification != "never"):
        _await(ctx, session, request, user, NEW_ADDRESS)
        return
    complete(ctx, session, request, user, verified=verified)


def complete(ctx: Context, session: Session, request: Request, user: User, actor: str = "bot", *,
             verified: bool = True) -> None:
    """Apply what the request asked and queue one reply (and, for a new e-mail address, a notice to the old one)."""
    old_email = user.email
    outcome = combined(_carry_out(ctx, session, request, user, request.intents or [request.kind]))
    if outcome.template:
        _reply(ctx, session, request, outcome.template, "reply", user.email, ReplyContent(
            kinds=tuple(request.intents), parts=outcome.parts, changes=dict(outcome.changes),
            unchanged=outcome.unchanged_fields, problems=tuple((p.field, p.code) for p in outcome.problems),
            erasure_due_at=outcome.erasure_due_at, held=dict(outcome.held), consents=dict(outcome.consents),
        ), verified=verified)
    if user.email != old_email:
        _reply(ctx, session, request, "email_changed_notice", "notice_old_address", old_email,
               ReplyContent(new_address=mask_address(user.email)), verified=verified)
    # Replies first: closing the request forgets the thread they answer in.
    _transition(ctx, session, request, outcome.state, outcome=outcome.template, reason=outcome.reason, actor=actor,
           changed=list(outcome.changed_fields), unchanged=list(outcome.unchanged_fields),
           problems=[f"{p.field}:{p.code}" for p in outcome.problems])


# Confirmations


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
        _transition(ctx, session, row, RequestState.REJECTED, reason="bad_token")
        return row
    if target.state != RequestState.AWAITING_CONFIRMATION or target.awaiting != token.audience:
        _transition(ctx, session, row, RequestState.REJECTED, reason="token_used")
        return row
    if status is TokenStatus.EXPIRED:
        expire(ctx, session, target)
        _transition(ctx, session, row, RequestState.REJECTED, reason="token_expired")
        return row
    user = session.get(User, target.user_id) if target.user_id is not None else None
    if user is None:  # the user was erased while the request waited
        _transition(ctx, session, target, RequestState.REJECTED, reason="user_gone")
        _transition(ctx, session, row, RequestState.REJECTED, reason="user_gone")
        return row
    expected = user.email if token.audience == OWNER else _intent_of(target).changes.get("email")
    if headers.sender is None or headers.sender != expected:
        _transition(ctx, session, target, RequestState.REVIEW, reason="confirmation_from_other_address")
        _transition(ctx, session, row, RequestState.REJECTED, reason="other_address")
        return row
    match consent.verdict:
        case Verdict.NO:
            target.owner_reply = consent.own_words  # the reviewer reads the objection too
            _transition(ctx, session, target, RequestState.REVIEW, reason="owner_objected")
            _transition(ctx, session, row, RequestState.REJECTED, reason="objection")
            return row
        case Verdict.UNCLEAR:
            target.owner_reply = consent.own_words
            _transition(ctx, session, target, RequestState.REVIEW, reason="unclear_confirmation")
            _transition(ctx, session, row, RequestState.REJECTED, reason="unclear")
            return row
        case Verdict.YES:
            pass
        case _:
            assert_never(consent.verdict)
    _transition(ctx, session, row, RequestState.COMPLETED, outcome="confirmed")
    record_event(session, "confirmed", request_id=target.id, subject_ref=target.subject_ref, at=ctx.now,
                 audience=token.audience, confirmation_request_id=row.id)
    if token.audience == OWNER:
        _after_owner(ctx, session, target, user, verified=True)
    else:
        complete(ctx, session, target, user, verified=True)
    return row


def expire(ctx: Context, session: Session, request: Request) -> None:
    """Close an unconfirmed request with a short notice to the address on file."""
    user = session.get(User, request.user_id) if request.user_id is not None else None
    if user is not None:
        _reply(ctx, session, request, "confirmation_expired", "expired", user.email, verified=False)
    _transition(ctx, session, request, RequestState.EXPIRED, outcome="confirmation_expired" if user else None,
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


# Operator decisions


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
    user = session.get(User, request.user_id) if request.user_id is not None else None
    if user is None:
        recipient = request.reply_address
        if recipient:
            _reply(ctx, session, request, "unknown_sender", "reply", recipient, verified=True)
        _transition(ctx, session, request, RequestState.REJECTED, outcome="unknown_sender" if recipient else None,
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
    _reply(ctx, session, request, "question_answer", "answer", recipient, ReplyContent(answer=text.strip()),
           verified=True)
    _transition(ctx, session, request, RequestState.COMPLETED, outcome="question_answer", reason="answered",
                actor=actor)


def extend(ctx: Context, session: Session, request: Request, reason: str, actor: str) -> None:
    """Move an open request's due date by the one extension the deadline profiles allow, with a reasoned notice.

    152-FZ Art. 14 ч.3 allows 5 more working days for an access request or
    a question, GDPR Art. 12(3) two more months; each profile extends its
    own rule, and the strictest date still wins (under the default profiles
    the KZ figure allows none, so nothing moves).  Once per request.  The
    reason goes to the person; the audit keeps the dates, not the text.
    """
    if request.kind == RequestKind.CONFIRM or request.state in FINAL_STATES:
        raise DecisionError(f"request {request.id} is {request.state}; only open requests can be extended")
    if session.exec(select(AuditEvent).where(AuditEvent.request_id == request.id,
                                             AuditEvent.event == "deadline_extended")).first():
        raise DecisionError(f"request {request.id}: its deadline was extended once already; the law allows one")
    pending = pending_intents(request)
    extended = _due(ctx, request, pending, extended=True)
    if extended <= request.due_at:
        profiles = ", ".join(ctx.config.policy.deadline_profile)
        raise DecisionError(f"request {request.id}: the deadline profiles ({profiles}) "
                            f"allow no extension for {'+'.join(pending)}")
    recipient = request.reply_address
    if not recipient:
        raise DecisionError(f"request {request.id} has no address to send the notice to")
    _reply(ctx, session, request, "deadline_extended", "extension", recipient,
           ReplyContent(kinds=tuple(pending), reason=reason, due_at=extended), verified=True)
    record_event(session, "deadline_extended", request_id=request.id, subject_ref=request.subject_ref, actor=actor,
                 at=ctx.now, previous_due_at=request.due_at.isoformat(), due_at=extended.isoformat())
    request.due_at = extended
    session.add(request)


def reject(ctx: Context, session: Session, request: Request, reason: str, actor: str) -> None:
    """Close the request unapplied and tell the sender why, in their language."""
    if request.kind == RequestKind.CONFIRM or request.state in FINAL_STATES:
        raise DecisionError(f"request {request.id} is {request.state}; it cannot be rejected")
    recipient = request.reply_address
    if recipient:
        _reply(ctx, session, request, "request_rejected", "reply", recipient, ReplyContent(reason=reason),
               verified=True)
    _transition(ctx, session, request, RequestState.REJECTED, outcome="request_rejected" if recipient else None,
           reason="operator_rejected", actor=actor)
