"""Policy-change notices (policy 7.2): every user who has not withdrawn consent, exactly once per campaign."""

from __future__ import annotations

import threading
from collections import Counter
from email import message_from_bytes
from email.policy import default

import pytest
from sqlmodel import select

from dsr_mailbot.config import SmtpConfig
from dsr_mailbot.errors import TemplateError
from dsr_mailbot.lifecycle.base import KEPT_ON_CLOSE
from dsr_mailbot.replies.notices import legacy_notice_message_id, notice_message_id, write_notices
from dsr_mailbot.replies.render import Rendered, Renderer
from dsr_mailbot.replies.send import SEND_PAGE, drain_outbox
from dsr_mailbot.replies.transports import SmtpTransport
from dsr_mailbot.service.app import build_services
from dsr_mailbot.service.campaign import queue_campaign
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.erasure import erase_user
from dsr_mailbot.store.models import CampaignNotice, NoticeState, OutboxMessage, OutboxState, User, utcnow
from dsr_mailbot.store.notices import purpose_of
from tests.harness import TRUST, Bot, authenticated, mail
from tests.servers import free_port

WITHDRAWN = "gone@example.kz"


def with_throttle(bot: Bot, per_minute: int) -> None:
    text = bot.config_path.read_text(encoding="utf-8")
    bot.config_path.write_text(text.replace('from_address = "support@smarthings.kz"',
                                            f'from_address = "support@smarthings.kz"\nmax_per_minute = {per_minute}'),
                               encoding="utf-8")


def queued_notices(bot: Bot) -> list[CampaignNotice]:
    with bot.store.transaction() as session:
        return list(session.exec(select(CampaignNotice).order_by(CampaignNotice.id)).all())  # type: ignore[arg-type]


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
    assert bot.outbox() == []  # queued as references: the messages are written when their turn comes
    assert [n.state for n in queued_notices(bot)] == [NoticeState.QUEUED] * 4  # committed before the kill

    assert bot.cli("notify", "--template", "policy-change", "--campaign", "c2").returncode == 0
    assert Counter(r for m in bot.smtp.messages for r in m.rcpt_tos) == Counter(addresses)


def test_notices_are_throttled_and_replies_are_not(bot_any_db: Bot) -> None:
    bot = bot_any_db
    with_throttle(bot, 2)
    customers(bot, 5)
    bot.add_user("ivan.petrov@example.ru", marketing_consent=True)
    services = build_services(bot.config, bot.store)
    assert queue_campaign(services, "c1", "policy_change").queued == 6
    bot.account.append(mail("ivan.petrov@example.ru", "Unsubscribe"))
    bot.run()  # its drain sends the reply and two notices, then the minute's notices are used up

    states = Counter((row.purpose.startswith("n:"), row.state) for row in bot.outbox())
    # Only the minute's allowance was written into messages; the rest wait as references.
    assert states == Counter({(True, OutboxState.SENT): 2, (False, OutboxState.SENT): 1})
    assert Counter(n.state for n in queued_notices(bot)) == {NoticeState.WRITTEN: 2, NoticeState.QUEUED: 4}
    drained = drain_outbox(bot.store, services.transport, services.config.reply_from, notices_per_minute=2,
                           notice_check=services.notice_check)
    assert drained.sent == 0  # still the same minute


def test_a_campaign_half_sent_before_the_upgrade_is_finished_without_sending_twice(bot_any_db: Bot) -> None:
    """Notices keyed by row id (the old Message-ID form): those already sent count for the address they went to."""
    bot = bot_any_db
    addresses = customers(bot, 6)
    keys, domain = bot.keyring, bot.config.reply_domain
    with bot.store.transaction() as session:
        users = session.exec(select(User).where(User.processing_consent == True).order_by(User.id)).all()  # type: ignore[arg-type]  # noqa: E712
        for user in users[:3]:  # what the old version sent before it was upgraded
            assert user.id is not None
            session.add(OutboxMessage(request_id=None, purpose=purpose_of("2026-11"), recipient=user.email,
                                      message_id=legacy_notice_message_id(keys, "2026-11", user.id, domain),
                                      data=b"sent before", state=OutboxState.SENT, created_at=utcnow()))
        # and what a version that queued whole messages had queued, not sent yet: sent as it is
        fourth = users[3]
        session.add(OutboxMessage(request_id=None, purpose=purpose_of("2026-11"), recipient=fourth.email,
                                  message_id=notice_message_id(keys, "2026-11", fourth.ref, domain),
                                  data=mail("support@smarthings.kz", "queued before"), created_at=utcnow()))

    run = bot.cli("notify", "--template", "policy-change", "--campaign", "2026-11")

    assert run.returncode == 0, run.stderr
    assert "3 sent now" in run.stdout and "every notice sent" in run.stdout, run.stdout
    assert sorted(m.rcpt_tos[0] for m in bot.smtp.messages) == sorted(addresses[3:])
    assert b"queued before" in next(m.data for m in bot.smtp.messages if m.rcpt_tos == [addresses[3]])


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
    assert queue_campaign(services, "2026-12", "policy_change").queued == 2
    drain_outbox(bot.store, services.transport, services.config.reply_from, notices_per_minute=0,
                 notice_check=services.notice_check)  # nothing may go this minute: nothing written either
    assert bot.outbox() == []
    with bot.store.transaction() as session:  # written, not sent: the message was made before the withdrawal
        assert services.notice_check.writer is not None
        assert write_notices(session, services.notice_check.writer, 10, lock=False).written == 2
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


def test_a_campaign_killed_after_writing_a_page_of_messages_sends_each_once_when_run_again(bot_any_db: Bot) -> None:
    bot = bot_any_db
    addresses = customers(bot, 5)

    killed = bot.cli("notify", "--template", "policy-change", "--campaign", "c3",
                     env={"DSR_MAILBOT_TEST_CRASH_AT": "after_notices_written"})
    assert killed.returncode == -9 and bot.smtp.messages == []
    assert [row.state for row in bot.outbox()] == [OutboxState.QUEUED] * 5  # written and committed, not sent

    again = bot.cli("notify", "--template", "policy-change", "--campaign", "c3")
    assert again.returncode == 0 and "0 queued now; 5 sent now" in again.stdout, again.stdout
    assert Counter(r for m in bot.smtp.messages for r in m.rcpt_tos) == Counter(addresses)
    assert {n.state for n in queued_notices(bot)} == {NoticeState.WRITTEN}


def test_a_user_erased_after_queueing_gets_nothing_and_the_trail_says_why(bot_any_db: Bot) -> None:
    bot = bot_any_db
    customers(bot, 2)
    services = build_services(bot.config, bot.store)
    assert queue_campaign(services, "c4", "policy_change").queued == 2
    with bot.store.transaction() as session:
        gone = session.exec(select(User).where(User.email == "customer0@example.kz")).one()
        session.delete(gone)

    drained = drain_outbox(bot.store, services.transport, services.config.reply_from,
                           notice_check=services.notice_check)

    assert (drained.sent, drained.notices_sent) == (1, 1)
    assert [m.rcpt_tos for m in bot.smtp.messages] == [["customer1@example.kz"]]
    assert Counter(n.state for n in queued_notices(bot)) == {NoticeState.DROPPED: 1, NoticeState.WRITTEN: 1}
    assert [(e.event, e.detail.get("error")) for e in bot.events() if e.event == "reply_failed"] == [
        ("reply_failed", "recipient no longer on file")]


def test_an_unreachable_smtp_server_leaves_the_campaign_queued_as_references_past_the_first_page(
        bot_any_db: Bot) -> None:
    bot = bot_any_db
    customers(bot, SEND_PAGE + 5)
    services = build_services(bot.config, bot.store)
    queue_campaign(services, "c5", "policy_change")
    down = SmtpTransport(SmtpConfig(host="127.0.0.1", port=free_port(), security="none",
                                    from_address="support@smarthings.kz"))

    drained = drain_outbox(bot.store, down, services.config.reply_from, notice_check=services.notice_check)

    assert drained.unavailable is not None and drained.sent == 0
    assert Counter(n.state for n in queued_notices(bot)) == {NoticeState.WRITTEN: SEND_PAGE, NoticeState.QUEUED: 5}


def test_a_notice_whose_template_breaks_fails_alone_and_the_campaign_and_the_drain_go_on(
        bot_any_db: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    bot = bot_any_db
    addresses = customers(bot, 3)
    bot.account.append(mail(addresses[0], "Жазылымнан бас тарту"))  # their last request is in Kazakh
    bot.run()
    services = build_services(bot.config, bot.store)
    queue_campaign(services, "c6", "policy_change")
    real = Renderer.render

    def broken_in_kazakh(self: Renderer, outcome: str, language: str, context: dict[str, object]) -> Rendered:
        if outcome == "policy_change" and language == "kk":  # edited on disk since start-up, and broken
            raise TemplateError("kk/policy_change.txt: unexpected '}'")
        return real(self, outcome, language, context)

    monkeypatch.setattr(Renderer, "render", broken_in_kazakh)
    before = len(bot.smtp.messages)

    drained = drain_outbox(bot.store, services.transport, services.config.reply_from,
                           notice_check=services.notice_check)

    assert drained.notices_sent == 2
    assert sorted(m.rcpt_tos[0] for m in bot.smtp.messages[before:]) == addresses[1:]
    assert Counter(n.state for n in queued_notices(bot)) == {NoticeState.WRITTEN: 2, NoticeState.FAILED: 1}
    assert ("reply_failed", "the notice could not be written (TemplateError)") in [
        (e.event, e.detail.get("error")) for e in bot.events()]


def test_a_user_who_withdrew_before_their_turn_gets_no_message_written(bot_any_db: Bot) -> None:
    bot = bot_any_db
    customers(bot, 2)
    services = build_services(bot.config, bot.store)
    queue_campaign(services, "c7", "policy_change")
    with bot.store.transaction() as session:
        withdrawn = session.exec(select(User).where(User.email == "customer0@example.kz")).one()
        withdrawn.processing_consent = False

    drain_outbox(bot.store, services.transport, services.config.reply_from, notice_check=services.notice_check)

    assert [row.recipient for row in bot.outbox()] == ["customer1@example.kz"]  # no copy of the address kept
    assert ("reply_failed", "consent withdrawn") in [(e.event, e.detail.get("error")) for e in bot.events()]


def test_an_erasure_while_a_worker_writes_the_page_waits_for_it_and_scrubs_what_it_wrote(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user("ivan@example.kz")
    services = build_services(bot.config, bot.store)
    queue_campaign(services, "c8", "policy_change")
    assert services.notice_check.writer is not None

    def erase_ivan() -> None:  # another worker carries out Ivan's erasure meanwhile
        other = Store(bot.store.engine.url.render_as_string(hide_password=False))
        with other.transaction() as session:
            ivan = session.exec(select(User).where(User.email == "ivan@example.kz")).one()
            erase_user(session, bot.keyring, ivan, now=utcnow(), actions_kept=KEPT_ON_CLOSE)
        other.dispose()

    with bot.store.transaction() as session:  # this worker writes the page, its rows locked until it commits
        assert write_notices(session, services.notice_check.writer, 10, lock=bot.store.serves_many_workers).written == 1
        session.flush()
        eraser = threading.Thread(target=erase_ivan)
        eraser.start()
        eraser.join(timeout=1.0)  # it waits for this transaction
    eraser.join()

    assert [(row.recipient, row.state) for row in bot.outbox()] == [("erased", OutboxState.FAILED)]
    drain_outbox(bot.store, services.transport, services.config.reply_from, notice_check=services.notice_check)
    assert bot.smtp.messages == []
