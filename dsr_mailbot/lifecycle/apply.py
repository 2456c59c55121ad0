"""Carrying a decided request out: the handlers on the user, a challenge and its wait, completion and its reply."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session

from dsr_mailbot.intents.apply import Outcome, combined
from dsr_mailbot.intents.deadlines import erasure_due_at, held_erasure_due_at
from dsr_mailbot.intents.registry import Target, in_order, spec_for
from dsr_mailbot.lifecycle.base import (
    Context,
    due,
    intent_of,
    pending_intents,
    reply,
    someone_elses,
)
from dsr_mailbot.lifecycle.systems import HELD_REPLY, Finish, finish, hold, retry_failed, write_actions
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.holds import hold_of, move_hold
from dsr_mailbot.store.models import (
    Request,
    RequestKind,
    RequestState,
    User,
)
from dsr_mailbot.trust.tokens import NEW_ADDRESS, OWNER, make_token
from dsr_mailbot.trust.verify import Confirmation


def carry_out(ctx: Context, session: Session, request: Request, user: User,
               kinds: Sequence[str]) -> list[Outcome]:
    """Run the handlers of these intents on the user, in the registry's order."""
    target = Target(
        user=user, intent=intent_of(request), received_at=request.received_at, now=ctx.now,
        erasure_delay_days=ctx.config.policy.erasure_delay_days,
        email_taken=lambda email: someone_elses(session, email, user),
        hold=hold_of(session, user.email) if RequestKind.WITHDRAW in kinds else None,
        max_block_days=ctx.config.policy.max_block_days,
    )
    outcomes = [spec_for(kind).handle(target) for kind in in_order(kinds)]
    if user.id is not None:  # a stand-in for someone only the shop's systems know is never stored
        session.add(user)
    return outcomes


def _on_receipt_intents(request: Request) -> list[str]:
    """What a letter's confirmation does not wait for: the intents that never need one, when others do."""
    now = [kind for kind in request.intents if spec_for(kind).confirmation is Confirmation.NEVER]
    return now if len(now) < len(request.intents) else []


def carry_out_on_receipt(ctx: Context, session: Session, request: Request, user: User) -> None:
    """While the rest of a letter waits for confirmation, carry out at once what never needs one (an opt-out).

    Harmless if forged, and due on receipt by law; its handler runs again,
    changing nothing, when the rest is carried out.  The due date becomes
    that of what is left.
    """
    now = _on_receipt_intents(request)
    if not now:
        return
    email = user.email
    outcomes = carry_out(ctx, session, request, user, now)
    write_actions(ctx, session, request, now, email, {}, None)
    request.intent = {**request.intent, "on_receipt": now}
    request.due_at = due(ctx, request, pending_intents(request))
    record_event(session, "applied_on_receipt", request_id=request.id, subject_ref=request.subject_ref, at=ctx.now,
                 intents=now, changed=sorted({f for o in outcomes for f in o.changed_fields}))


def await_confirmation(ctx: Context, session: Session, request: Request, user: User, audience: str) -> None:
    """Send a challenge and wait for its reply."""
    assert request.id is not None
    expires = ctx.now + timedelta(days=ctx.config.trust.confirm_expiry_days)
    token = make_token(ctx.keyring, request.id, audience, expires)
    request.state = RequestState.AWAITING_CONFIRMATION
    request.awaiting = audience
    request.confirm_expires_at = token.expires_at
    intent = intent_of(request)
    if audience == OWNER:
        recipient = user.email
        template, purpose = "challenge", "challenge_o"
        content = ReplyContent(
            kinds=tuple(request.intents), changes=intent.changes, token=str(token), expires_at=token.expires_at,
            erasure_due_at=planned_erasure(ctx, session, request, user.email),
            understood={kind: phrase for kind, phrase in (request.intent or {}).get("from_words", {}).items()
                        if spec_for(kind).irreversible},
        )
    else:
        recipient = intent.changes["email"]
        template, purpose = "challenge_new_address", "challenge_n"
        content = ReplyContent(kinds=tuple(request.intents), token=str(token), expires_at=token.expires_at)
    # A challenge to the owner answers whatever came in their name; one to a new address follows a verified owner.
    reply(ctx, session, request, template, purpose, recipient, content,
           verified=audience == NEW_ADDRESS or request.authenticated)
    record_event(session, "confirmation_requested", request_id=request.id, subject_ref=request.subject_ref,
                 at=ctx.now, audience=audience)


def planned_erasure(ctx: Context, session: Session, request: Request, email: str) -> datetime:
    """When a withdrawal received now would have the data destroyed: later under a hold."""
    policy, held = ctx.config.policy, hold_of(session, email)
    if held is None:
        return erasure_due_at(request.received_at, policy.erasure_delay_days)
    return held_erasure_due_at(held.kind, held.until, request.received_at, policy.max_block_days)


def after_owner(ctx: Context, session: Session, request: Request, user: User, *, verified: bool) -> None:
    """The owner is verified (or ``verification = never`` believes them): confirm a new address, else finish."""
    intent = intent_of(request)
    new_email = intent.changes.get("email")
    if (RequestKind.UPDATE in request.intents and new_email and new_email != user.email
            and ctx.config.trust.verification != "never"):
        await_confirmation(ctx, session, request, user, NEW_ADDRESS)
        return
    complete(ctx, session, request, user, verified=verified)


def complete(ctx: Context, session: Session, request: Request, user: User, actor: str = "bot", *,
             verified: bool = True) -> None:
    """Apply what the request asked and queue one reply (and, for a new e-mail address, a notice to the old one).

    The data map's other systems get their actions (:mod:`~dsr_mailbot.lifecycle.systems`); when the reply
    must wait for them, the request waits in ``carrying_out`` and the reply goes out once they are done.
    """
    if HELD_REPLY in (request.intent or {}):
        # Carried out already, and a system failed: an operator's approval tries the failed actions again as they
        # were (the bot's own record is not changed twice), and the answer composed then goes once they are done.
        retry_failed(ctx, session, request, actor)
        return
    old_email = user.email
    kinds = [kind.value for kind in in_order(request.intents or [request.kind])]
    outcomes = carry_out(ctx, session, request, user, kinds)
    outcome = combined(outcomes)
    stored = user.id is not None
    done = Finish(
        template=outcome.template,
        content=ReplyContent(
            kinds=tuple(request.intents), parts=outcome.parts, changes=dict(outcome.changes),
            unchanged=outcome.unchanged_fields, problems=tuple((p.field, p.code) for p in outcome.problems),
            erasure_due_at=outcome.erasure_due_at,
            hold_ground=outcome.hold.ground if outcome.hold else "",
            hold_kind=outcome.hold.kind if outcome.hold else "",
            consent_source=outcome.consent_source if stored else "", consent_at=outcome.consent_at if stored else None,
            # A stand-in for someone only other systems know holds nothing of the bot's own to show.
            held=dict(outcome.held) if stored else {}, consents=dict(outcome.consents) if stored else {}),
        recipient=user.email, state=outcome.state, reason=outcome.reason, actor=actor, verified=verified,
        old_address=old_email if user.email != old_email else None,
        audit={"changed": list(outcome.changed_fields), "unchanged": list(outcome.unchanged_fields),
               "problems": [f"{p.field}:{p.code}" for p in outcome.problems]},
    )
    if user.email != old_email:
        move_hold(session, old_email, user.email)
    carried = [kind for kind, o in zip(kinds, outcomes, strict=True) if o.state is RequestState.COMPLETED]
    if write_actions(ctx, session, request, carried, old_email, _changes_for_systems(request, outcomes, kinds),
                     outcome.erasure_due_at):
        hold(ctx, session, request, done)
    else:
        finish(ctx, session, request, done)


def _changes_for_systems(request: Request, outcomes: Sequence[Outcome], kinds: Sequence[str]) -> dict[str, str]:
    """Every value the update accepted, changed in the bot's copy or not: another system may still differ."""
    if RequestKind.UPDATE not in kinds:
        return {}
    update = outcomes[list(kinds).index(RequestKind.UPDATE)]
    accepted = set(update.changed_fields) | set(update.unchanged_fields)
    return {name: value for name, value in intent_of(request).changes.items() if name in accepted}
