"""What becomes of a new request: an ordered chain of rules over facts loaded beforehand (pure).

As in GNU Mailman's rules and chains, :func:`~dsr_mailbot.lifecycle.intake`
first loads every fact the decision needs — the user, the replies sent to
the address today, whether the letter names another user's address, whether
a challenge is already open — into :class:`Facts`, then :func:`decide` reads
:data:`RULES` in order and the first rule that matches decides.  No rule
touches the store, so each can be tested with plain values, and the order
is the policy: a reply to one of our messages goes to a person before
anything else is considered, a sender over the daily limit gets nothing,
and only a request that passes every check is carried out.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from dsr_mailbot.intents.registry import confirmation_of, conflict_of, spec_for
from dsr_mailbot.store.models import RequestKind
from dsr_mailbot.trust.verify import needs_owner_confirmation


class Action(enum.StrEnum):
    REVIEW = "review"  # a person decides; nothing is sent
    ACKNOWLEDGE = "acknowledge"  # a question: acknowledged, then it waits for a person's answer
    SUPPRESS = "suppress"  # an opt-out from an address no system knows: on the suppression list, and answered
    # No system that answered knows the address, and one could not be asked: the decision waits for it.
    WAIT_FOR_SYSTEMS = "wait_for_systems"
    UNKNOWN_SENDER = "unknown_sender"  # nothing is held for the address: say so, change nothing
    NOT_UNDERSTOOD = "not_understood"  # an update with no readable field: the reply offers the form
    CLOSE_UNANSWERED = "close_unanswered"  # the owner already holds a challenge that does the same
    AWAIT_OWNER = "await_owner"  # a challenge to the address on file
    CARRY_OUT = "carry_out"


@dataclass(frozen=True)
class Facts:
    """Everything the decision about a new request needs, loaded from the message and the store beforehand."""

    intents: tuple[str, ...]  # in the registry's order
    replies_to_our_message: bool
    has_sender: bool
    sender_known: bool
    replies_today: int
    daily_limit: int
    names_another_user: bool
    conflicting_values: bool
    update_understood: bool
    authenticated: bool
    verification: str  # [trust] verification
    # An irreversible intent (a withdrawal) that only the letter's own words asked for, not its subject.
    irreversible_from_words: bool
    challenge_open: bool  # the same user's request of the same kind already waits for the owner
    # A system of the data map could not be asked whether it holds the sender (down, or it refused).
    lookup_incomplete: bool = False
    unmarked: bool = False  # found by its own words, without a subject marker (reading/unmarked.py)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str | None = None
    # The letter waits for its owner: carry out at once what never needs confirming (an opt-out).
    on_receipt: bool = False


Rule = Callable[[Facts], Decision | None]


def _reply_to_ours(facts: Facts) -> Decision | None:
    return Decision(Action.REVIEW, "reply_to_our_message") if facts.replies_to_our_message else None


def _no_sender(facts: Facts) -> Decision | None:
    return None if facts.has_sender else Decision(Action.REVIEW, "no_single_from_address")


def _daily_limit(facts: Facts) -> Decision | None:
    return Decision(Action.REVIEW, "sender_daily_limit") if facts.replies_today >= facts.daily_limit else None


def _possible_question(facts: Facts) -> Decision | None:
    """Words about one's own data, without a marker: maybe a question, maybe a letter for the staff.  A person
    answers or dismisses it; nothing is sent meanwhile."""
    possible = facts.unmarked and RequestKind.QUESTION in facts.intents
    return Decision(Action.REVIEW, "possible_question") if possible else None


def _question(facts: Facts) -> Decision | None:
    answered_by_person = any(spec_for(kind).answered_by_person for kind in facts.intents)
    return Decision(Action.ACKNOWLEDGE, "awaiting_answer") if answered_by_person else None


def _names_another_user(facts: Facts) -> Decision | None:
    # A person decides the rest; an opt-out in the letter is harmless if forged and due at once: carried out now.
    return Decision(Action.REVIEW, "names_another_user", on_receipt=True) if facts.names_another_user else None


def _lookup_incomplete(facts: Facts) -> Decision | None:
    # "We hold no data" only once every system was asked; known anywhere, the person is known.
    return Decision(Action.WAIT_FOR_SYSTEMS, "lookup_incomplete") if (
        not facts.sender_known and facts.lookup_incomplete) else None


def _opt_out_not_on_file(facts: Facts) -> Decision | None:
    """An opt-out is honoured even from an address no system knows: it may reach us later (policy 4.1)."""
    only_optout = facts.intents == (RequestKind.OPTOUT,)
    return Decision(Action.SUPPRESS, "not_on_file") if only_optout and not facts.sender_known else None


def _unknown_sender(facts: Facts) -> Decision | None:
    return None if facts.sender_known else Decision(Action.UNKNOWN_SENDER, "no_such_user")


def _conflicting_values(facts: Facts) -> Decision | None:
    return Decision(Action.REVIEW, "conflicting_values", on_receipt=True) if facts.conflicting_values else None


def _conflicting_intents(facts: Facts) -> Decision | None:
    contradiction = conflict_of(facts.intents)
    return Decision(Action.REVIEW, f"conflicting_intents: {contradiction}", on_receipt=True) if contradiction else None


def _nothing_readable(facts: Facts) -> Decision | None:
    only_update = facts.intents == (RequestKind.UPDATE,)
    return Decision(Action.NOT_UNDERSTOOD, "no_valid_field") if only_update and not facts.update_understood else None


def _confirmation(facts: Facts) -> Decision | None:
    # Words can be misread ("I do not want to withdraw…"): what cannot be undone waits for the owner's yes.
    if not facts.irreversible_from_words and not needs_owner_confirmation(
            confirmation_of(facts.intents), facts.authenticated, facts.verification):
        return None
    if not facts.challenge_open:
        return Decision(Action.AWAIT_OWNER, on_receipt=True)
    if RequestKind.UPDATE in facts.intents:  # its fields may differ: the owner must confirm exactly what they saw
        return Decision(Action.REVIEW, "challenge_already_open", on_receipt=True)
    return Decision(Action.CLOSE_UNANSWERED, "challenge_already_open", on_receipt=True)


RULES: tuple[Rule, ...] = (
    _reply_to_ours,
    _no_sender,
    _daily_limit,
    _possible_question,
    _question,
    _names_another_user,
    _lookup_incomplete,
    _opt_out_not_on_file,
    _unknown_sender,
    _conflicting_values,
    _conflicting_intents,
    _nothing_readable,
    _confirmation,
)


def decide(facts: Facts) -> Decision:
    """The first rule that matches decides; a request that passes them all is carried out."""
    for rule in RULES:
        decision = rule(facts)
        if decision is not None:
            return decision
    return Decision(Action.CARRY_OUT)
