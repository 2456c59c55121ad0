"""A letter carries a set of intents, end to end on SQLite and PostgreSQL.

The subject decides whether a message is a request at all; phrases in the
person's own words (never in quoted text) add further intents.  Every intent
is verified and carried out, and one reply covers them all.  Contradictory
intents go to review; what never needs confirmation (an opt-out) is carried
out on receipt even while the rest waits for the owner's reply.
"""

from __future__ import annotations

import json
from email.message import EmailMessage

import pytest

from dsr_mailbot.intents.deadlines import due_at
from tests.harness import TRUST, Bot, authenticated, mail, via_mx

IVAN = "ivan.petrov@example.ru"


def final_replies(bot: Bot, address: str) -> list[EmailMessage]:
    return [m for m in bot.replies() if m["To"] == address and "[DSR-" not in str(m["Subject"])]


@pytest.mark.parametrize(("subject", "body", "language", "phone_line", "optout_line"), [
    ("Обновление персональных данных", "Телефон: 8 701 999 88 77\n\nИ прошу больше не присылать рекламу.",
     "ru", "Телефон: +77019998877", "больше не будем"),
    ("Дербес деректерді жаңарту", "Телефон: 8 701 999 88 77\n\nМаған жарнама жібермеңіз.",
     "kk", "Телефон: +77019998877", "бұдан былай жібермейміз"),
    ("Personal data update", "Phone: 8 701 999 88 77\n\nAlso stop sending me advertising, please.",
     "en", "Phone: +77019998877", "will not send you any more"),
])
def test_an_update_with_an_optout_in_its_words_gets_both_applied_and_one_reply(
    bot_any_db: Bot, subject: str, body: str, language: str, phone_line: str, optout_line: str
) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    bot.account.append(authenticated(mail(IVAN, subject, body)))

    bot.run()

    [request] = bot.requests()
    assert (request.kind, request.intents, request.state, request.language) == (
        "update", ["update", "optout"], "completed", language)
    user = bot.user(IVAN)
    assert user is not None and (user.phone, user.marketing_consent) == ("+77019998877", False)
    [reply] = final_replies(bot, IVAN)
    assert len(bot.smtp.messages) == 1
    text = bot.reply_text(reply)
    assert phone_line in text and optout_line in text
    assert f"{request.id}" in str(reply["Subject"])

    listed = json.loads(bot.cli("requests", "list", "--format", "json").stdout)
    assert [(r["kind"], r["intents"]) for r in listed] == [("update", ["update", "optout"])]


def test_phrases_in_quoted_text_or_after_a_negation_add_nothing(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    body = ("Телефон: 8 701 999 88 77\nЯ не отзываю согласие.\n\n"
            "> Отпишите меня, пожалуйста\n> и не присылайте рекламу\n")
    bot.account.append(authenticated(mail(IVAN, "Обновление персональных данных", body)))

    bot.run()

    [request] = bot.requests()
    assert (request.intents, request.state) == (["update"], "completed")
    user = bot.user(IVAN)
    assert user is not None and user.marketing_consent and user.processing_consent


def test_an_update_inside_a_withdrawal_is_a_contradiction_for_a_person(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    bot.account.append(authenticated(mail(
        IVAN, "Отзыв согласия на обработку персональных данных",
        "Прошу изменить телефон на 8 701 999 88 77.\nТелефон: 8 701 999 88 77")))

    bot.run()

    [request] = bot.requests()
    assert (request.kind, request.intents) == ("withdraw", ["update", "withdraw"])
    assert (request.state, request.reason) == ("review", "conflicting_intents: update_and_withdrawal")
    assert bot.smtp.messages == []
    user = bot.user(IVAN)
    assert user is not None and (user.phone, user.processing_consent) == ("+77011112233", True)


def test_a_withdrawal_naming_the_persons_own_phone_is_only_a_withdrawal(bot_any_db: Bot) -> None:
    """People identify themselves with their data; without an update phrase that is not an update."""
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(authenticated(mail(
        IVAN, "Отзыв согласия на обработку персональных данных", "Петров Иван\nТелефон: 8 701 111 22 33")))

    bot.run()

    [request] = bot.requests()
    assert (request.intents, request.state) == (["withdraw"], "completed")


def test_an_unconfirmed_letter_opts_out_at_once_and_answers_everything_after_confirmation(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(trust=TRUST)
    bot.add_user(IVAN, phone="+77011112233", surname="Петров", marketing_consent=True)
    bot.account.append(via_mx(mail(IVAN, "Запрос персональных данных",
                                   "Мой новый телефон: 8 701 999 88 77\nИ отпишите меня от рассылки.")))

    bot.run()

    [request] = bot.requests()
    assert (request.kind, request.intents, request.state) == (
        "access", ["update", "optout", "access"], "awaiting_confirmation")
    user = bot.user(IVAN)
    assert user is not None and user.marketing_consent is False  # at once: harmless if forged, due on receipt
    assert user.phone == "+77011112233"  # the rest waits for the owner
    assert request.due_at > request.received_at  # what is left is due later; the opt-out was done on time
    [challenge] = bot.replies()
    text = bot.reply_text(challenge)
    assert "+77019998877" in text and "уже сделано" in text and "храним" in text
    assert "applied_on_receipt" in [e.event for e in bot.events()]

    mid = str(challenge["Message-ID"])
    bot.account.append(via_mx(mail(IVAN, f"Re: {challenge['Subject']}", "Да",
                                   headers={"In-Reply-To": mid, "References": mid})))
    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77019998877"
    [answer] = final_replies(bot, IVAN)  # one reply for the update, the opt-out and the access answer
    text = bot.reply_text(answer)
    assert "Телефон: +77019998877" in text  # the access part shows the data as updated
    assert "Петров" in text and "больше не будем" in text
    assert [r.state for r in bot.requests()] == ["completed", "completed"]


def test_a_forged_mixed_letter_changes_only_what_needs_no_confirmation(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(trust=TRUST)
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    bot.account.append(via_mx(mail(IVAN, "Personal data update",
                                   "Phone: 8 701 999 88 77\nUnsubscribe me.")))  # forged: not authenticated
    bot.run()
    [challenge] = bot.replies()
    mid = str(challenge["Message-ID"])
    bot.account.append(via_mx(mail("attacker@evil.example", f"Re: {challenge['Subject']}", "Yes",
                                   headers={"In-Reply-To": mid, "References": mid})))
    bot.run()

    user = bot.user(IVAN)
    assert user is not None and (user.phone, user.marketing_consent) == ("+77011112233", False)
    assert all(m.rcpt_tos == [IVAN] for m in bot.smtp.messages) and len(bot.smtp.messages) == 1
    assert bot.requests()[0].state == "review"


def test_an_optout_in_a_letter_that_goes_to_review_is_carried_out_at_once(bot_any_db: Bot) -> None:
    """The opt-out is due at once and harmless if forged: it does not wait for the person who reviews the rest."""
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    body = "Телефон: 8 701 999 88 77\nТелефон: 8 701 111 22 33\n\nИ прошу больше не присылать рекламу."
    bot.account.append(authenticated(mail(IVAN, "Обновление персональных данных", body)))

    bot.run()

    [request] = bot.requests()
    assert (request.intents, request.state, request.reason) == (["update", "optout"], "review", "conflicting_values")
    user = bot.user(IVAN)
    assert user is not None and not user.marketing_consent and user.phone == "+77011112233"
    assert request.due_at == due_at("update", request.received_at)  # what is left is the update
    assert request.due_at > request.received_at  # not overdue the moment it arrived
    assert "applied_on_receipt" in [e.event for e in bot.events()]
