"""Every intent, declared once: how sure of its sender it must be, how it is applied, which replies it sends.

Its subject markers are data (``reading/markers.toml``) and its legal
deadlines too (``intents/deadlines.toml``); the wiring
(:func:`dsr_mailbot.service.app.check_registry`) proves at start-up,
before any mail is touched, that every kind of request has a handler,
markers in every language, a deadline in every configured profile, and
templates that render in every language (every branch).  Dispatch is exhaustive: a
kind without a handler is a start-up error, never another intent's handler.

A letter carries a set of intents: its subject's, and those its own words
add (``[intent.body]`` markers).  The set is handled as one request:

- :data:`CONFLICTS` lists the sets that contradict each other; such a
  letter goes to review with the conflict as its reason;
- it needs the strictest confirmation of its intents
  (:func:`confirmation_of`); intents that never need one (an opt-out) are
  applied on receipt even while the rest waits, because they are harmless
  if forged and the law wants them at once — their handlers must therefore
  be idempotent, since they run again when the rest is applied;
- handlers run in the order of :data:`REGISTRY` (an update before an access
  answer, so the answer shows the new values), and one reply covers them all.

Adding an intent touches this table, its handler (``apply.py``), its
templates and the two data files; nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from dsr_mailbot.intents import apply
from dsr_mailbot.reading.extract import UpdateIntent
from dsr_mailbot.store.models import RequestKind, User
from dsr_mailbot.trust.verify import Confirmation


@dataclass(frozen=True)
class Target:
    """What a handler may use: the user to change, what was asked, and the facts of the request."""

    user: User
    intent: UpdateIntent
    received_at: datetime
    now: datetime
    erasure_delay_days: int
    email_taken: Callable[[str], bool]
    hold: apply.HoldFacts | None = None  # an operator's hold on the person's data
    max_block_days: int = 183


@dataclass(frozen=True)
class IntentSpec:
    kind: RequestKind
    confirmation: Confirmation
    handle: Callable[[Target], apply.Outcome]
    templates: tuple[str, ...]  # every reply template its outcome may use
    # Answered by a person, not applied: acknowledged at once, then waits in review (requests answer).
    answered_by_person: bool = False
    # Cannot be undone (a withdrawal ends in erasure): when only the letter's own words asked for it, not its
    # subject, the owner confirms by reply first, whatever authenticated the letter; the challenge quotes the phrase.
    irreversible: bool = False
    # What it asks of each system of the data map other than the builtin (systems/protocol.py's actions), in
    # order; a read-only system is only asked for access.  An erasure is due at the erasure date.
    in_systems: tuple[str, ...] = ()


# In the order their handlers run when a letter carries several.
REGISTRY: Mapping[RequestKind, IntentSpec] = {spec.kind: spec for spec in (
    IntentSpec(RequestKind.UPDATE, Confirmation.UNLESS_AUTHENTICATED,
               lambda t: apply.apply_update(t.user, t.intent, t.email_taken, t.now),
               ("update_applied", "update_not_understood", "email_changed_notice", "challenge_new_address"),
               in_systems=("update",)),
    IntentSpec(RequestKind.OPTOUT, Confirmation.NEVER,
               lambda t: apply.apply_optout(t.user, t.received_at, t.now),
               ("optout_applied",), in_systems=("optout",)),
    # It e-mails personal data: confirmed by reply from the address on file, whatever authenticated it.
    IntentSpec(RequestKind.ACCESS, Confirmation.ALWAYS, lambda t: apply.apply_access(t.user), ("access_answer",),
               in_systems=("access",)),
    IntentSpec(RequestKind.WITHDRAW, Confirmation.UNLESS_AUTHENTICATED,
               lambda t: apply.apply_withdrawal(t.user, t.received_at, t.erasure_delay_days, t.now, t.hold,
                                                t.max_block_days),
               ("withdrawal_applied", "withdrawal_blocked", "data_destroyed"), irreversible=True,
               in_systems=("withdraw", "erase")),
    # Anyone may ask, known or not; asking changes nothing, so nothing needs confirming.
    IntentSpec(RequestKind.QUESTION, Confirmation.NEVER, lambda t: apply.nothing_to_apply(),
               ("question_acknowledged", "question_answer"), answered_by_person=True),
)}
# Not intents: a reply to a challenge is handled by the confirmation loop (lifecycle.confirm).
NOT_INTENTS = frozenset({RequestKind.CONFIRM})
# Replies any request may get, whatever its intent; "several_applied" answers a letter with several intents,
# "deadline_extended" is the reasoned notice of 'requests extend'.
COMMON_TEMPLATES = ("unknown_sender", "challenge", "confirmation_expired", "request_rejected", "several_applied",
                    "deadline_extended")

# Sets of intents that contradict each other, read in order: the first one a letter holds is its review reason.
CONFLICTS: tuple[tuple[frozenset[RequestKind], str], ...] = (
    # The withdrawal destroys the very fields the update would set: which one did the person mean?
    (frozenset({RequestKind.UPDATE, RequestKind.WITHDRAW}), "update_and_withdrawal"),
)
_STRICTNESS = (Confirmation.NEVER, Confirmation.UNLESS_AUTHENTICATED, Confirmation.ALWAYS)


def in_order(kinds: Iterable[str]) -> tuple[RequestKind, ...]:
    """The intents of a letter, once each, in the order their handlers run."""
    wanted = {RequestKind(k) for k in kinds}
    return tuple(kind for kind in REGISTRY if kind in wanted)


def conflict_of(kinds: Iterable[str]) -> str | None:
    """Why these intents cannot be carried out together, or None."""
    held = {RequestKind(k) for k in kinds}
    return next((reason for conflicting, reason in CONFLICTS if conflicting <= held), None)


def confirmation_of(kinds: Iterable[str]) -> Confirmation:
    """The strictest confirmation any of the intents needs."""
    return max((REGISTRY[RequestKind(k)].confirmation for k in kinds), key=_STRICTNESS.index,
               default=Confirmation.NEVER)


def spec_for(kind: str) -> IntentSpec:
    """The intent's spec; every kind has one once :func:`check_registry` has passed."""
    return REGISTRY[RequestKind(kind)]
