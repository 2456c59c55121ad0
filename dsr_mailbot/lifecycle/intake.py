"""A new request read in full: the facts loaded, the rule chain decides (:mod:`~dsr_mailbot.decisions`), carried out."""

from __future__ import annotations

from dataclasses import asdict
from typing import assert_never

from sqlmodel import Session, select

from dsr_mailbot.decisions import Action, Decision, Facts, decide
from dsr_mailbot.facts import Reading
from dsr_mailbot.intents.deadlines import calendar_version
from dsr_mailbot.intents.registry import in_order, spec_for
from dsr_mailbot.lifecycle.apply import after_owner, await_confirmation, carry_out_on_receipt
from dsr_mailbot.lifecycle.base import UNMARKED, Context, due, intent_of, reply, someone_elses, transition
from dsr_mailbot.lifecycle.systems import (
    DEFERRED,
    IN_SYSTEMS,
    transient_person,
    write_actions,
    write_lookups,
)
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.replies.outbox import replies_in_last_day
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import find_user_by_email
from dsr_mailbot.store.holds import place_system_hold
from dsr_mailbot.store.models import (
    Request,
    RequestKind,
    RequestState,
    User,
)
from dsr_mailbot.store.suppressions import is_suppressed, suppress
from dsr_mailbot.systems.protocol import Presence
from dsr_mailbot.trust.tokens import OWNER
from dsr_mailbot.trust.verify import identify


def _other_users_named(session: Session, addresses: frozenset[str], user: User | None) -> bool:
    """Does the letter name the address of a user other than the sender?"""
    return any(someone_elses(session, address, user) for address in sorted(addresses))


def _deadline_detail(ctx: Context, request: Request) -> dict[str, object]:
    """For the audit trail: how the due date was counted, so that an inspector can count it again."""
    policy = ctx.config.policy
    return {"received_at": request.received_at.isoformat(), "due_at": request.due_at.isoformat(),
            "deadline_profiles": list(policy.deadline_profile), "calendars": policy.clock.calendars(),
            "timezone": policy.timezone, "holidays_version": calendar_version()}


def _presence_detail(presence: Presence) -> dict[str, object]:
    """For the audit trail: which systems knew the sender, and which could not be asked (names, no values)."""
    if not presence.asked:
        return {}
    return {"systems_found": list(presence.found), "systems_unreachable": list(presence.unreachable)}


def _open_challenge(session: Session, request: Request, user: User) -> Request | None:
    """Another request of the same kind from this user that already waits for the owner's confirmation."""
    # Someone only the shop's systems know is recognised by the keyed hash of their address.
    same_person = Request.user_id == user.id if user.id is not None else Request.subject_ref == request.subject_ref
    return session.exec(
        select(Request).where(
            Request.state == RequestState.AWAITING_CONFIRMATION,
            same_person,
            Request.kind == request.kind,
            Request.awaiting == OWNER,
            Request.id != request.id,
        )
    ).first()


def intake(ctx: Context, session: Session, request: Request, headers: Headers, reading: Reading,
           replied_to: int | None = None, presence: Presence | None = None) -> Request:
    """Take a received request (its message read in full, before this transaction) as far as it can go now.

    ``replied_to``: the request one of whose messages this mail answers.  Such
    mail is a person talking to us ("I did not send this!"), never a new
    request, whatever its subject says: it is read, and goes to review.
    ``presence``: the sender looked up in the data map's other systems, before
    this transaction; a person any system knows is known.
    """
    presence = presence or Presence()
    cfg = ctx.config
    unmarked = bool((request.intent or {}).get(UNMARKED))
    request.language = reading.language
    kinds = [kind.value for kind in in_order(reading.intents)]
    request.intents = kinds
    request.due_at = due(ctx, request, kinds)
    builtin = cfg.builtin_label is not None
    identity = identify(headers, lambda email: find_user_by_email(session, email) if builtin else None)
    auth, intent = reading.auth, reading.intent
    request.authenticated = auth.authenticated
    user = identity.user
    if user is None and presence.found and identity.sender is not None:
        user = transient_person(identity.sender)
    request.user_id = user.id if user is not None else None
    request.intent = {"changes": intent.changes, "problems": [[p.field, p.code] for p in intent.problems],
                      "from_words": reading.from_words, **({IN_SYSTEMS: True} if presence.found else {}),
                      **({UNMARKED: True} if unmarked else {})}
    request.letter_subject = reading.subject
    request.letter_text = reading.own_words
    session.add(request)
    record_event(session, "request_read", request_id=request.id, subject_ref=request.subject_ref, at=ctx.now,
                 language=reading.language, intents=kinds, authentication=auth.summary, fields=sorted(intent.changes),
                 problems=[f"{p.field}:{p.code}" for p in intent.problems],
                 **{**reading.detail, **_presence_detail(presence), **_deadline_detail(ctx, request)})

    if identity.sender is not None and presence.found and is_suppressed(session, identity.sender):
        # On the suppression list, and now found in a system's rows: marketing goes off there too, whatever
        # this letter asks.
        write_actions(ctx, session, request, [RequestKind.OPTOUT], identity.sender, {}, None)
    if identity.sender is not None:
        for system, held in presence.holds:
            place_system_hold(session, identity.sender, system, held, now=ctx.now, subject_ref=request.subject_ref,
                              max_block_days=cfg.policy.max_block_days, timezone=cfg.policy.timezone)
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
        lookup_incomplete=bool(presence.unreachable),
        unmarked=unmarked,
    )
    decision = decide(facts)
    if decision.action is Action.WAIT_FOR_SYSTEMS:
        assert identity.sender is not None
        write_lookups(ctx, session, request, presence.unreachable, identity.sender)
        request.intent = {**request.intent, DEFERRED: {**asdict(facts), "intents": list(facts.intents)}}
    # The request this one relates to: the one whose message it answers, or the one whose open challenge stops it.
    if replied_to is not None:
        request.related_request_id = replied_to
    elif decision.reason == "challenge_already_open" and waiting is not None:
        request.related_request_id = waiting.id
    _carry_out_decision(ctx, session, request, decision, user, recipient, verified)
    return request


def decide_after_lookup(ctx: Context, session: Session, request: Request, found: bool) -> None:
    """The systems that could not be asked at intake have answered: decide with what they said."""
    stored = dict(request.intent[DEFERRED])
    request.intent = {k: v for k, v in request.intent.items() if k != DEFERRED}
    recipient = request.reply_address
    user = transient_person(recipient) if found and recipient else None
    # What may have changed while it waited is loaded again: the replies sent to the address since (a flood of
    # forged letters waiting together must not pass the daily limit), and a challenge opened meanwhile.
    verified = request.authenticated
    waiting = _open_challenge(session, request, user) if user is not None else None
    facts = Facts(**{**stored, "intents": tuple(stored["intents"]), "sender_known": found, "lookup_incomplete": False,
                     "replies_today": replies_in_last_day(session, recipient, ctx.now, verified_only=verified)
                     if recipient else 0,
                     "challenge_open": waiting is not None})
    if waiting is not None:
        request.related_request_id = waiting.id
    if user is not None:
        request.intent = {**request.intent, IN_SYSTEMS: True}
    session.add(request)
    _carry_out_decision(ctx, session, request, decide(facts), user, recipient, verified)


def _carry_out_decision(ctx: Context, session: Session, request: Request, decision: Decision, user: User | None,
                        recipient: str | None, verified: bool) -> None:
    """Do what :func:`decide` chose: every action has its branch, and there is no other."""
    if decision.on_receipt and user is not None:
        carry_out_on_receipt(ctx, session, request, user)
    match decision.action:
        case Action.REVIEW:
            transition(ctx, session, request, RequestState.REVIEW, reason=decision.reason)
        case Action.ACKNOWLEDGE:
            # A question: told at once when it will be answered, then it waits for a person (requests answer).
            assert recipient is not None
            reply(ctx, session, request, "question_acknowledged", "reply", recipient,
                   ReplyContent(kinds=(request.kind,), due_at=request.due_at), verified=verified)
            transition(ctx, session, request, RequestState.REVIEW, reason=decision.reason)
        case Action.WAIT_FOR_SYSTEMS:
            # No reply yet: the person is answered once the systems have said whether they hold anything.
            transition(ctx, session, request, RequestState.CARRYING_OUT, reason=decision.reason)
        case Action.SUPPRESS:
            assert recipient is not None
            # Marketing off for the address whoever holds it later; a mailing tool may know it already.
            suppress(session, recipient, ctx.now)
            write_actions(ctx, session, request, [RequestKind.OPTOUT], recipient, {}, None,
                          only_kinds=frozenset({"http"}))
            reply(ctx, session, request, "optout_applied", "reply", recipient, ReplyContent(suppressed=True),
                  verified=verified)
            transition(ctx, session, request, RequestState.COMPLETED, outcome="suppressed", reason=decision.reason)
        case Action.UNKNOWN_SENDER:
            assert recipient is not None
            # A mailing tool may know people no other system knows: an opt-out reaches it all the same.
            optout = [kind for kind in request.intents if kind == RequestKind.OPTOUT]
            write_actions(ctx, session, request, optout, recipient, {}, None, only_kinds=frozenset({"http"}))
            reply(ctx, session, request, "unknown_sender", "reply", recipient, verified=verified)
            transition(ctx, session, request, RequestState.REJECTED, outcome="unknown_sender",
                        reason=decision.reason)
        case Action.NOT_UNDERSTOOD:
            assert recipient is not None
            intent = intent_of(request)
            reply(ctx, session, request, "update_not_understood", "reply", recipient,
                   ReplyContent(problems=tuple((p.field, p.code) for p in intent.problems)), verified=verified)
            transition(ctx, session, request, RequestState.REJECTED, outcome="update_not_understood",
                        reason=decision.reason)
        case Action.CLOSE_UNANSWERED:
            transition(ctx, session, request, RequestState.REJECTED, reason=decision.reason)
        case Action.AWAIT_OWNER:
            assert user is not None
            await_confirmation(ctx, session, request, user, OWNER)
        case Action.CARRY_OUT:
            assert user is not None
            after_owner(ctx, session, request, user, verified=verified)
        case _:
            assert_never(decision.action)
