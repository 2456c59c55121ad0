"""Carrying out a verified request on a user record (no database needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dsr_mailbot.intents.apply import apply_access, apply_optout, apply_update, apply_withdrawal, combined
from dsr_mailbot.reading.extract import Problem, UpdateIntent
from dsr_mailbot.store.models import RequestState, User

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def user(**fields: Any) -> User:
    return User(**{"id": 1, "email": "a@example.kz", "marketing_consent": True, **fields})


def never_taken(_email: str) -> bool:
    return False


def test_update_sets_changed_fields_and_reports_unchanged_ones() -> None:
    record = user(phone="+77011112233", surname="Ким")
    outcome = apply_update(record, UpdateIntent({"phone": "+77017654321", "surname": "Ким"}, ()), never_taken, NOW)
    assert record.phone == "+77017654321" and record.updated_at == NOW
    assert outcome.state is RequestState.COMPLETED and outcome.template == "update_applied"
    assert outcome.changed_fields == ("phone",) and outcome.unchanged_fields == ("surname",)
    assert outcome.changes == {"phone": "+77017654321"}


def test_update_with_nothing_understood_changes_nothing() -> None:
    record = user(phone="+77011112233")
    outcome = apply_update(record, UpdateIntent({}, (Problem("phone", "invalid"),)), never_taken, NOW)
    assert record.phone == "+77011112233"
    assert outcome.state is RequestState.REJECTED and outcome.template == "update_not_understood"
    assert outcome.problems == (Problem("phone", "invalid"),)


def test_an_address_that_belongs_to_someone_else_is_not_taken() -> None:
    record = user()
    outcome = apply_update(record, UpdateIntent({"email": "b@example.kz"}, ()), lambda _e: True, NOW)
    assert record.email == "a@example.kz"
    assert outcome.state is RequestState.REJECTED
    assert outcome.problems == (Problem("email", "unavailable"),)


def test_withdrawal_stops_processing_and_marketing_and_schedules_erasure() -> None:
    record = user()
    received = NOW - timedelta(hours=2)
    outcome = apply_withdrawal(record, received, 30, NOW)
    assert not record.processing_consent and not record.marketing_consent
    assert record.consent_withdrawn_at == received
    assert record.erasure_due_at == received + timedelta(days=30)
    assert outcome.template == "withdrawal_applied" and outcome.erasure_due_at == record.erasure_due_at


def test_a_repeated_withdrawal_keeps_the_earlier_erasure_date() -> None:
    record = user()
    apply_withdrawal(record, NOW, 30, NOW)
    first = record.erasure_due_at
    outcome = apply_withdrawal(record, NOW + timedelta(days=5), 30, NOW)
    assert record.erasure_due_at == first
    assert outcome.changed_fields == ()


def test_optout_turns_marketing_off_only() -> None:
    record = user()
    outcome = apply_optout(record, NOW, NOW)
    assert not record.marketing_consent and record.processing_consent
    assert record.marketing_opted_out_at == NOW
    assert outcome.changed_fields == ("marketing_consent",)
    assert apply_optout(record, NOW, NOW).changed_fields == ()


def test_several_outcomes_make_one_reply_with_a_part_each() -> None:
    record = user(phone="+77011112233")
    outcomes = [apply_update(record, UpdateIntent({"phone": "+77019998877"}, (Problem("email", "invalid"),)),
                             never_taken, NOW),
                apply_optout(record, NOW, NOW), apply_access(record)]

    outcome = combined(outcomes)

    assert (outcome.state, outcome.template) == (RequestState.COMPLETED, "several_applied")
    assert outcome.parts == ("update_applied", "optout_applied", "access_answer")
    assert outcome.changes == {"phone": "+77019998877"} and outcome.held["phone"] == "+77019998877"
    assert outcome.changed_fields == ("phone", "marketing_consent")
    assert outcome.problems == (Problem("email", "invalid"),)
    assert combined(outcomes[:1]) is outcomes[0]


def test_a_letter_is_completed_when_any_of_its_intents_was_carried_out() -> None:
    record = user()
    not_understood = apply_update(record, UpdateIntent({}, (Problem("phone", "invalid"),)), never_taken, NOW)
    outcome = combined([not_understood, apply_optout(record, NOW, NOW)])
    assert outcome.state is RequestState.COMPLETED and outcome.parts == ("update_not_understood", "optout_applied")
    assert combined([not_understood, not_understood]).state is RequestState.REJECTED
