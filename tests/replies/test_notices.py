"""Policy-change notices (policy 7.2): every user who has not withdrawn consent, exactly once per campaign."""

from __future__ import annotations

from collections import Counter
from email import message_from_bytes
from email.policy import default

from dsr_mailbot.replies.notices import queue_notices, recipients
from dsr_mailbot.replies.send import drain_outbox
from dsr_mailbot.service.app import build_services
from dsr_mailbot.store.models import OutboxState, utcnow
from tests.harness import Bot, mail

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
