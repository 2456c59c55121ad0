"""The rule chain that decides a new request: read in order, the first match wins (plain values, no store)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dsr_mailbot.decisions import RULES, Action, Decision, Facts, decide

PLAIN = Facts(
    intents=("update",), replies_to_our_message=False, has_sender=True, sender_known=True, replies_today=0,
    daily_limit=5, names_another_user=False, conflicting_values=False, update_understood=True, authenticated=True,
    verification="auto", challenge_open=False, irreversible_from_words=False,
)


def test_an_authenticated_readable_request_from_a_known_user_is_carried_out() -> None:
    assert decide(PLAIN) == Decision(Action.CARRY_OUT)


@pytest.mark.parametrize(("change", "expected"), [
    ({"replies_to_our_message": True}, Decision(Action.REVIEW, "reply_to_our_message")),
    ({"has_sender": False, "sender_known": False}, Decision(Action.REVIEW, "no_single_from_address")),
    ({"replies_today": 5}, Decision(Action.REVIEW, "sender_daily_limit")),
    ({"intents": ("question",), "sender_known": False}, Decision(Action.ACKNOWLEDGE, "awaiting_answer")),
    ({"names_another_user": True}, Decision(Action.REVIEW, "names_another_user", on_receipt=True)),
    ({"sender_known": False}, Decision(Action.UNKNOWN_SENDER, "no_such_user")),
    # An opt-out is honoured from an address no one knows: on the suppression list, and answered.
    ({"intents": ("optout",), "sender_known": False}, Decision(Action.SUPPRESS, "not_on_file")),
    ({"intents": ("update", "optout"), "sender_known": False}, Decision(Action.UNKNOWN_SENDER, "no_such_user")),
    # Words about one's data without a marker: maybe a letter for the staff; a person decides, silently.
    ({"intents": ("question",), "unmarked": True}, Decision(Action.REVIEW, "possible_question")),
    # "We hold no data" only once every system was asked: one that could not be, and the decision waits for it.
    ({"sender_known": False, "lookup_incomplete": True}, Decision(Action.WAIT_FOR_SYSTEMS, "lookup_incomplete")),
    ({"lookup_incomplete": True}, Decision(Action.CARRY_OUT)),  # known anywhere, the person is known
    ({"conflicting_values": True}, Decision(Action.REVIEW, "conflicting_values", on_receipt=True)),
    ({"intents": ("update", "withdraw")},
     Decision(Action.REVIEW, "conflicting_intents: update_and_withdrawal", on_receipt=True)),
    ({"update_understood": False}, Decision(Action.NOT_UNDERSTOOD, "no_valid_field")),
    ({"authenticated": False}, Decision(Action.AWAIT_OWNER, on_receipt=True)),
    ({"authenticated": False, "challenge_open": True},
     Decision(Action.REVIEW, "challenge_already_open", on_receipt=True)),
    ({"intents": ("withdraw",), "authenticated": False, "challenge_open": True},
     Decision(Action.CLOSE_UNANSWERED, "challenge_already_open", on_receipt=True)),
    ({"intents": ("optout",), "authenticated": False, "challenge_open": True}, Decision(Action.CARRY_OUT)),
    ({"intents": ("access",)}, Decision(Action.AWAIT_OWNER, on_receipt=True)),  # it e-mails personal data
    ({"verification": "never", "authenticated": False}, Decision(Action.CARRY_OUT)),
    # A withdrawal only the words asked for waits for the owner's yes, authenticated or not, whatever the mode.
    ({"intents": ("optout", "withdraw"), "irreversible_from_words": True},
     Decision(Action.AWAIT_OWNER, on_receipt=True)),
    ({"intents": ("optout", "withdraw"), "irreversible_from_words": True, "verification": "never"},
     Decision(Action.AWAIT_OWNER, on_receipt=True)),
    ({"verification": "always"}, Decision(Action.AWAIT_OWNER, on_receipt=True)),
])
def test_each_rule_decides_what_it_names(change: dict[str, object], expected: Decision) -> None:
    assert decide(replace(PLAIN, **change)) == expected  # type: ignore[arg-type]


def test_the_order_is_the_policy() -> None:
    everything_wrong = replace(PLAIN, replies_to_our_message=True, has_sender=False, sender_known=False,
                               replies_today=99, names_another_user=True, conflicting_values=True)
    assert decide(everything_wrong).reason == "reply_to_our_message"  # a person talking to us comes first
    over_limit_question = replace(PLAIN, intents=("question",), replies_today=5)
    assert decide(over_limit_question).reason == "sender_daily_limit"  # not even an acknowledgement
    unknown_naming_a_user = replace(PLAIN, sender_known=False, names_another_user=True)
    assert decide(unknown_naming_a_user).action is Action.REVIEW  # a stranger naming a customer: a person looks
    waiting_question = replace(PLAIN, intents=("question",), sender_known=False, lookup_incomplete=True)
    assert decide(waiting_question).action is Action.ACKNOWLEDGE  # anyone may ask: no lookup to wait for
    # A stranger's opt-out waits for a system that could not be asked: it may know them, and then it is theirs.
    waiting_optout = replace(PLAIN, intents=("optout",), sender_known=False, lookup_incomplete=True)
    assert decide(waiting_optout).action is Action.WAIT_FOR_SYSTEMS
    unmarked_over_limit = replace(PLAIN, intents=("question",), unmarked=True, replies_today=5)
    assert decide(unmarked_over_limit).reason == "sender_daily_limit"
    assert len(RULES) == 13


def test_a_mixed_letter_needs_the_strictest_confirmation_of_its_intents() -> None:
    assert decide(replace(PLAIN, intents=("update", "optout"), authenticated=False)).action is Action.AWAIT_OWNER
    assert decide(replace(PLAIN, intents=("update", "optout", "access"))).action is Action.AWAIT_OWNER
    assert decide(replace(PLAIN, intents=("update", "optout"))).action is Action.CARRY_OUT
    mixed_not_understood = replace(PLAIN, intents=("update", "optout"), update_understood=False)
    assert decide(mixed_not_understood).action is Action.CARRY_OUT  # the reply says which part was not read
