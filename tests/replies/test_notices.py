"""Policy-change notices (policy 7.2): every user who has not withdrawn consent, exactly once per campaign."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes
from email.policy import default

from dsr_mailbot.replies.notices import (
    legacy_notice_message_id,
    notice_message_id,
    purpose_of,
    queue_notices,
    recipients,
)
from dsr_mailbot.replies.send import drain_outbox
from dsr_mailbot.service.app import build_services
from dsr_mailbot.store.models import OutboxMessage, OutboxState, User, utcnow
from tests.harness import TRUST, Bot, authenticated, mail

WITHDRAWN = "gone@example.kz"


def with_throttle(bot: Bot, per_minute: int) -> None:
    text = bot.config_path.read_text(encoding="utf-8")
    bot.config_path.write_text(text.replace('from_address = "support@smarthings.kz"',
                                            f'from_address = "support@smarthings.kz"\nmax_per_minute = {per_minute}'),
                               encoding="utf-8")


def customers(bot: Bot, count: int) -> list[str]:
    addresses = [f"customer{n}@example.kz" for n in range(count)]
    for n, address in enumerate(addresses):
        bot.add_user(address, marketing_consent=n % 2 == 0)  # a legal notice: the marketing flag does not matter
    bot.add_user(WITHDRAWN, processing_consent=False)
    return addresses


def test_a_dry_run_counts_who_would_receive_it_and_sends_nothing(bot_any_db: Bot) -> None:
    bot = bot_any_db
    customers(bot, 3)

    dry = bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11", "--dry-run")

    assert dry.returncode == 0, dry.stderr
    assert "3 user(s) would receive policy-change" in dry.stdout and "nothing sent" in dry.stdout
    assert bot.outbox() == [] and bot.smtp.messages == []


def test_a_campaign_killed_halfway_and_run_again_reaches_each_user_exactly_once(bot_any_db: Bot) -> None:
    bot = bot_any_db
    with_throttle(bot, 6000)
    addresses = customers(bot, 20)
    bot.account.append(mail(addresses[3], "Жазылымнан бас тарту"))  # a Kazakh request: the notice is in Kazakh
    bot.run()
    replies_before = len(bot.smtp.messages)

    killed = bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11",
                     env={"DSR_MAILBOT_TEST_CRASH_AT": "after_send_commit#7"})
    assert killed.returncode == -9
    assert len(bot.smtp.messages) - replies_before == 7  # halfway: 7 of 20 sent, the rest queued

    again = bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11")
    assert again.returncode == 0, again.stderr
    once_more = bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11")
    assert once_more.returncode == 0 and "0 queued now" in once_more.stdout

    notices = [m for m in bot.smtp.messages[replies_before:]]
    assert Counter(r for m in notices for r in m.rcpt_tos) == Counter(addresses)  # each exactly once, none to WITHDRAWN
    subjects = {m.rcpt_tos[0]: str(message_from_bytes(m.data, policy=default)["Subject"]) for m in notices}
    assert subjects[addresses[3]] == "Құпиялылық саясатымыз өзгерді"
    assert subjects[addresses[0]] == "Наша политика конфиденциальности изменилась"  # default_language = ru
    assert all(m.data.count(b"Auto-Submitted: auto-generated") == 1 for m in notices)

    other = bot.cli("notify", "--template", "policy-change", "--campaign", "2027-01", "--dry-run")
    assert "20 user(s) would receive" in other.stdout and "0 already have it" in other.stdout


def test_a_campaign_killed_after_queueing_sends_everything_once_when_run_again(bot_any_db: Bot) -> None:
    bot = bot_any_db
    addresses = customers(bot, 4)

    killed = bot.cli("notify", "--template", "policy-change", "--campaign", "c2",
                     env={"DSR_MAILBOT_TEST_CRASH_AT": "after_notice_batch"})
    assert killed.returncode == -9 and bot.smtp.messages == []
    assert len(bot.outbox()) == 4  # the batch was committed before the kill

    assert bot.cli("notify", "--template", "policy-change", "--campaign", "c2").returncode == 0
    assert Counter(r for m in bot.smtp.messages for r in m.rcpt_tos) == Counter(addresses)


def test_notices_are_throttled_and_replies_are_not(bot_any_db: Bot) -> None:
    bot = bot_any_db
    with_throttle(bot, 2)
    customers(bot, 5)
    bot.add_user("ivan.petrov@example.ru", marketing_consent=True)
    services = build_services(bot.config, bot.store)
    with bot.store.transaction() as session:
        users = recipients(session, "ru")
        queue_notices(session, config=services.config, keyring=services.keyring, renderer=services.renderer,
                      campaign="c1", template="policy_change", users=users, now=utcnow())
    bot.account.append(mail("ivan.petrov@example.ru", "Unsubscribe"))
    bot.run()  # its drain sends the reply and two notices, then the minute's notices are used up

    states = Counter((row.purpose.startswith("n:"), row.state) for row in bot.outbox())
    assert states == Counter({(True, OutboxState.SENT): 2, (True, OutboxState.QUEUED): 4, (False, OutboxState.SENT): 1})
    drained = drain_outbox(bot.store, services.transport, services.config.reply_from, notices_per_minute=2)
    assert drained.sent == 0  # still the same minute


def test_a_campaign_half_sent_before_the_upgrade_is_finished_without_sending_twice(bot_any_db: Bot) -> None:
    """Notices keyed by row id (the old Message-ID form): those already sent count for the address they went to."""
    bot = bot_any_db
    addresses = customers(bot, 6)
    keys, domain = bot.keyring, bot.config.reply_domain
    with bot.store.transaction() as session:
        for user in recipients(session, "ru")[:3]:  # what the old version sent before it was upgraded
            session.add(OutboxMessage(request_id=None, purpose=purpose_of("2026-11"), recipient=user.email,
                                      message_id=legacy_notice_message_id(keys, "2026-11", user.user_id, domain),
                                      data=b"sent before", state=OutboxState.SENT, created_at=utcnow()))

    run = bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11")

    assert run.returncode == 0, run.stderr
    assert "3 queued now" in run.stdout
    assert sorted(m.rcpt_tos[0] for m in bot.smtp.messages) == sorted(addresses[3:])


def test_a_user_imported_after_an_erasure_gets_a_campaign_the_erased_user_had(bot: Bot) -> None:
    """SQLite gives the new user the erased user's row id: the notice is keyed by a reference never reused."""
    first = bot.add_user("first@example.kz")
    assert bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11").returncode == 0
    with bot.store.transaction() as session:
        erased = session.get(User, first)
        assert erased is not None
        session.delete(erased)
    second = bot.add_user("second@example.kz")
    assert second == first  # the row id is reused

    run = bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11")

    assert run.returncode == 0 and "1 queued now" in run.stdout, run.stdout
    assert [m.rcpt_tos for m in bot.smtp.messages] == [["first@example.kz"], ["second@example.kz"]]


def test_a_notice_queued_before_a_withdrawal_is_not_sent_after_it(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(trust=TRUST)
    customers(bot, 2)
    services = build_services(bot.config)
    with bot.store.transaction() as session:
        queued = queue_notices(session, config=services.config, keyring=services.keyring,
                               renderer=services.renderer, campaign="2026-12", template="policy_change",
                               users=recipients(session, "ru"), now=utcnow())
    assert queued == 2
    bot.account.append(authenticated(mail("customer0@example.kz", "Withdrawal of consent"), "example.kz"))
    bot.run()  # the withdrawal is applied, and the outbox drained after the pass

    notices = {row.recipient: row for row in bot.outbox() if row.purpose == purpose_of("2026-12")}
    assert (notices["customer0@example.kz"].state, notices["customer0@example.kz"].last_error) == (
        OutboxState.FAILED, "consent withdrawn")
    assert notices["customer1@example.kz"].state == OutboxState.SENT
    withheld = notices["customer0@example.kz"].message_id.encode()
    assert not any(withheld in m.data for m in bot.smtp.messages)


def test_notices_do_not_count_against_a_persons_daily_reply_limit(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(trust='verification = "never"\nmax_replies_per_sender_per_day = 1')
    customers(bot, 1)
    assert bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11").returncode == 0
    bot.account.append(mail("customer0@example.kz", "Вопрос об обработке персональных данных", "Кому вы их передаёте?"))

    bot.run()

    [question] = bot.requests()
    assert (question.state, question.reason) == ("review", "awaiting_answer")  # acknowledged, not over the limit
    assert len([m for m in bot.smtp.messages if m.rcpt_tos == ["customer0@example.kz"]]) == 2


def test_notice_message_ids_stay_within_64_characters() -> None:
    from dsr_mailbot.store.keys import Keyring

    keys = Keyring(b"k" * 32)
    for domain in ("smarthings.kz", "smarththings.kz"):
        assert len(notice_message_id(keys, "x" * 40, "f" * 32, domain)) <= 64
