"""`requests extend`: a deadline moves once, where the law allows it, and the person gets the reasoned notice.

152-FZ Art. 14 ч.3 allows 5 more working days for an access request or a
question; GDPR Art. 12(3) two more months.  Under the default profiles the
KZ figure allows none and is the stricter, so nothing may move.
"""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from dsr_mailbot.intents.deadlines import due_at
from dsr_mailbot.replies.reply import format_date
from dsr_mailbot.store.models import Request, utcnow
from tests.harness import TRUST, Bot, mail, message_id_of, via_mx

IVAN = "ivan.petrov@example.ru"
REASON = "Сведения хранятся в архиве, их подготовка займёт больше времени."


def test_a_question_under_152_fz_gets_five_more_working_days_once_with_a_notice(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(extra='deadline_profile = "ru-152fz"')
    bot.add_user(IVAN)
    question = mail(IVAN, "Вопрос об обработке персональных данных", "Кому вы передаёте мой телефон?")
    bot.account.append(question)
    bot.run()
    [request] = bot.requests()
    assert request.due_at == due_at("question", request.received_at, ["ru-152fz"])

    extended = bot.cli("requests", "extend", str(request.id), "--reason", REASON)

    assert extended.returncode == 0, extended.stderr
    new_due = due_at("question", request.received_at, ["ru-152fz"], extended=True)
    assert new_due > request.due_at and new_due.isoformat()[:10] != request.due_at.isoformat()[:10]
    [moved] = bot.requests()
    assert (moved.state, moved.due_at) == ("review", new_due)  # still waiting for its answer
    notice = bot.replies()[-1]
    assert notice["To"] == IVAN and notice["In-Reply-To"] == message_id_of(question)
    text = bot.reply_text(notice)
    day = format_date(new_due.astimezone(ZoneInfo(bot.config.policy.timezone)), "ru")
    assert REASON in text and f"ответим до {day}" in text
    [event] = [e for e in bot.events() if e.event == "deadline_extended"]
    assert event.actor.startswith("cli:") and event.detail["due_at"] == new_due.isoformat()
    assert REASON not in str(event.detail)  # the reason goes to the person, not into the audit trail

    again = bot.cli("requests", "extend", str(request.id), "--reason", REASON)
    assert again.returncode != 0 and "once" in again.stderr
    assert bot.requests()[0].due_at == new_due and len(bot.replies()) == 2


def test_the_default_profiles_allow_no_extension_because_the_kz_figure_is_stricter(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN)
    bot.account.append(mail(IVAN, "Question about personal data", "How long do you keep my phone?"))
    bot.run()
    [request] = bot.requests()

    refused = bot.cli("requests", "extend", str(request.id), "--reason", "More time needed.")

    assert refused.returncode != 0 and "allow no extension for question" in refused.stderr
    assert bot.requests()[0].due_at == request.due_at and len(bot.replies()) == 1  # the acknowledgement only


def test_gdpr_allows_two_more_months_for_an_access_request(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(trust=TRUST, extra='deadline_profile = "gdpr"')
    bot.add_user(IVAN)
    bot.account.append(via_mx(mail(IVAN, "Request for personal data")))
    bot.run()
    [request] = bot.requests()
    assert request.state == "awaiting_confirmation"

    assert bot.cli("requests", "extend", str(request.id), "--reason", "Many requests at once.").returncode == 0

    moved = bot.requests()[0]
    assert moved.due_at == due_at("access", request.received_at, ["gdpr"], extended=True)
    assert (moved.due_at - request.due_at).days >= 59  # one month became three
    assert "Many requests at once." in bot.reply_text(bot.replies()[-1])


def test_a_closed_request_or_an_immediate_deadline_cannot_be_extended(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(trust=TRUST, extra='deadline_profile = "ru-152fz"')
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(mail(IVAN, "Unsubscribe"))
    bot.account.append(via_mx(mail(IVAN, "Отзыв согласия на обработку персональных данных")))  # forged: waits
    bot.run()
    optout, withdrawal = bot.requests()
    assert (optout.state, withdrawal.state) == ("completed", "awaiting_confirmation")

    closed = bot.cli("requests", "extend", str(optout.id), "--reason", "x")
    immediate = bot.cli("requests", "extend", str(withdrawal.id), "--reason", "x")

    assert closed.returncode != 0 and "only open requests" in closed.stderr
    assert immediate.returncode != 0 and "allow no extension for withdraw" in immediate.stderr


def test_a_deadline_already_missed_cannot_be_extended_after_the_fact(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(extra='deadline_profile = "ru-152fz"')
    bot.add_user(IVAN)
    bot.account.append(mail(IVAN, "Вопрос об обработке персональных данных", "Кому вы передаёте мой телефон?"))
    bot.run()
    [request] = bot.requests()
    with bot.store.transaction() as session:  # ten working days went by unanswered
        late = session.get(Request, request.id)
        assert late is not None
        late.due_at = utcnow() - timedelta(hours=1)
        session.add(late)

    refused = bot.cli("requests", "extend", str(request.id), "--reason", REASON)

    assert refused.returncode != 0 and "has passed; the law allows an extension only before it" in refused.stderr
    [still] = bot.requests()
    assert still.due_at < utcnow() and len(bot.replies()) == 1  # the acknowledgement only: no notice was sent
