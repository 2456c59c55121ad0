"""Operator decisions (service/review.py): one path for the CLI and the console, and audited reveals."""

from __future__ import annotations

import pytest

from dsr_mailbot.lifecycle import DecisionError
from dsr_mailbot.service.app import build_services
from dsr_mailbot.service.locks import run_lock_for
from dsr_mailbot.service.review import (
    REVEALABLE,
    Answer,
    Approve,
    Extend,
    Reject,
    UnknownRequest,
    decide_request,
    reveal_field,
)
from tests.harness import CONFLICTING_PHONES, Bot, mail, request_in_review

IVAN = "ivan.petrov@example.ru"
UPDATE = "Personal data update"


def _in_review(bot: Bot, body: str = CONFLICTING_PHONES) -> int:
    bot.add_user(IVAN, phone="+77010000000", surname="Петров")
    return request_in_review(bot, IVAN, UPDATE, body)


def _waiting_for_confirmation(bot: Bot) -> int:
    bot.write_config(trust='verification = "always"')
    bot.add_user(IVAN, surname="Петров")
    bot.account.append(mail(IVAN, UPDATE, "Фамилия: Сидоров"))
    bot.run()
    [request] = bot.requests()
    assert request.state == "awaiting_confirmation" and request.id is not None
    return request.id


def test_approving_applies_answers_and_names_the_operator_as_actor(bot_any_db: Bot) -> None:
    bot = bot_any_db
    request_id = _waiting_for_confirmation(bot)
    services = build_services(bot.config)
    replies_before = len(bot.smtp.messages)

    done = decide_request(services, request_id, Approve(), "web:aigerim")

    assert (done.state, done.sent, done.queued_because) == ("completed", 1, None)
    assert len(bot.smtp.messages) == replies_before + 1
    user = bot.user(IVAN)
    assert user is not None and user.surname == "Сидоров"
    completed = [e for e in bot.events() if e.event == "request_completed"]
    assert [e.actor for e in completed] == ["web:aigerim"]


def test_rejecting_tells_the_person_the_reason_and_changes_nothing(bot_any_db: Bot) -> None:
    bot = bot_any_db
    request_id = _in_review(bot)
    services = build_services(bot.config)

    done = decide_request(services, request_id, Reject("Укажите один номер телефона."), "web:aigerim")

    assert (done.state, done.outcome, done.sent) == ("rejected", "request_rejected", 1)
    assert "Укажите один номер телефона." in bot.reply_text(bot.replies()[-1])
    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77010000000"


@pytest.mark.parametrize("action", [Reject("  "), Answer(""), Extend("\n")])
def test_a_decision_without_its_text_is_refused_and_changes_nothing(bot: Bot, action: Reject | Answer | Extend) -> None:
    request_id = _in_review(bot)
    services = build_services(bot.config)
    with pytest.raises(DecisionError):
        decide_request(services, request_id, action, "web:aigerim")
    [request] = bot.requests()
    assert request.state == "review"
    assert not [e for e in bot.events() if e.actor == "web:aigerim"]


def test_an_unknown_request_is_named(bot: Bot) -> None:
    services = build_services(bot.config)
    with pytest.raises(UnknownRequest, match="no request 999"):
        decide_request(services, 999, Approve(), "web:aigerim")


def test_on_sqlite_a_running_daemon_sends_the_reply_and_the_decision_says_so(bot: Bot) -> None:
    request_id = _in_review(bot)
    services = build_services(bot.config)
    daemon_lock = run_lock_for(bot.store, bot.config.source_name)
    assert daemon_lock.try_acquire()
    try:
        sent_before = len(bot.smtp.messages)
        done = decide_request(services, request_id, Reject("Нет."), "web:aigerim")
    finally:
        daemon_lock.release()
    assert (done.state, done.sent) == ("rejected", 0)
    assert done.queued_because and not done.smtp_unavailable
    assert len(bot.smtp.messages) == sent_before
    assert [m.state for m in bot.outbox()][-1] == "queued"  # the daemon's next outbox run sends it


def test_revealing_a_field_returns_it_and_audits_who_and_which_field_never_the_value(bot_any_db: Bot) -> None:
    bot = bot_any_db
    request_id = _in_review(bot)
    services = build_services(bot.config)

    sender = reveal_field(services, request_id, "sender", "web:aigerim")
    phone = reveal_field(services, request_id, "user.phone", "web:aigerim")

    assert (sender, phone) == (IVAN, "+77010000000")
    revealed = [e for e in bot.events() if e.event == "field_revealed"]
    assert [(e.actor, e.request_id, e.detail) for e in revealed] == [
        ("web:aigerim", request_id, {"field": "sender"}), ("web:aigerim", request_id, {"field": "user.phone"})]
    assert all(IVAN not in str(e.detail) and "7010000000" not in str(e.detail) for e in bot.events())
    with pytest.raises(KeyError):
        reveal_field(services, request_id, "password_hash", "web:aigerim")


def test_every_revealable_field_reads_a_request_and_its_user(bot: Bot) -> None:
    request_id = _in_review(bot, "Фамилия: Сидоров\nИмя: Иван\nТелефон: +7 701 111 22 33\nТелефон: +7 701 999 88 77")
    with bot.store.transaction() as session:
        from dsr_mailbot.store.models import Request, User

        request = session.get(Request, request_id)
        assert request is not None and request.user_id is not None
        user = session.get(User, request.user_id)
        values = {name: read(request, user) for name, read in REVEALABLE.items()}
    assert values["asked.surname"] == "Сидоров" and values["asked.first_name"] == "Иван"
    assert values["user.email"] == IVAN and values["user.surname"] == "Петров"
    assert values["letter"] is not None and "Сидоров" in values["letter"]
    assert values["asked.phone"] is None  # the two numbers conflict: none is asked for
    assert values["subject"] == UPDATE and values["owner_reply"] is None


def test_an_unclear_reply_to_a_challenge_is_revealed_to_the_reviewer_and_audited(bot_any_db: Bot) -> None:
    bot = bot_any_db
    request_id = _waiting_for_confirmation(bot)
    [challenge] = bot.replies()
    mid = str(challenge["Message-ID"])
    bot.account.append(mail(IVAN, f"Re: {challenge['Subject']}", "А имя тоже поменяйте: Пётр",
                            headers={"In-Reply-To": mid, "References": mid}))
    bot.run()
    services = build_services(bot.config)

    words = reveal_field(services, request_id, "owner_reply", "web:aigerim")

    assert words == "А имя тоже поменяйте: Пётр"
    [revealed] = [e for e in bot.events() if e.event == "field_revealed"]
    assert revealed.detail == {"field": "owner_reply"} and "Пётр" not in str(revealed.detail)
    assert decide_request(services, request_id, Reject("Пришлите, пожалуйста, новое письмо."), "web:aigerim"
                          ).state == "rejected"
    user = bot.user(IVAN)
    assert user is not None and user.surname == "Петров"
