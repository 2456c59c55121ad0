"""Only the data subject can change their data: authentication, the confirmation loop, loops and bounces,
the daily limit and the review queue — end to end against Dovecot and the SMTP server."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from email.message import EmailMessage

import pytest

from dsr_mailbot.store.models import utcnow
from dsr_mailbot.trust.tokens import challenge_message_id, parse_token
from tests.harness import MX, RECEIVED, TRUST, Bot, authenticated, mail, via_mx

IVAN = "ivan.petrov@example.ru"

@pytest.fixture
def trusting(bot: Bot) -> Bot:
    bot.write_config(trust=TRUST)
    return bot


def challenges(bot: Bot, to: str) -> list[EmailMessage]:
    return [m for m in bot.replies() if m["To"] == to and "[DSR-" in str(m["Subject"])]


def answer(challenge: EmailMessage, sender: str, text: str = "Да, подтверждаю") -> bytes:
    mid = str(challenge["Message-ID"])
    return via_mx(mail(sender, f"Re: {challenge['Subject']}", text, headers={"In-Reply-To": mid, "References": mid}))


def pending_withdrawal(bot: Bot) -> EmailMessage:
    """An unauthenticated withdrawal from IVAN, run once: it waits, and its challenge is at the SMTP server."""
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(via_mx(mail(IVAN, "Withdrawal of consent")))
    bot.run()
    [challenge] = challenges(bot, IVAN)
    return challenge


def completed_events(bot: Bot, request_id: int) -> int:
    return sum(1 for e in bot.events() if e.event == "request_completed" and e.request_id == request_id)


# Sender authentication and the confirmation loop


@pytest.mark.parametrize(
    "arrival",
    [
        lambda d: via_mx(d),  # no Authentication-Results at all
        lambda d: via_mx(d, "dmarc=fail header.from=example.ru"),
        lambda d: (f"Authentication-Results: mx.google.com; dmarc=pass header.from=example.ru\r\n{RECEIVED}"
                   ).encode() + d,  # a foreign authserv-id
        lambda d: (f"{RECEIVED}Authentication-Results: {MX}; dmarc=pass header.from=example.ru\r\n").encode() + d,
    ],
    ids=["no-header", "dmarc-fail", "foreign-authserv-id", "below-our-received-line"],
)
def test_a_forged_withdrawal_changes_nothing_until_the_owner_confirms(
    trusting: Bot, arrival: Callable[[bytes], bytes]
) -> None:
    bot = trusting
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(arrival(mail(f"Иван <{IVAN}>", "Отзыв согласия", "Удалите мои данные",
                                    headers={"Reply-To": "attacker@evil.example"})))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.processing_consent and user.marketing_consent
    [request] = bot.requests()
    assert request.state == "awaiting_confirmation" and not request.authenticated
    [challenge] = bot.replies()
    assert challenge["To"] == IVAN  # the address on file, never Reply-To
    token = parse_token(str(challenge["Subject"]))
    assert token is not None and "[DSR-" in challenge["Subject"]
    assert challenge["Message-ID"] == challenge_message_id(token, "smarthings.kz")  # the token, compactly
    assert len(challenge["Message-ID"]) <= 64
    text = bot.reply_text(challenge)
    assert "отозвать согласие" in text and "пустым письмом или словом «Да»" in text
    assert "без подтверждения ничего не изменится" in text

    bot.account.append(answer(challenge, IVAN))
    bot.run()
    bot.run()

    user = bot.user(IVAN)
    assert user is not None and not user.processing_consent and user.erasure_due_at is not None
    first, confirmation = bot.requests()
    assert (first.state, first.outcome) == ("completed", "withdrawal_applied")
    assert (confirmation.kind, confirmation.state) == ("confirm", "completed")
    assert confirmation.related_request_id == first.id
    assert completed_events(bot, first.id or 0) == 1
    assert [m["To"] for m in bot.replies()] == [IVAN, IVAN]
    assert "будут уничтожены" in bot.reply_text(bot.replies()[1])


def test_a_trusted_dmarc_pass_applies_at_once_under_auto(trusting: Bot) -> None:
    bot = trusting
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(authenticated(mail(IVAN, "Обновление персональных данных", "Телефон: 8 701 765 43 21")))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77017654321"
    [request] = bot.requests()
    assert request.authenticated and request.state == "completed"
    assert challenges(bot, IVAN) == []


def test_a_trusted_dmarc_pass_still_waits_under_always(bot: Bot) -> None:
    bot.write_config(trust=f'authserv_id = "{MX}"\nverification = "always"')
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(authenticated(mail(IVAN, "Обновление персональных данных", "Телефон: 8 701 765 43 21")))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77011112233"
    assert bot.requests()[0].state == "awaiting_confirmation" and len(challenges(bot, IVAN)) == 1


def test_an_optout_needs_no_confirmation(trusting: Bot) -> None:
    bot = trusting
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(via_mx(mail(IVAN, "Unsubscribe")))
    bot.run()
    user = bot.user(IVAN)
    assert user is not None and not user.marketing_consent and challenges(bot, IVAN) == []


def test_a_confirmation_from_another_address_is_refused_and_goes_to_review(trusting: Bot) -> None:
    bot = trusting
    challenge = pending_withdrawal(bot)

    bot.account.append(answer(challenge, "attacker@evil.example"))
    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.processing_consent
    first, confirmation = bot.requests()
    assert (first.state, first.reason) == ("review", "confirmation_from_other_address")
    assert (confirmation.state, confirmation.reason) == ("rejected", "other_address")
    assert len(bot.smtp.messages) == 1  # nothing sent to the other address


def test_a_token_is_single_use(trusting: Bot) -> None:
    bot = trusting
    challenge = pending_withdrawal(bot)
    bot.account.append(answer(challenge, IVAN, "да"))
    bot.account.append(answer(challenge, IVAN, "да, ещё раз"))

    bot.run()

    first, used, reused = bot.requests()
    assert first.state == "completed" and completed_events(bot, first.id or 0) == 1
    assert (used.state, reused.state, reused.reason) == ("completed", "rejected", "token_used")
    assert len(bot.smtp.messages) == 2  # the challenge and one confirmation of the change


def test_a_tampered_token_is_refused(trusting: Bot) -> None:
    bot = trusting
    challenge = pending_withdrawal(bot)
    subject = str(challenge["Subject"])
    mac = subject.rsplit("-", 1)[1].rstrip("]")
    forged = subject.replace(mac, ("0" if mac[0] != "0" else "1") + mac[1:])
    bot.account.append(via_mx(mail(IVAN, f"Re: {forged}", "да")))

    bot.run()

    first, confirmation = bot.requests()
    assert first.state == "awaiting_confirmation"
    assert (confirmation.state, confirmation.reason) == ("rejected", "bad_token")
    user = bot.user(IVAN)
    assert user is not None and user.processing_consent


def test_an_unconfirmed_request_expires_with_a_notice_and_its_token_is_refused(trusting: Bot) -> None:
    bot = trusting
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(via_mx(mail(IVAN, "Отзыв согласия")))
    bot.run()
    [challenge] = challenges(bot, IVAN)
    bot.account.append(answer(challenge, IVAN))

    bot.run(now=utcnow() + timedelta(days=8))

    first, confirmation = bot.requests()
    assert (first.state, first.outcome) == ("expired", "confirmation_expired")
    assert first.reply_address is None and first.intent == {}
    assert confirmation.state == "rejected" and confirmation.reason in {"token_used", "token_expired"}
    user = bot.user(IVAN)
    assert user is not None and user.processing_consent
    notice = bot.replies()[-1]
    assert notice["To"] == IVAN and "не был подтверждён вовремя" in bot.reply_text(notice)


# A change of the e-mail address


def test_a_new_address_must_confirm_and_the_old_one_is_told(trusting: Bot) -> None:
    bot = trusting
    bot.add_user(IVAN, phone="+77011112233")
    new = "ivan.new@example.kz"
    bot.account.append(authenticated(mail(IVAN, "Personal data update", f"E-mail: {new}\nPhone: 8 701 765 43 21")))

    bot.run()

    assert bot.user(IVAN) is not None and bot.user(new) is None
    assert challenges(bot, IVAN) == []  # authenticated: the owner need not confirm
    [challenge] = challenges(bot, new)
    assert "with no text, or with \"Yes\"" in bot.reply_text(challenge)
    assert "+77017654321" not in bot.reply_text(challenge)  # the new address learns nothing about the account
    bot.account.append(answer(challenge, new, "yes"))
    bot.run()

    user = bot.user(new)
    assert user is not None and user.phone == "+77017654321" and bot.user(IVAN) is None
    applied = [m for m in bot.replies() if m["To"] == new and "[DSR-" not in str(m["Subject"])]
    notice = [m for m in bot.replies() if m["To"] == IVAN]
    assert len(applied) == 1 and "i***@example.kz" in bot.reply_text(notice[0])
    assert new not in bot.reply_text(notice[0])


def test_an_unauthenticated_address_change_is_confirmed_by_the_owner_then_the_new_address(trusting: Bot) -> None:
    bot = trusting
    bot.add_user(IVAN)
    new = "ivan.new@example.kz"
    bot.account.append(via_mx(mail(IVAN, "Personal data update", f"E-mail: {new}")))
    bot.run()
    [owner_challenge] = challenges(bot, IVAN)
    assert challenges(bot, new) == []  # nobody writes to the new address before the owner confirmed

    bot.account.append(answer(owner_challenge, IVAN))
    bot.run()
    assert bot.user(IVAN) is not None
    [new_challenge] = challenges(bot, new)
    bot.account.append(answer(new_challenge, new))
    bot.run()

    assert bot.user(new) is not None and bot.user(IVAN) is None
    assert bot.requests()[0].state == "completed"


# Loops, bounces and floods


@pytest.mark.parametrize(
    ("extra", "sender", "subject", "why"),
    [
        ({"Auto-Submitted": "auto-replied"}, IVAN, "Re: Personal data update", "auto_submitted"),
        ({"Precedence": "bulk"}, IVAN, "Unsubscribe", "bulk_precedence"),
        ({"List-Id": "<news.example.ru>"}, IVAN, "Unsubscribe", "list_mail"),
        ({"List-Unsubscribe": "<mailto:u@example.ru>"}, IVAN, "Unsubscribe", "list_mail"),
        ({"X-Autoreply": "yes"}, IVAN, "Withdrawal of consent", "autoreply_header"),
        ({"X-Autorespond": "yes"}, IVAN, "Withdrawal of consent", "autoreply_header"),
        ({"X-Auto-Response-Suppress": "All"}, IVAN, "Withdrawal of consent", "autoreply_header"),
        ({"Return-Path": "<>"}, IVAN, "Personal data update", "null_return_path"),
        ({}, "MAILER-DAEMON@mx.example.ru", "Personal data update", "daemon_sender"),
        ({}, "postmaster@example.ru", "Personal data update", "daemon_sender"),
        ({}, "noreply@example.ru", "Unsubscribe", "daemon_sender"),
        ({}, "support@smarththings.kz", "Personal data update", "from_operator_address"),
        ({"X-DSR-Mailbot": "reply"}, IVAN, "Re: Personal data update", "own_loop_marker"),
        ({}, IVAN, "Automatic reply: Re: Personal data update", "auto_reply_subject"),
    ],
)
def test_loop_and_bulk_mail_is_recorded_never_answered_and_never_applied(
    trusting: Bot, extra: dict[str, str], sender: str, subject: str, why: str
) -> None:
    bot = trusting
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    data = authenticated(mail(sender, subject, "Phone: +7 701 765 43 21", headers=extra))
    bot.account.append(data)
    before = bot.account.snapshot()

    bot.run()

    [request] = bot.requests()
    assert (request.state, request.reason) == ("ignored", why)
    assert bot.smtp.messages == []
    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77011112233" and user.marketing_consent
    assert bot.account.snapshot() == before  # not a request: left exactly where it was


def test_an_auto_reply_to_a_challenge_does_not_confirm_it(trusting: Bot) -> None:
    bot = trusting
    challenge = pending_withdrawal(bot)
    mid = str(challenge["Message-ID"])
    bot.account.append(via_mx(mail(IVAN, f"Automatic reply: {challenge['Subject']}", "I am away",
                                   headers={"In-Reply-To": mid, "Auto-Submitted": "auto-replied"})))

    bot.run()

    first, auto = bot.requests()
    assert first.state == "awaiting_confirmation"
    assert (auto.kind, auto.state, auto.reason) == ("confirm", "ignored", "auto_submitted")
    assert len(bot.smtp.messages) == 1


def test_a_bounce_of_our_reply_is_linked_to_its_request_and_is_not_a_request(bot: Bot) -> None:
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(mail(IVAN, "Unsubscribe"))
    bot.run()
    [reply] = bot.replies()
    [request] = bot.requests()
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.ru>\r\nTo: support@smarthings.kz\r\n"
        "Subject: Undeliverable: Re: Unsubscribe\r\nMessage-ID: <dsn-1@mx.example.ru>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery to the following recipient failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.ru\r\n\r\n"
        "Final-Recipient: rfc822; ivan.petrov@example.ru\r\nAction: failed\r\nStatus: 5.2.2\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {reply['Message-ID']}\r\n"
        "Subject: Re: Unsubscribe\r\n--b--\r\n"
    ).encode()
    bot.account.append(via_mx(dsn))
    before = bot.account.snapshot()

    report = bot.run()
    bot.run()

    assert report.bounces == 1 and report.requests == 0
    [bounced] = [e for e in bot.events() if e.event == "reply_bounced"]
    assert (bounced.request_id, bounced.detail["purpose"], bounced.detail["status"]) == (request.id, "reply", "5.2.2")
    assert len(bot.requests()) == 1 and len(bot.smtp.messages) == 1
    assert bot.account.snapshot() == before


def test_the_daily_reply_limit_per_sender_holds(bot: Bot) -> None:
    bot.write_config(trust='verification = "never"\nmax_replies_per_sender_per_day = 3')
    for n in range(6):
        bot.account.append(mail("stranger@example.org", "Personal data update", f"Phone: +7 701 765 43 2{n}"))

    bot.run()
    bot.account.append(mail("other@example.org", "Personal data update", "Phone: +7 701 765 43 21"))
    bot.run()

    states = [r.state for r in bot.requests()]
    assert states == ["rejected"] * 3 + ["review"] * 3 + ["rejected"]
    assert [r.reason for r in bot.requests()][3:6] == ["sender_daily_limit"] * 3
    assert [m.rcpt_tos for m in bot.smtp.messages] == [["stranger@example.org"]] * 3 + [["other@example.org"]]


# The review queue, from the command line


def test_review_approve_and_reject_from_the_cli(trusting: Bot) -> None:
    bot = trusting
    bot.add_user(IVAN, phone="+77011112233", surname="Петров")
    bot.add_user("anna@example.kz")
    bot.account.append(authenticated(mail(IVAN, "Обновление персональных данных",
                                          "Телефон: 8 701 765 43 21\nPhone: +7 702 111 22 33\nФамилия: Новиков")))
    bot.account.append(authenticated(mail(IVAN, "Withdrawal of consent", "Please also remove anna@example.kz")))
    bot.run()
    conflict, other = bot.requests()
    assert (conflict.state, conflict.reason) == ("review", "conflicting_values")
    assert (other.state, other.reason) == ("review", "names_another_user")
    assert bot.smtp.messages == []

    listed = json.loads(bot.cli("requests", "list", "--state", "review", "--format", "json").stdout)
    shown = json.loads(bot.cli("requests", "show", str(conflict.id), "--format", "json").stdout)
    assert [r["id"] for r in listed] == [conflict.id, other.id]
    assert all(r["message_id"].startswith("<") for r in listed)
    assert shown["fields_asked"] == ["surname"] and shown["problems"] == ["phone:conflict"]
    assert shown["sender"] == "i***@example.ru" and IVAN not in json.dumps(shown)

    approved = bot.cli("requests", "approve", str(conflict.id))
    rejected = bot.cli("requests", "reject", str(other.id), "--reason", "Мы не можем удалить чужие данные.")

    assert approved.returncode == 0, approved.stderr
    assert rejected.returncode == 0, rejected.stderr
    user = bot.user(IVAN)
    assert user is not None and (user.surname, user.phone) == ("Новиков", "+77011112233")
    assert user.processing_consent
    applied, refusal = bot.replies()
    assert applied["To"] == IVAN and "Фамилия: Новиков" in bot.reply_text(applied)
    assert "Телефон: в письме указано несколько разных значений" in bot.reply_text(applied)
    assert refusal["To"] == IVAN and "Reason: Мы не можем удалить чужие данные." in bot.reply_text(refusal)
    decisions = [e for e in bot.events() if e.event in {"operator_approved", "request_rejected"}]
    assert [e.actor.startswith("cli:") for e in decisions] == [True, True]
    assert bot.cli("requests", "approve", str(conflict.id)).returncode == 64  # already decided

