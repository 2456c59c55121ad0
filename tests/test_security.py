"""The attacks of issue 8, end to end against Dovecot, the SMTP server, SQLite and PostgreSQL.

One section per class of attack.  Each test shows the attack failing and a
legitimate request behind it still handled in the same pass.
"""

from __future__ import annotations

import email
from email.message import EmailMessage
from email.policy import SMTP
from email.policy import default as default_policy
from pathlib import Path

import pytest

from dsr_mailbot.store.models import Request
from tests.conftest import fresh_database_url
from tests.crafted import CRAFTED
from tests.harness import (
    MX,
    PROCESSED,
    RECEIVED,
    TRUST,
    Bot,
    DaemonProcess,
    authenticated,
    mail,
    message_id_of,
    via_mx,
    wait_until,
)
from tests.servers import SmtpServer

IVAN = "ivan@mail.ru"
ANNA = "anna@example.kz"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Trust is decided before the store is touched: these run on SQLite and PostgreSQL (the store tests: all three)."""
    return fresh_database_url(request.param, request, tmp_path)


@pytest.fixture
def guarded(bot_any_db: Bot) -> Bot:
    """The bot with the operator's MX trusted and confirmations on, on SQLite and PostgreSQL."""
    bot_any_db.write_config(trust=TRUST)
    bot_any_db.add_user(IVAN, phone="+77011112233", surname="Петров", marketing_consent=True)
    bot_any_db.add_user(ANNA, marketing_consent=True)
    return bot_any_db


def dmarc_pass(data: bytes, domain: str) -> bytes:
    """What the MX writes for mail a large provider signed: DMARC passes for the provider's domain."""
    results = f"dkim=pass header.d={domain}; spf=pass smtp.mailfrom={domain}; dmarc=pass header.from={domain}"
    return via_mx(data, results)


def raw_mail(headers: str, body: str = "") -> bytes:
    """A message written byte for byte: the attacker's own encodings, not the standard library's."""
    return (headers.strip().replace("\n", "\r\n") + "\r\n\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def reply_to(bot: Bot, ours: EmailMessage, sender: str, text: str, subject: str | None = None) -> None:
    """The person's authenticated reply to one of our messages, threaded as mail clients thread it."""
    mid = str(ours["Message-ID"])
    bot.account.append(dmarc_pass(mail(sender, subject or f"Re: {ours['Subject']}", text,
                                       headers={"In-Reply-To": mid, "References": mid}), sender.split("@")[1]))


def by_state(bot: Bot) -> dict[str, list[Request]]:
    found: dict[str, list[Request]] = {}
    for row in bot.requests():
        found.setdefault(row.state, []).append(row)
    return found


def ivan_untouched(bot: Bot) -> None:
    user = bot.user(IVAN)
    assert user is not None and user.processing_consent and user.marketing_consent
    assert (user.email, user.phone) == (IVAN, "+77011112233")


def legitimate_optout(bot: Bot) -> None:
    """Anna's own opt-out, sent after the attack: it must be applied and answered."""
    bot.account.append(authenticated(mail(ANNA, "Отказ от рассылки"), "example.kz"))


def anna_opted_out(bot: Bot) -> None:
    user = bot.user(ANNA)
    assert user is not None and not user.marketing_consent
    assert any(m.rcpt_tos == [ANNA] for m in bot.smtp.messages)


# 1. Who sent it: the address DMARC checked, never one an encoded word makes up


@pytest.mark.parametrize(
    "from_header",
    [
        "=?utf-8?q?ivan=40mail.ru_=28?= <attacker@mail.ru> (=?utf-8?q?=29?=)",  # the example
        "=?utf-8?q?ivan?=@mail.ru",  # an encoded word as a local part
        '"ivan@mail.ru" <attacker@mail.ru>',
        "Ivan <attacker@mail.ru> (ivan@mail.ru)",
        "ivan@mail\uff0eru",  # a full-width dot
        "\u212aivan@mail.ru".replace("\u212ai", "i\u0307"),  # a combining dot: not the stored address
    ],
    ids=["encoded-display-name", "encoded-local-part", "quoted-name", "comment", "fullwidth-dot", "combining"],
)
def test_a_provider_user_cannot_act_as_another_user_of_the_same_provider(guarded: Bot, from_header: str) -> None:
    bot = guarded
    withdrawal = raw_mail(f"From: {from_header}\nTo: support@smarthings.kz\nSubject: Withdrawal of consent\n"
                          "Message-ID: <attack-1@mail.ru>", "Удалите мои данные")
    takeover = raw_mail(f"From: {from_header}\nTo: support@smarthings.kz\nSubject: Personal data update\n"
                        "Message-ID: <attack-2@mail.ru>", "E-mail: attacker@mail.ru")
    bot.account.append(dmarc_pass(withdrawal, "mail.ru"))
    bot.account.append(dmarc_pass(takeover, "mail.ru"))
    legitimate_optout(bot)

    bot.run()

    ivan_untouched(bot)
    assert bot.user("attacker@mail.ru") is None
    assert not any(m.rcpt_tos == [IVAN] for m in bot.smtp.messages)  # not even a challenge in Ivan's name
    attacks = [r for r in bot.requests() if r.kind != "optout"]
    assert all(r.user_id is None for r in attacks) and all(r.state in ("rejected", "review") for r in attacks)
    anna_opted_out(bot)


@pytest.mark.parametrize(
    "arrival",
    [
        # our authserv-id in a header the sender wrote, below a lower Received line that names our MX
        lambda d: (RECEIVED.replace(MX, "mx1.smarthings.kz") + f"Authentication-Results: {MX}; dmarc=pass "
                   f"header.from=mail.ru\r\n" + RECEIVED).encode() + d,
        lambda d: via_mx(d, "dkim=pass header.d=mail.ru; dmarc=fail header.from=mail.ru"),  # DMARC fail vetoes DKIM
        lambda d: via_mx(d, "dkim=pass header.d=attacker.example; dmarc=pass"),  # no header.from: proves nothing
        lambda d: via_mx(d, "=?utf-8?q?dmarc=3Dpass_header.from=3Dmail.ru?="),  # an encoded word is text
    ],
    ids=["lower-received-line", "dmarc-fail-vetoes-dkim", "dmarc-pass-without-header-from", "encoded-results"],
)
def test_forged_or_vetoed_authentication_only_gets_the_owner_a_challenge(guarded: Bot, arrival: object) -> None:
    bot = guarded
    bot.account.append(arrival(mail(IVAN, "Withdrawal of consent")))  # type: ignore[operator]
    legitimate_optout(bot)

    bot.run()

    ivan_untouched(bot)
    [withdrawal] = [r for r in bot.requests() if r.kind == "withdraw"]
    assert not withdrawal.authenticated and withdrawal.state == "awaiting_confirmation"
    anna_opted_out(bot)


# 2. One message never stops the bot


def test_mail_that_used_to_stop_every_run_is_handled_and_the_rest_go_on(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user("иван@пример.рф", marketing_consent=True)
    bot.add_user("пётр@пример.рф", marketing_consent=True)
    ordinary = raw_mail("From: buyer@example.org\nSubject: =?rot13?q?Jurer_vf_zl_cnepry?=\n"
                        "X-Note: =?rot13?q?uryyb?=\nMessage-ID: <order-1@example.org>", "Where is my parcel?")
    bot.account.append(ordinary)
    bot.account.append(raw_mail(f"From: {IVAN}\nSubject: =?utf-8?q?Unsubscribe=00_now?=\n"
                                "Message-ID: <nul-subject@mail.ru>"))  # PostgreSQL refuses NUL
    bot.account.append(raw_mail(f"From: {IVAN}\nSubject: =?utf-8?b?VW5zdWJzY3JpYmUg7aCA?=\n"
                                "Message-ID: <surrogate@mail.ru>"))  # UTF-8 of a lone surrogate
    bot.account.append(raw_mail(f"From: {IVAN}\nSubject: Unsubscribe\nMessage-ID: <{'x' * 3000}@mail.ru>"))
    bot.account.append(raw_mail("From: =?utf-8?b?0JjQstCw0L0=?= <иван@пример.рф>\nSubject: Отписаться\n"
                                "Message-ID: <idn@xn--e1afmkfd.xn--p1ai>"))
    legitimate_optout(bot)
    bot.add_user(ANNA, marketing_consent=True)
    before = bot.account.snapshot()

    report = bot.run()

    assert report.temporary_failure is None
    anna_opted_out(bot)
    idn_user = bot.user("иван@пример.рф")
    assert idn_user is not None and not idn_user.marketing_consent
    [idn_reply] = [m for m in bot.smtp.messages if m.rcpt_tos == ["иван@xn--e1afmkfd.xn--p1ai"]]
    assert "иван@xn--e1afmkfd.xn--p1ai" in idn_reply.data.decode("utf-8")  # sent with SMTPUTF8
    rows = bot.requests()
    assert len(rows) == 5 and all(r.state == "completed" for r in rows)
    assert all(r.message_id is None or len(r.message_id) < 300 for r in rows)
    assert all("\x00" not in (r.reason or "") for r in rows)
    after = bot.account.snapshot()
    [ordinary_uid] = [uid for uid, (_flags, data) in before.items() if data == ordinary]
    assert after[ordinary_uid] == before[ordinary_uid]  # ordinary mail, whatever its encodings: untouched


def test_the_daemons_watcher_survives_them_and_answers_the_next_request(bot_any_db: Bot) -> None:
    bot = bot_any_db
    # A short poll: this test is about surviving the messages, not about IDLE's latency (test_daemon.py): mail
    # that arrives while the watcher is between its pass and IDLE waits for the next poll.
    bot.write_config(extra="\n[daemon]\nidle = true\npoll_interval_seconds = 5\n")
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user("иван@пример.рф", marketing_consent=True)
    bot.add_user(ANNA, marketing_consent=True)
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("dsr-mailbot running")

    bot.account.append(raw_mail("From: buyer@example.org\nSubject: Order\nX-Note: =?rot13?q?uryyb?=\n"
                                "Message-ID: <order-2@example.org>", "Where is my parcel?"))
    bot.account.append(raw_mail(f"From: {IVAN}\nSubject: =?utf-8?q?Unsubscribe=00?=\nMessage-ID: <nul-2@mail.ru>"))
    bot.account.append(raw_mail("From: иван@пример.рф\nSubject: Отписаться\nMessage-ID: <idn-2@example.org>"))
    legitimate_optout(bot)
    wait_until(lambda: any(m.rcpt_tos == [ANNA] for m in bot.smtp.messages), timeout=30, what="Anna's reply")

    assert daemon.process.poll() is None  # still watching
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.log
    assert [r.state for r in bot.requests()] == ["completed"] * 3


def test_a_reply_the_smtp_server_cannot_take_fails_alone(bot: Bot, tmp_path: object) -> None:
    plain = SmtpServer(smtputf8=False)
    plain.start()
    try:
        bot.write_config(smtp_port=plain.port)
        bot.add_user("иван@пример.рф", marketing_consent=True)
        bot.add_user(ANNA, marketing_consent=True)
        bot.account.append(raw_mail("From: иван@пример.рф\nSubject: Отписаться\nMessage-ID: <i@x.example>"))
        bot.account.append(mail(ANNA, "Отписаться"))

        report = bot.run()
        again = bot.run()

        assert (report.replies_sent, report.replies_failed) == (1, 1)
        assert (again.replies_sent, again.replies_failed, again.temporary_failure) == (0, 0, None)
        assert [m.rcpt_tos for m in plain.messages] == [[ANNA]]
        failed = [row for row in bot.outbox() if row.state == "failed"]
        assert len(failed) == 1 and "SMTPUTF8" in (failed[0].last_error or "")
        assert any(e.event == "reply_failed" for e in bot.events())
    finally:
        plain.stop()


def test_whatever_fails_with_one_message_sets_only_that_message_aside(
    bot_any_db: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Failures the fixes above do not foresee: at triage, at recording, and while sending one reply."""
    from dsr_mailbot import lifecycle
    from dsr_mailbot.pipeline import record as recording
    from dsr_mailbot.pipeline import scan
    from dsr_mailbot.replies import transports

    bot = bot_any_db
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user(ANNA, marketing_consent=True)
    bot.add_user("petr@example.kz", marketing_consent=True)
    from dsr_mailbot.reading.classify import classify_subject as real_classify

    real_record, real_send = lifecycle.record_received, transports.SmtpTransport.send

    def classify(subject: str, table: object = None) -> object:
        if "boom-triage" in subject:
            raise RuntimeError("triage")
        return real_classify(subject, table)  # type: ignore[arg-type]

    def record(ctx: object, session: object, arrival: object, headers: object, *args: object) -> object:
        if "boom-record" in headers.subject:  # type: ignore[attr-defined]
            raise ValueError("a value the database refuses")
        return real_record(ctx, session, arrival, headers, *args)  # type: ignore[arg-type]

    def deliver(self: transports.SmtpTransport, envelope_from: str, recipient: str, data: bytes) -> None:
        if recipient == "petr@example.kz":
            raise UnicodeEncodeError("ascii", "x", 0, 1, "a library surprise")
        real_send(self, envelope_from, recipient, data)

    monkeypatch.setattr(scan, "classify_subject", classify)  # the name the triage calls
    monkeypatch.setattr(recording, "record_received", record)
    monkeypatch.setattr(transports.SmtpTransport, "send", deliver)
    not_yet_known = mail(IVAN, "Unsubscribe boom-triage")
    bot.account.append(not_yet_known)
    bot.account.append(mail(IVAN, "Unsubscribe boom-record"))
    bot.account.append(mail("petr@example.kz", "Unsubscribe"))
    legitimate_optout(bot)

    report = bot.run()
    again = bot.run()

    assert report.temporary_failure is None and again.scanned == 0
    reasons = sorted(r.reason or "" for r in bot.requests() if r.state == "review")
    assert reasons == ["record:ValueError", "triage:RuntimeError"]
    anna_opted_out(bot)
    [failed] = [row for row in bot.outbox() if row.state == "failed"]
    assert failed.recipient == "petr@example.kz" and "UnicodeEncodeError" in (failed.last_error or "")
    # Failed at triage, it may not be a request: left as it was, the review row points to its UID.
    [(flags, data)] = bot.account.snapshot().values()
    assert data == not_yet_known and flags == frozenset()


def test_the_letter_kept_for_the_reviewer_is_bounded_and_holds_no_nul_or_lone_surrogate(bot_any_db: Bot) -> None:
    """An open request keeps its subject and own words for the console: an attacker's encodings must store."""
    bot = bot_any_db
    words = " ".join(["=?utf-8?q?=D0=B5=00?="] * 2_000)  # 2,000 encoded words of a Cyrillic е and a NUL
    subject = f"=?utf-8?q?Question_about_personal_data=00_=ED=A0=80?= {words}"
    body = "Кому вы передаёте мой телефон?\x00 <script>alert(1)</script> " + "ж" * 1_000_000
    bot.account.append(raw_mail(f"From: {IVAN}\nSubject: {subject}\nMessage-ID: <letter@mail.ru>\n"
                                "Content-Type: text/plain; charset=utf-8", body))
    legitimate_optout(bot)
    bot.add_user(ANNA, marketing_consent=True)

    report = bot.run()

    assert report.temporary_failure is None
    anna_opted_out(bot)
    [question] = [r for r in bot.requests() if r.kind == "question"]
    assert (question.state, question.reason) == ("review", "awaiting_answer")
    assert question.letter_subject is not None and question.letter_text is not None
    assert question.letter_subject.startswith("Question about personal data")
    assert len(question.letter_subject) <= 998 and len(question.letter_text) <= 32 * 1024
    for kept in (question.letter_subject, question.letter_text):
        assert "\x00" not in kept and not any("\ud800" <= c <= "\udfff" for c in kept)
    assert "<script>" in question.letter_text  # kept as the person wrote it; the console escapes it


# 3. Slow input: each crafted class at 1 MB, in one pass, with a request behind them


@pytest.mark.timeout(240)
def test_crafted_slow_input_at_one_megabyte_does_not_hold_up_the_pass(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(extra="", trust='verification = "never"')
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    bot.add_user(ANNA, marketing_consent=True)
    for build in CRAFTED.values():
        bot.account.append(build(IVAN, 1_000_000))
    legitimate_optout(bot)

    report = bot.run()

    assert report.temporary_failure is None and report.requests == len(CRAFTED) + 1
    assert not any(r.reason and ":" in r.reason for r in bot.requests())  # none failed; all were decided
    anna_opted_out(bot)


# 4. Our address never carries a stranger's words


def test_the_reply_subject_is_ours_whatever_the_request_said(guarded: Bot) -> None:
    bot = guarded
    lure = "Unsubscribe - your account is blocked, restore it at https://evil.example/login"
    bot.account.append(mail(IVAN, lure, "Restore your account at https://evil.example/login"))  # forged From
    legitimate_optout(bot)

    bot.run()

    [to_ivan] = [m for m in bot.replies() if m["To"] == IVAN]
    assert "evil" not in str(to_ivan["Subject"]) and "blocked" not in str(to_ivan["Subject"])
    assert "evil" not in bot.reply_text(to_ivan)
    ivan = bot.user(IVAN)
    assert ivan is not None
    [row] = [r for r in bot.requests() if r.user_id == ivan.id]
    assert str(to_ivan["Subject"]).endswith(f"(request #{row.id})")
    assert to_ivan["In-Reply-To"]  # still threaded
    anna_opted_out(bot)


# 5. Erasure and privacy


def test_erasure_scrubs_replies_to_old_addresses_and_keeps_only_hashed_message_ids(guarded: Bot) -> None:
    bot = guarded
    new = "ivan.new@mail.ru"
    bot.account.append(dmarc_pass(mail(IVAN, "Personal data update", f"E-mail: {new}",
                                       message_id=f"<{IVAN.replace('@', '.')}.1@mail.ru>"), "mail.ru"))
    bot.run()
    [challenge] = [m for m in bot.replies() if m["To"] == new]
    reply_to(bot, challenge, new, "да")
    bot.run()
    assert bot.user(new) is not None
    bot.account.append(dmarc_pass(mail(new, "Withdrawal of consent"), "mail.ru"))
    bot.write_config(trust=TRUST, erasure_delay_days=0)
    bot.run()
    bot.run()  # the erasure date (receipt + 0 days) has come

    assert bot.user(new) is None and bot.user(IVAN) is None
    for row in bot.outbox():
        if row.request_id is not None and any(r.id == row.request_id and r.kind != "optout" for r in bot.requests()):
            assert row.recipient == "erased" and row.data == b""
    ivan_rows = [r for r in bot.requests() if r.kind in ("update", "withdraw", "confirm")]
    assert ivan_rows and all(r.message_id is None and r.message_ref for r in ivan_rows)
    listed = bot.cli("requests", "list", "--format", "json")
    assert IVAN.split("@")[0] not in listed.stdout and "ivan" not in listed.stdout

    bot.account.append(dmarc_pass(mail(IVAN, "Personal data update", "Телефон: 8 701 000 00 00",
                                       message_id=f"<{IVAN.replace('@', '.')}.1@mail.ru>"), "mail.ru"))
    redelivered = bot.run()
    assert redelivered.duplicates == 1  # the hash still recognises the copy


def test_a_lookalike_of_another_users_address_in_the_letter_sends_it_to_review(guarded: Bot) -> None:
    bot = guarded
    bot.account.append(dmarc_pass(mail(IVAN, "Personal data update", "Телефон: 8 701 765 43 21\n"
                                       "Прошу также удалить anna@example\uff0ekz"), "mail.ru"))
    legitimate_optout(bot)

    bot.run()

    [update] = [r for r in bot.requests() if r.kind == "update"]
    assert (update.state, update.reason) == ("review", "names_another_user")
    ivan_untouched(bot)
    anna_opted_out(bot)


def test_forged_floods_cannot_lock_the_owner_out(guarded: Bot) -> None:
    bot = guarded
    bot.write_config(trust=TRUST + "\nmax_replies_per_sender_per_day = 3")
    for _ in range(10):
        bot.account.append(via_mx(mail(IVAN, "Отзыв согласия")))  # forged: no authentication
    for _ in range(5):
        bot.account.append(via_mx(mail(IVAN, "Отписаться")))  # forged opt-outs are applied and answered
    bot.run()

    challenges = [m for m in bot.replies() if m["To"] == IVAN and "[DSR-" in str(m["Subject"])]
    assert len(challenges) == 1  # one open challenge per user and intent
    states = by_state(bot)
    assert len([r for r in states["rejected"] if r.reason == "challenge_already_open"]) == 9

    bot.account.append(dmarc_pass(mail(IVAN, "Обновление персональных данных", "Телефон: 8 701 765 43 21"),
                                  "mail.ru"))
    legitimate_optout(bot)
    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77017654321"  # the owner's authenticated request went through
    [update] = [r for r in bot.requests() if r.kind == "update"]
    assert update.state == "completed"
    anna_opted_out(bot)


# 6. Automated reports are never requests


MDN_OUTLOOK = """From: Ivan <ivan@mail.ru>
To: support@smarthings.kz
Subject: Read: Personal data update
Date: Wed, 25 Nov 2026 10:05:00 +0500
Message-ID: <000001db3f2a$6e8e4e70$@mail.ru>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification;
\tboundary="----=_NextPart_000_0001_01DB3F2A.6E8E4E70"
X-Mailer: Microsoft Outlook 16.0
Thread-Index: AdsvKm6OAAAAAAAA
Content-Language: ru

This is a multipart message in MIME format.

------=_NextPart_000_0001_01DB3F2A.6E8E4E70
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 7bit

Your message

  To: support@smarthings.kz
  Subject: Personal data update
  Sent: Wednesday, November 25, 2026 10:00 AM (UTC+05:00) Astana

was read on Wednesday, November 25, 2026 10:05 AM (UTC+05:00) Astana.

------=_NextPart_000_0001_01DB3F2A.6E8E4E70
Content-Type: message/disposition-notification

Reporting-UA: Microsoft Outlook 16.0
Final-Recipient: rfc822;ivan@mail.ru
Original-Message-ID: <request-1@mail.ru>
Disposition: manual-action/MDN-sent-manually; displayed

------=_NextPart_000_0001_01DB3F2A.6E8E4E70--
"""

MDN_THUNDERBIRD = """From: Ivan <ivan@mail.ru>
Subject: =?UTF-8?B?0KPQstC10LTQvtC80LvQtdC90LjQtSDQviDQv9GA0L7Rh9GC0LXQvdC40Lg=?=
 =?UTF-8?B?ICjQvtGC0L7QsdGA0LDQttC10L3Qvik6INCe0YLQt9GL0LIg0YHQvtCz0LvQsNGB0LjRjw==?=
To: support@smarthings.kz
Message-ID: <5f1c2a3b-mdn@mail.ru>
Date: Wed, 25 Nov 2026 10:06:00 +0500
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification;
 boundary="------------tb0mdn"
User-Agent: Mozilla Thunderbird

This is a multi-part message in MIME format.
--------------tb0mdn
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

Это уведомление о прочтении отправленного вами письма.

--------------tb0mdn
Content-Type: message/disposition-notification; name="MDNPart2.txt"
Content-Disposition: inline
Content-Transfer-Encoding: 7bit

Reporting-UA: mail.ru; Mozilla Thunderbird
Final-Recipient: rfc822;ivan@mail.ru
Original-Message-ID: <request-2@mail.ru>
Disposition: manual-action/MDN-sent-manually; displayed

--------------tb0mdn
Content-Type: text/rfc822-headers; name="MDNPart3.txt"
Content-Disposition: inline
Content-Transfer-Encoding: 7bit

Subject: Отзыв согласия
Message-ID: <request-2@mail.ru>

--------------tb0mdn--
"""


def test_read_receipts_abuse_reports_and_delivery_reports_are_left_alone(guarded: Bot, shared_dir: object) -> None:
    from pathlib import Path

    bot = guarded
    corpora = Path(str(shared_dir)) / "corpora"
    reports = [MDN_OUTLOOK.replace("\n", "\r\n").encode(), MDN_THUNDERBIRD.replace("\n", "\r\n").encode(),
               (corpora / "sisimai-set-of-emails" / "bsd" / "arf-01.eml").read_bytes(),
               (corpora / "mailgun-flanker" / "complaints" / "aol.eml").read_bytes(),
               (corpora / "mailgun-flanker" / "disposition-notification.eml").read_bytes(),
               (corpora / "sisimai-set-of-emails" / "bsd" / "rfc3464-01.eml").read_bytes()]
    for report in reports:
        bot.account.append(dmarc_pass(report, "mail.ru"))
    legitimate_optout(bot)
    before = bot.account.snapshot()

    bot.run()

    assert [r.kind for r in bot.requests()] == ["optout"]  # Anna's; no report became a request
    ivan_untouched(bot)
    assert not any(m.rcpt_tos == [IVAN] for m in bot.smtp.messages)
    after = bot.account.snapshot()
    assert {uid: after[uid] for uid in list(before)[: len(reports)]} == dict(list(before.items())[: len(reports)])
    anna_opted_out(bot)


# 7. A reply to our own message is a person talking to us


@pytest.mark.parametrize(
    ("language_subject", "protest"),
    [("Personal data update", "Я не отправлял этот запрос!"),
     ("Дербес деректерді өңдеуге келісімді қайтарып алу", "Мен бұл сұрауды жібермедім!")],
)
def test_a_protest_in_reply_to_our_message_goes_to_review(guarded: Bot, language_subject: str, protest: str) -> None:
    bot = guarded
    bot.account.append(dmarc_pass(mail(IVAN, "Отписаться"), "mail.ru"))
    bot.run()
    [applied] = [m for m in bot.replies() if m["To"] == IVAN]
    # A real client's reply keeps the marker the person first wrote, and threads to our message.
    reply_to(bot, applied, IVAN, protest, subject=f"Re: {language_subject}")
    legitimate_optout(bot)

    bot.run()

    [protest_row] = [r for r in bot.requests() if r.related_request_id is not None]
    assert (protest_row.state, protest_row.reason) == ("review", "reply_to_our_message")
    user = bot.user(IVAN)
    assert user is not None and user.processing_consent and user.phone == "+77011112233"
    assert len([m for m in bot.smtp.messages if m.rcpt_tos == [IVAN]]) == 1  # no answer, no challenge
    assert bot.cli("requests", "list", "--state", "review").returncode == 0
    anna_opted_out(bot)


@pytest.mark.parametrize("refusal", ["ЖОҚ!", "Нет, я не отправлял этот запрос", "No. I did not send this."])
def test_an_owner_answering_no_to_a_forged_requests_challenge_confirms_nothing(guarded: Bot, refusal: str) -> None:
    bot = guarded
    bot.account.append(via_mx(mail(IVAN, "Дербес деректерді өңдеуге келісімді қайтарып алу")))  # forged
    bot.run()
    [challenge] = [m for m in bot.replies() if m["To"] == IVAN]
    reply_to(bot, challenge, IVAN, refusal)
    legitimate_optout(bot)

    bot.run()

    ivan_untouched(bot)
    [withdrawal] = [r for r in bot.requests() if r.kind == "withdraw"]
    assert (withdrawal.state, withdrawal.reason) == ("review", "owner_objected")
    [answer] = [r for r in bot.requests() if r.kind == "confirm"]
    assert (answer.state, answer.reason) == ("rejected", "objection")
    anna_opted_out(bot)


# 8. Our mail as other mail software reads it


def test_a_reply_to_its_sender_keeps_the_thread(guarded: Bot) -> None:
    bot = guarded
    bot.account.append(dmarc_pass(mail(IVAN, "Personal data update", "Phone: +7 701 765 43 21",
                                       headers={"References": "<first@mail.ru> <second@mail.ru>",
                                                "In-Reply-To": "<second@mail.ru>"}), "mail.ru"))
    bot.run()
    [applied] = bot.replies()
    assert applied["Auto-Submitted"] == "auto-replied" and applied["In-Reply-To"] is not None
    assert str(applied["References"]).split()[:2] == ["<first@mail.ru>", "<second@mail.ru>"]


def test_replies_keep_the_thread_and_notices_stand_alone(guarded: Bot) -> None:
    bot = guarded
    new = "ivan.new@mail.ru"
    bot.account.append(dmarc_pass(mail(IVAN, "Personal data update", f"E-mail: {new}",
                                       headers={"References": "<first@mail.ru> <second@mail.ru>",
                                                "In-Reply-To": "<second@mail.ru>"}), "mail.ru"))
    bot.run()
    [challenge_new] = [m for m in bot.replies() if m["To"] == new]
    assert challenge_new["Auto-Submitted"] == "auto-generated" and challenge_new["In-Reply-To"] is None
    reply_to(bot, challenge_new, new, "yes")
    bot.run()

    [notice] = [m for m in bot.replies() if m["To"] == IVAN]
    assert notice["Auto-Submitted"] == "auto-generated" and notice["In-Reply-To"] is None
    # The new address never sent the letter: the answer to it starts its own thread.
    [applied] = [m for m in bot.replies() if m["To"] == new and "[DSR-" not in str(m["Subject"])]
    assert applied["Auto-Submitted"] == "auto-generated"
    assert (applied["In-Reply-To"], applied["References"]) == (None, None)
    [request] = [r for r in bot.requests() if r.kind == "update"]
    assert request.thread is None  # closed: the thread (Message-IDs name people) is forgotten
    for sent in bot.smtp.messages:
        parsed = email.message_from_bytes(sent.data, policy=default_policy)
        assert isinstance(parsed, EmailMessage) and not parsed.defects
    assert message_id_of(bot.smtp.messages[0].data)
    assert bot.account.snapshot(PROCESSED)


# 9. Consent means yes (issue 18): only the owner's clear yes confirms; automated mail never does


def forged_withdrawal_challenge(bot: Bot) -> EmailMessage:
    """A forged withdrawal in Ivan's name, run once: its challenge is at the SMTP server, nothing changed."""
    bot.account.append(via_mx(mail(IVAN, "Withdrawal of consent to the processing of personal data")))
    bot.run()
    [challenge] = [m for m in bot.replies() if m["To"] == IVAN]
    return challenge


def waiting_withdrawal(bot: Bot) -> Request:
    [withdrawal] = [r for r in bot.requests() if r.kind == "withdraw"]
    return withdrawal


@pytest.mark.parametrize(
    ("subject", "extra"),
    [
        ("Re: {subject}", {"Precedence": "auto_reply"}),
        ("Re: {subject}", {"X-Autogenerated": "Reply"}),
        ("Re: {subject}", {"X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"}),
        ("Re: {subject}", {"X-Loop": "helpdesk@mail.ru"}),
        ("[Ticket #4711] Re: {subject}", {}),
        ("Автоматический ответ: {subject}", {}),
        ("Автоматты жауап: {subject}", {}),
    ],
    ids=["precedence-auto-reply", "x-autogenerated", "exchange-rule", "x-loop", "helpdesk-ticket",
         "outlook-ru", "outlook-kk"],
)
def test_an_automated_answer_from_the_owners_mailbox_confirms_nothing_and_is_not_answered(
        guarded: Bot, subject: str, extra: dict[str, str]) -> None:
    bot = guarded
    challenge = forged_withdrawal_challenge(bot)
    mid = str(challenge["Message-ID"])
    # From the owner's own, authenticated mailbox, threaded to the challenge and carrying its token.
    bot.account.append(dmarc_pass(mail(IVAN, subject.format(subject=challenge["Subject"]), "Спасибо, ваше письмо "
                                       "получено.", headers={"In-Reply-To": mid, "References": mid, **extra}),
                                  "mail.ru"))
    legitimate_optout(bot)

    bot.run()

    ivan_untouched(bot)
    assert waiting_withdrawal(bot).state == "awaiting_confirmation"  # still waits for its owner
    [automated] = [r for r in bot.requests() if r.kind == "confirm"]
    assert automated.state == "ignored" and automated.reason
    assert len([m for m in bot.smtp.messages if m.rcpt_tos == [IVAN]]) == 1  # the challenge, and no answer
    anna_opted_out(bot)


@pytest.mark.parametrize("refusal", [
    "Добрый день!\nНет, я против. Ничего не удаляйте.",
    "Hello,\nNO. I never asked for this.",
    "Hi - please don't do this",
    "Здравствуйте. Я такого не просил, отзывать согласие не надо!",
])
def test_the_owners_no_in_any_position_confirms_nothing(guarded: Bot, refusal: str) -> None:
    bot = guarded
    challenge = forged_withdrawal_challenge(bot)
    reply_to(bot, challenge, IVAN, refusal)
    legitimate_optout(bot)

    bot.run()

    ivan_untouched(bot)
    user = bot.user(IVAN)
    assert user is not None and user.erasure_due_at is None  # no erasure scheduled
    withdrawal = waiting_withdrawal(bot)
    assert (withdrawal.state, withdrawal.reason) == ("review", "owner_objected")
    anna_opted_out(bot)


@pytest.mark.parametrize("words", ["Что это за письмо? Я ничего такого", "Спасибо", "Delete my orders too",
                                   "Иә\nБірақ телефонды да өзгертіңіз"])
def test_a_reply_that_is_neither_yes_nor_no_waits_for_a_person_with_its_words(guarded: Bot, words: str) -> None:
    bot = guarded
    challenge = forged_withdrawal_challenge(bot)
    reply_to(bot, challenge, IVAN, words)

    bot.run()

    ivan_untouched(bot)
    withdrawal = waiting_withdrawal(bot)
    assert (withdrawal.state, withdrawal.reason) == ("review", "unclear_confirmation")
    assert withdrawal.owner_reply == words  # shown to the reviewer (masked in the console until revealed)
    [answer] = [r for r in bot.requests() if r.kind == "confirm"]
    assert (answer.state, answer.reason) == ("rejected", "unclear")
    assert len([m for m in bot.smtp.messages if m.rcpt_tos == [IVAN]]) == 1  # nothing more is sent
    # The request stays open until a person decides.
    assert bot.cli("requests", "approve", str(withdrawal.id)).returncode == 0
    user = bot.user(IVAN)
    assert user is not None and not user.processing_consent
    assert next(r for r in bot.requests() if r.id == withdrawal.id).owner_reply is None  # closed: forgotten


def test_an_empty_html_reply_from_a_phone_confirms(guarded: Bot) -> None:
    bot = guarded
    challenge = forged_withdrawal_challenge(bot)
    mid = str(challenge["Message-ID"])
    html = ('<div dir="auto"></div><div class="gmail_quote"><div dir="ltr">On Mon, SmartThings wrote:</div>'
            '<blockquote class="gmail_quote">If you did not send this request, do nothing.</blockquote></div>')
    bot.account.append(dmarc_pass(mail(IVAN, f"Re: {challenge['Subject']}", html=html,
                                       headers={"In-Reply-To": mid, "References": mid}), "mail.ru"))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and not user.processing_consent and user.erasure_due_at is not None
    assert waiting_withdrawal(bot).state == "completed"


@pytest.mark.parametrize("words", [
    "I do not want to withdraw my consent", "I am not going to withdraw my consent",
    "Я не прошу отозвать согласие", "Просто отпишите, я не хочу отозвать согласие!",
    "Мен келісімімді кері қайтарып аламын деп жазған жоқпын",
])
def test_an_optout_saying_it_does_not_withdraw_consent_withdraws_nothing(guarded: Bot, words: str) -> None:
    bot = guarded
    bot.account.append(dmarc_pass(mail(IVAN, "Unsubscribe", words), "mail.ru"))  # the owner's own, authenticated

    bot.run()

    [request] = bot.requests()
    assert (request.intents, request.state) == (["optout"], "completed")
    user = bot.user(IVAN)
    assert user is not None and user.processing_consent and not user.marketing_consent
    assert user.erasure_due_at is None


def test_a_withdrawal_found_only_in_the_words_waits_for_the_owners_yes_and_the_challenge_quotes_it(
        guarded: Bot) -> None:
    bot = guarded
    bot.account.append(dmarc_pass(mail(IVAN, "Отписаться", "Отпишите меня. И отзываю своё согласие на обработку."),
                                  "mail.ru"))  # authenticated: still not carried out on receipt

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.processing_consent and not user.marketing_consent  # the opt-out is done
    [request] = bot.requests()
    assert (request.state, request.intents) == ("awaiting_confirmation", ["optout", "withdraw"])
    [challenge] = [m for m in bot.replies() if m["To"] == IVAN]
    text = bot.reply_text(challenge)
    assert "Мы поняли это из слов вашего письма:\n    «отзываю свое согласие»" in text
    reply_to(bot, challenge, IVAN, "Да, подтверждаю")
    bot.run()
    user = bot.user(IVAN)
    assert user is not None and not user.processing_consent and user.erasure_due_at is not None


def test_a_reply_to_a_challenge_sent_before_the_upgrade_is_recognised_inside_encoded_words(guarded: Bot) -> None:
    """The old 96-character Message-ID, folded into encoded words by the person's client, the token gone from the
    subject: still the owner's confirmation (for confirm_expiry_days after the upgrade)."""
    bot = guarded
    challenge = forged_withdrawal_challenge(bot)
    token = str(challenge["Subject"]).split("[")[-1].rstrip("]")
    request_id = waiting_withdrawal(bot).id
    tag = bot.keyring.digest("message-id", f"{request_id}:challenge_o")[:20]
    before_upgrade = f"<dsr.{request_id}.challenge_o.{tag}.{token}@smarthings.kz>"
    folded = EmailMessage(policy=SMTP)
    folded["From"], folded["To"], folded["Subject"] = IVAN, "support@smarthings.kz", "Re: Подтвердите запрос"
    folded["Message-ID"] = "<reply-1@mail.ru>"
    folded["In-Reply-To"], folded["References"] = before_upgrade, before_upgrade
    folded.set_content("Да")
    data = folded.as_bytes()
    assert b"In-Reply-To: =?utf-8?q?" in data and b"DSR-" not in data
    bot.account.append(dmarc_pass(data, "mail.ru"))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and not user.processing_consent  # confirmed
    assert waiting_withdrawal(bot).state == "completed"


def test_a_reply_whose_only_content_is_an_attachment_confirms_nothing(guarded: Bot) -> None:
    """A scanned objection: no words, but not an empty "Reply and Send" either."""
    bot = guarded
    challenge = forged_withdrawal_challenge(bot)
    mid = str(challenge["Message-ID"])
    scanned = EmailMessage(policy=SMTP)
    scanned["From"], scanned["To"], scanned["Subject"] = IVAN, "support@smarthings.kz", f"Re: {challenge['Subject']}"
    scanned["Message-ID"], scanned["In-Reply-To"], scanned["References"] = "<scan-1@mail.ru>", mid, mid
    scanned.set_content("")
    scanned.add_attachment(b"%PDF-1.4 I object", maintype="application", subtype="pdf", filename="objection.pdf")
    bot.account.append(dmarc_pass(scanned.as_bytes(), "mail.ru"))

    bot.run()

    ivan_untouched(bot)
    assert (waiting_withdrawal(bot).state, waiting_withdrawal(bot).reason) == ("review", "unclear_confirmation")
