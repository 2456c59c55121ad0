"""Blocking instead of destruction (152-FZ Art. 21 ч.5–6, Art. 9 ч.2; KZ 94-V Art. 8 p.2), end to end.

An operator holds a person's data with ``users hold``: a withdrawal then stops marketing and every processing
the hold does not cover, tells the person the ground and the date, and the data are destroyed when the hold
says (a block at most six months after the withdrawal), with the act written then.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from dsr_mailbot.store.acts import read_act
from dsr_mailbot.store.models import utcnow
from tests.harness import Bot, mail

IVAN = "ivan.petrov@example.ru"
WITHDRAWAL = "Отзыв согласия на обработку персональных данных"


def answer_to(bot: Bot, address: str) -> str:
    return bot.reply_text([m for m in bot.replies() if m["To"] == address][-1])


def test_a_withdrawal_under_a_block_keeps_the_data_blocked_for_at_most_six_months(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233", surname="Петров", marketing_consent=True)
    held = bot.cli("users", "hold", IVAN.upper(), "--ground", "неисполненный заказ № 1042")
    assert held.returncode == 0 and "held (block)" in held.stdout, held.stderr

    bot.account.append(mail(IVAN, WITHDRAWAL, ""))
    bot.run()

    [withdrawal] = bot.requests()
    user = bot.user(IVAN)
    assert user is not None and not user.processing_consent and not user.marketing_consent
    assert user.erasure_due_at == withdrawal.received_at + timedelta(days=183)  # not the usual 30
    said = " ".join(answer_to(bot, IVAN).split())
    assert "неисполненный заказ № 1042" in said and "заблокированы" in said and "не позднее" in said
    listed = bot.cli("users", "holds", "--format", "json")
    assert '"kind": "block"' in listed.stdout and '"erasure_due": "' in listed.stdout

    bot.account.append(mail(IVAN, WITHDRAWAL, "Ещё раз: отзываю согласие."))  # a second withdrawal, later
    bot.run(now=utcnow() + timedelta(days=20))
    user = bot.user(IVAN)
    assert user is not None and user.erasure_due_at == withdrawal.received_at + timedelta(days=183)  # no new term
    bot.run(now=utcnow() + timedelta(days=31))  # past the usual term: kept, blocked
    assert bot.user(IVAN) is not None and read_act(bot.config.policy.acts_dir, str(withdrawal.id)) is None

    bot.run(now=utcnow() + timedelta(days=184))
    assert bot.user(IVAN) is None
    latest = [r for r in bot.requests() if r.kind == "withdraw"][-1]
    assert read_act(bot.config.policy.acts_dir, str(latest.id)) is not None  # the act, when destroyed
    assert bot.cli("users", "holds").stdout.strip() == "0 hold(s)"  # the hold named him: it went with him


def test_a_retain_hold_keeps_the_data_on_its_ground_until_its_end_and_answers_in_the_letters_language(
        bot: Bot) -> None:
    bot.add_user(IVAN, phone="+77011112233")
    refused = bot.cli("users", "hold", IVAN, "--kind", "retain", "--ground", "бухгалтерский учёт")
    assert refused.returncode == 64 and "--until" in refused.stderr
    until = (utcnow() + timedelta(days=400)).date()
    assert bot.cli("users", "hold", IVAN, "--kind", "retain", "--ground", "accounting records (Art. 29)",
                   "--until", until.isoformat()).returncode == 0

    bot.account.append(mail(IVAN, "Withdrawal of consent to the processing of personal data", ""))
    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.erasure_due_at is not None
    assert user.erasure_due_at.astimezone(UTC).date() == until  # no cap: the ground's end (23:59 in Almaty)
    said = " ".join(answer_to(bot, IVAN).split())
    assert "accounting records (Art. 29)" in said and "Art. 9 ч.2" in said


def test_a_hold_placed_after_the_withdrawal_moves_its_erasure_and_a_release_makes_it_due_now(bot: Bot) -> None:
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(mail(IVAN, WITHDRAWAL, ""))
    bot.run()
    [withdrawal] = bot.requests()
    usual = withdrawal.received_at + timedelta(days=30)
    user = bot.user(IVAN)
    assert user is not None and user.erasure_due_at == usual

    until = (utcnow() + timedelta(days=60)).date().isoformat()
    moved = bot.cli("users", "hold", IVAN, "--ground", "спор по заказу", "--until", until)
    assert moved.returncode == 0 and "erasure moved to" in moved.stdout
    user = bot.user(IVAN)
    assert user is not None and user.erasure_due_at is not None and user.erasure_due_at > usual
    bot.run(now=utcnow() + timedelta(days=31))
    assert bot.user(IVAN) is not None

    released = bot.cli("users", "release", IVAN)
    assert released.returncode == 0
    bot.run(now=utcnow() + timedelta(days=31))
    assert bot.user(IVAN) is None
    events = [e.event for e in bot.events()]
    assert "hold_placed" in events and "hold_released" in events
    assert bot.cli("users", "release", IVAN).returncode == 64  # nothing held any more


def test_a_hold_follows_the_address_change_and_an_ended_hold_of_someone_who_never_withdrew_goes(bot: Bot) -> None:
    bot.add_user(IVAN, phone="+77011112233")
    until = (utcnow() + timedelta(days=10)).date().isoformat()
    assert bot.cli("users", "hold", IVAN, "--ground", "заказ", "--until", until).returncode == 0
    bot.account.append(mail(IVAN, "Обновление персональных данных", "E-mail: ivan.new@example.ru"))
    bot.run()
    [held] = json.loads(bot.cli("users", "holds", "--format", "json").stdout)
    assert held["address"] == "ivan.new@example.ru"
    bot.run(now=utcnow() + timedelta(days=12))  # ended, and he never withdrew: nothing left to hold
    assert json.loads(bot.cli("users", "holds", "--format", "json").stdout) == []


def test_the_block_cannot_outlast_six_months_even_with_a_later_end() -> None:
    from dsr_mailbot.intents.deadlines import held_erasure_due_at

    received = datetime(2026, 12, 1, tzinfo=UTC)
    late = received + timedelta(days=400)
    assert held_erasure_due_at("block", late, received, 183) == received + timedelta(days=183)
    assert held_erasure_due_at("block", received + timedelta(days=10), received, 183) == received + timedelta(days=10)
    assert held_erasure_due_at("retain", late, received, 183) == late
