"""End to end: mail APPENDed to a real Dovecot, one run of the bot, then the store, the SMTP server
and the mailbox read back."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from dsr_mailbot.mailbox.imap import ImapSource
from dsr_mailbot.store.models import Request, RequestState, utcnow
from tests.harness import PROCESSED, Bot, mail, message_id_of

IVAN = "ivan.petrov@example.ru"


def test_russian_update_is_applied_answered_and_archived(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233", surname="Петров", first_name="Иван")
    request = mail(f"Иван <{IVAN}>", "Обновление персональных данных",
                   "Здравствуйте!\nТелефон: 8 (701) 765-43-21\nФИО: Петров Иван Сергеевич\n")
    bot.account.append(request)

    report = bot.run()

    user = bot.user(IVAN)
    assert user is not None
    assert (user.phone, user.surname, user.first_name, user.patronymic) == (
        "+77017654321", "Петров", "Иван", "Сергеевич")
    [reply] = bot.replies()
    assert bot.smtp.messages[0].rcpt_tos == [IVAN]
    assert reply["To"] == IVAN
    assert "support@smarthings.kz" in reply["From"]
    [row] = bot.requests()
    assert reply["Subject"] == f"Ваши персональные данные обновлены (запрос № {row.id})"  # never the sender's words
    assert reply["In-Reply-To"] == message_id_of(request)
    assert message_id_of(request) in reply["References"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Content-Language"] == "ru"
    text = bot.reply_text(reply)
    assert "Мы обновили ваши персональные данные" in text and "+77017654321" in text
    assert bot.account.snapshot("INBOX") == {}
    assert len(bot.account.snapshot(PROCESSED)) == 1
    [row] = bot.requests()
    assert (row.kind, row.state, row.language, row.outcome) == ("update", "completed", "ru", "update_applied")
    assert row.reply_address is None  # a closed request keeps no address
    assert report.replies_sent == 1 and report.temporary_failure is None


def test_a_kazakh_update_with_possessive_labels_is_applied(bot_any_db: Bot) -> None:
    """«Менің жаңа телефоным: …» is both the update phrase and the field's label."""
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233", surname="Петров")
    bot.account.append(mail(IVAN, "Дербес деректерді жаңарту",
                            "Сәлеметсіз бе!\nМенің жаңа телефоным: 8 701 765 43 21\nТегім: Сейітов\n"))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and (user.phone, user.surname) == ("+77017654321", "Сейітов")
    [row] = bot.requests()
    assert (row.state, row.outcome, row.language) == ("completed", "update_applied", "kk")


LANGUAGE_CASES = [
    ("update", "en", "Personal data update", "Phone: +7 701 765 43 21", "We have updated your personal data"),
    ("update", "ru", "Обновление персональных данных", "Телефон: +7 701 765 43 21", "Мы обновили"),
    ("update", "kk", "Дербес деректерді жаңарту", "Телефон нөмірі: +7 701 765 43 21", "жаңартылды"),
    ("withdraw", "en", "Withdrawal of consent to the processing of personal data", "", "will be destroyed on"),
    ("withdraw", "ru", "Отзыв согласия на обработку персональных данных", "", "будут уничтожены"),
    ("withdraw", "kk", "Дербес деректерді өңдеуге келісімді кері қайтарып алу", "", "жойылады"),
    ("optout", "en", "Unsubscribe", "Please stop the newsletters.", "opted out"),
    ("optout", "ru", "Отписаться от рассылки", "Не присылайте рекламу.", "отказались от информационных"),
    ("optout", "kk", "Жазылымнан бас тарту", "Жарнама жібермеңіз.", "бас тарттыңыз"),
]


@pytest.mark.parametrize(("kind", "language", "subject", "body", "phrase"), LANGUAGE_CASES)
def test_each_kind_in_each_language(bot: Bot, kind: str, language: str, subject: str, body: str, phrase: str) -> None:
    bot.add_user(IVAN, phone="+77011112233", marketing_consent=True)
    bot.account.append(mail(IVAN, subject, body))

    bot.run()

    [row] = bot.requests()
    assert (row.kind, row.language, row.state) == (kind, language, "completed")
    [reply] = bot.replies()
    assert reply["Content-Language"] == language
    assert phrase in bot.reply_text(reply)
    user = bot.user(IVAN)
    assert user is not None
    if kind == "update":
        assert user.phone == "+77017654321"
    if kind == "withdraw":
        assert not user.processing_consent and not user.marketing_consent
        assert user.erasure_due_at is not None
        assert (user.erasure_due_at - row.received_at).days == 30
    if kind == "optout":
        assert not user.marketing_consent and user.processing_consent


RAW_SUBJECTS = [
    b"Subject: =?UTF-8?B?" + base64.b64encode("Отв: Обновление персональных данных".encode()) + b"?=",
    b"Subject: Fwd: [SmartThings #123] RE: =?windows-1251?Q?=CE=E1=ED=EE=E2=EB=E5=ED=E8=E5_"
    b"=EF=E5=F0=F1=EE=ED=E0=EB=FC=ED=FB=F5_=E4=E0=ED=ED=FB=F5?=",
    b"Subject: =?koi8-r?B?" + base64.b64encode("Обновление персональных данных".encode("koi8-r")) + b"?=",
    b"Subject: " + "Обновление персональных данных".encode("cp1251"),  # raw 8-bit, no RFC 2047
]


@pytest.mark.parametrize("subject_line", RAW_SUBJECTS, ids=["utf8-b", "cp1251-q-prefixed", "koi8r-b", "raw-cp1251"])
def test_encoded_and_prefixed_subjects_are_recognised(bot: Bot, subject_line: bytes) -> None:
    bot.add_user(IVAN)
    raw = (
        b"From: " + IVAN.encode() + b"\r\nTo: support@smarthings.kz\r\n" + subject_line + b"\r\n"
        b"Message-ID: <enc-1@client.example>\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=windows-1251\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Телефон: 8 701 765 43 21\r\n".encode("cp1251")
    )
    bot.account.append(raw)

    bot.run()

    [row] = bot.requests()
    assert (row.kind, row.state, row.language) == ("update", "completed", "ru")
    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77017654321"


def test_html_only_body_is_read(bot: Bot) -> None:
    bot.add_user(IVAN)
    html = ("<html><head><style>p{color:red}</style></head><body><p>Добрый день!</p>"
            "<div>Телефон: <b>+7&nbsp;701&nbsp;765&nbsp;43&nbsp;21</b></div>"
            "<div>Фамилия: Сидоров</div><script>var phone='+7 700 000 00 00'</script></body></html>")
    bot.account.append(mail(IVAN, "Обновление персональных данных", html=html))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and (user.phone, user.surname) == ("+77017654321", "Сидоров")


def test_quoted_history_is_not_applied(bot: Bot) -> None:
    bot.add_user(IVAN, phone="+77011112233")
    body = (
        "Телефон: +7 701 765 43 21\n\n"
        "чт, 12 сент. 2024 г. в 10:15, Support <support@smarthings.kz>:\n"
        "> Телефон: +7 702 000 00 00\n> Фамилия: Чужой\n"
    )
    bot.account.append(mail(IVAN, "Re: Обновление персональных данных", body))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77017654321" and user.surname is None


def test_unknown_sender_is_told_nothing_is_held_and_nothing_is_created(bot: Bot) -> None:
    bot.add_user(IVAN)
    bot.account.append(mail("stranger@example.org", "Personal data update", "Phone: +7 701 765 43 21"))

    bot.run()

    assert bot.user("stranger@example.org") is None
    [row] = bot.requests()
    assert (row.state, row.outcome, row.user_id) == ("rejected", "unknown_sender", None)
    [reply] = bot.replies()
    assert reply["To"] == "stranger@example.org"
    assert "hold no personal data" in bot.reply_text(reply)


def test_invalid_phone_changes_nothing_and_reply_offers_a_form(bot: Bot) -> None:
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(mail(IVAN, "Обновление персональных данных", "Телефон: 12345"))

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77011112233"
    [row] = bot.requests()
    assert (row.state, row.outcome) == ("rejected", "update_not_understood")
    text = bot.reply_text(bot.replies()[0])
    assert "Телефон: значение не удалось распознать" in text
    assert "\nТелефон:\nE-mail:\nФамилия:\nИмя:\nОтчество:\n" in text


def uids_asked(monkeypatch: pytest.MonkeyPatch, *methods: str) -> list[int]:
    """The UIDs these ImapSource methods are asked for (their first argument: one UID or a list), in order.

    The methods still do their work against Dovecot; this only notes what was asked.
    """
    asked: list[int] = []
    for name in methods:
        real = getattr(ImapSource, name)

        def recording(self: ImapSource, uids: int | list[int], *args: object, _real: Any = real) -> Any:
            asked.extend(uids if isinstance(uids, list) else [uids])
            return _real(self, uids, *args)

        monkeypatch.setattr(ImapSource, name, recording)
    return asked


def test_ordinary_support_mail_is_left_exactly_as_it_was(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> None:
    bot.add_user(IVAN)
    ordinary = [
        (mail("buyer@example.org", "Где мой заказ?", "Когда доставка?"), ()),
        (mail("client@example.net", "Re: Доставка", "Спасибо", html="<p>Спасибо</p>"), (b"\\Seen",)),
        (mail("x@example.com", "Invoice", "see attached"), (b"\\Flagged", b"$Label1")),
        (mail("ooo@example.com", "Automatic reply: Re: Personal data update", "I am away"), ()),
    ]
    for data, flags in ordinary:
        bot.account.append(data, flags=flags)
    bot.account.append(mail(IVAN, "Отписаться", "Хватит рекламы"))
    before = bot.account.snapshot("INBOX")
    fetched_whole = uids_asked(monkeypatch, "fetch", "fetch_many")
    headers_whole = uids_asked(monkeypatch, "complete_records")

    report = bot.run()

    after = bot.account.snapshot("INBOX")
    request_uid = max(before)
    assert after == {uid: v for uid, v in before.items() if uid != request_uid}
    assert fetched_whole == [request_uid]
    # Only the triage's fields of ordinary mail were read; the whole header block of the two with a marker.
    assert headers_whole == sorted(before)[-2:]
    # The out-of-office answer carries our marker: recorded as ignored, never answered, left in place.
    assert report.scanned == 5 and dict(report.states) == {"ignored": 1, "completed": 1}
    assert len(bot.smtp.messages) == 1


def test_a_message_whose_triage_fields_pass_the_cap_is_read_whole_and_left_as_it_was(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attacker's 100 KB References (encoded words, look-alikes): past the scan's cap, the whole block decides."""
    from dsr_mailbot.mailbox.source import FIELDS_CAP_BYTES

    bot.add_user(IVAN, marketing_consent=True)
    references = " ".join(f"<=?utf-8?q?r{n}=D0=B5?=@shop.kz>" for n in range(3_000))  # Cyrillic е, as q-words
    assert len(references) > FIELDS_CAP_BYTES
    huge = mail("buyer@example.org", "Re: Доставка", "Спасибо", headers={"References": references})
    bot.account.append(huge)
    bot.account.append(mail(IVAN, "Отписаться"))
    before = bot.account.snapshot("INBOX")
    completed = uids_asked(monkeypatch, "complete_records")

    report = bot.run()

    huge_uid, request_uid = sorted(before)
    assert completed == [huge_uid, request_uid]  # its capped fields were not trusted to say "ordinary"
    assert bot.account.snapshot("INBOX") == {huge_uid: before[huge_uid]}  # ordinary: untouched, in place
    assert dict(report.states) == {"completed": 1} and len(bot.smtp.messages) == 1


def test_second_run_is_a_no_op(bot: Bot) -> None:
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(mail(IVAN, "Unsubscribe"))
    bot.account.append(mail("someone@example.org", "Hello"))
    bot.run()
    events, replies = len(bot.events()), len(bot.smtp.messages)

    second = bot.run()

    assert (second.scanned, second.requests, second.replies_sent) == (0, 0, 0)
    assert len(bot.events()) == events and len(bot.smtp.messages) == replies
    assert len(bot.requests()) == 1


def test_smtp_down_reply_goes_out_next_run_and_change_is_applied_once(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.add_user(IVAN, phone="+77011112233")
    bot.account.append(mail(IVAN, "Обновление персональных данных", "Телефон: 8 701 765 43 21"))
    bot.smtp.stop()

    first = bot.run()

    assert first.temporary_failure is not None and "SMTP" in first.temporary_failure
    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77017654321"
    [queued] = bot.outbox()
    assert queued.state == "queued" and queued.attempts == 1
    assert bot.account.snapshot("INBOX") == {}

    bot.smtp.start()
    second = bot.run()

    assert second.temporary_failure is None and second.replies_sent == 1
    [reply] = bot.replies()
    assert reply["Message-ID"] == queued.message_id
    assert [e.event for e in bot.events()].count("request_completed") == 1
    assert len(bot.requests()) == 1


def test_a_copy_of_a_handled_request_is_not_applied_again(bot: Bot) -> None:
    bot.add_user(IVAN, marketing_consent=True)
    request = mail(IVAN, "Withdrawal of consent")
    bot.account.append(request)
    bot.run()
    bot.account.append(request)  # the same message again: redelivered, or copied back by hand

    report = bot.run()

    assert report.duplicates == 1 and report.requests == 0
    assert len(bot.requests()) == 1 and len(bot.smtp.messages) == 1
    assert bot.account.snapshot("INBOX") == {}


def test_uidvalidity_change_does_not_reprocess_old_requests(bot: Bot) -> None:
    bot.add_user(IVAN, marketing_consent=True)
    old = mail(IVAN, "Unsubscribe")
    bot.account.append(old)
    bot.run()
    # The mailbox is rebuilt (as after a server migration): new UIDVALIDITY, and
    # the handled request is back in INBOX beside a new one.
    maildir = bot.account.dovecot.base / "mail" / bot.account.username
    old_validity = bot.account.uidvalidity()
    time.sleep(1.1)  # Dovecot derives a new UIDVALIDITY from the clock, in seconds
    for state_file in [maildir / "dovecot-uidlist", *maildir.glob("dovecot.index*")]:
        state_file.unlink()
    bot.account.append(old)
    bot.account.append(mail(IVAN, "Обновление персональных данных", "Фамилия: Новикова"))
    assert bot.account.uidvalidity() != old_validity

    report = bot.run()

    assert report.duplicates == 1 and report.requests == 1
    assert [r.kind for r in bot.requests()] == ["optout", "update"]
    assert "uidvalidity_changed" in [e.event for e in bot.events()]
    assert bot.account.snapshot("INBOX") == {}


def test_message_without_message_id_is_handled_once(bot: Bot) -> None:
    bot.add_user(IVAN, marketing_consent=True)
    raw = (f"From: {IVAN}\r\nTo: support@smarthings.kz\r\nSubject: Unsubscribe\r\n\r\nstop\r\n").encode()
    bot.account.append(raw)

    bot.run()
    bot.account.append(raw)
    again = bot.run()

    [row] = bot.requests()
    assert row.message_id is not None and row.message_id.startswith("<sha256-")
    assert again.duplicates == 1 and len(bot.smtp.messages) == 1


def test_huge_attachment_is_not_fetched_whole(bot: Bot) -> None:
    bot.write_config(extra="\n[limits]\nmax_message_bytes = 65536\n")
    bot.add_user(IVAN)
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage(policy=SMTP)
    msg["From"], msg["To"], msg["Subject"] = IVAN, "support@smarthings.kz", "Personal data update"
    msg["Message-ID"] = "<huge-1@client.example>"
    msg.set_content("Phone: +7 701 765 43 21\n")
    msg.add_attachment(b"\x00" * 2_000_000, maintype="application", subtype="octet-stream", filename="scan.bin")
    bot.account.append(msg.as_bytes())

    bot.run()

    user = bot.user(IVAN)
    assert user is not None and user.phone == "+77017654321"
    [parsed] = [e for e in bot.events() if e.event == "request_read"]
    assert parsed.detail["truncated"] is True


def test_the_audit_trail_records_how_each_due_date_was_counted(bot: Bot) -> None:
    from importlib.metadata import version

    bot.add_user(IVAN)
    bot.account.append(mail(IVAN, "Обновление персональных данных", "Телефон: +7 701 765 43 21"))

    bot.run()

    [request] = bot.requests()
    [read] = [e for e in bot.events() if e.event == "request_read"]
    assert read.detail["due_at"] == request.due_at.isoformat()
    assert read.detail["received_at"] == request.received_at.isoformat()
    assert (read.detail["deadline_profiles"], read.detail["calendars"], read.detail["timezone"]) == (
        ["ru-152fz", "kz"], {"ru-152fz": "RU", "kz": "KZ"}, "Asia/Almaty")
    assert read.detail["holidays_version"] == version("holidays") == "0.109"  # pinned exactly


def test_broken_mime_request_gets_a_clear_answer(bot: Bot) -> None:
    bot.add_user(IVAN)
    raw = (
        f"From: {IVAN}\r\nTo: support@smarthings.kz\r\nSubject: Personal data update\r\n"
        "Message-ID: <broken-1@client.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="missing"\r\n\r\n'
        "no boundary ever appears\r\nPhone: +7 701 765 43 21\r\n"
    ).encode()
    bot.account.append(raw)

    report = bot.run()

    [row] = bot.requests()
    assert row.state in {RequestState.COMPLETED, RequestState.REJECTED}
    assert report.replies_sent == 1


def test_mail_from_the_operator_itself_is_ignored_without_reply(bot: Bot) -> None:
    bot.account.append(mail("support@smarththings.kz", "Personal data update", "Phone: +7 701 765 43 21"))

    bot.run()

    [row] = bot.requests()
    assert (row.state, row.reason) == ("ignored", "from_operator_address")
    assert bot.smtp.messages == []


def test_processed_folder_is_created_when_missing(bot: Bot) -> None:
    bot.add_user(IVAN)
    assert PROCESSED not in bot.account.folders()
    bot.account.append(mail(IVAN, "Unsubscribe"))

    bot.run()

    assert PROCESSED in bot.account.folders()



def test_a_request_recorded_meanwhile_by_another_process_is_left_to_it(
    bot_any_db: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two overlapping runs: the database's unique Message-ID decides who handles the request."""
    from dsr_mailbot.pipeline import handle

    bot = bot_any_db
    bot.add_user(IVAN, marketing_consent=True)
    data = mail(IVAN, "Unsubscribe")
    bot.account.append(data)
    with bot.store.transaction() as session:  # the other process got there first
        session.add(Request(message_ref=bot.keyring.message_ref(message_id_of(data)), message_id=message_id_of(data),
                            source="other", uidvalidity=1, uid=1, kind="optout",
                            state="completed", language="en", received_at=utcnow(), due_at=utcnow(),
                            subject_ref="x"))
    # ... but only after this process looked for it.
    monkeypatch.setattr(handle, "find_request_by_ref", lambda _session, _ref: None)

    report = bot.run()

    assert report.requests == 0 and report.temporary_failure is None
    assert len(bot.requests()) == 1 and bot.smtp.messages == []
    user = bot.user(IVAN)
    assert user is not None and user.marketing_consent  # not applied by this process


# Group commits: new requests are recorded together and applied together; a failure redoes its group one by one


def commits_while_processing(bot: Bot, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the store's commits while the mailbox is processed (sending the replies comes after)."""
    from sqlalchemy import event

    from dsr_mailbot.pipeline import run, scan

    commits, inside = [0], [False]
    real = scan.process_mailbox

    def counted(*args: object, **kwargs: object) -> None:
        inside[0] = True
        try:
            real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            inside[0] = False

    def on_commit(_connection: object) -> None:
        commits[0] += inside[0]

    event.listen(bot.store.engine, "commit", on_commit)
    monkeypatch.setattr(run, "process_mailbox", counted)
    return commits


def test_a_backlog_of_new_requests_is_committed_a_group_at_a_time(bot_any_db: Bot,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bot = bot_any_db
    people = [f"user{n}@example.kz" for n in range(30)]
    for person in people:
        bot.add_user(person, marketing_consent=True)
        bot.account.append(mail(person, "Unsubscribe"))
    commits = commits_while_processing(bot, monkeypatch)

    report = bot.run()

    assert report.states == {"completed": 30} and report.replies_sent == 30
    # One at a time this took three commits per request (recorded, applied, cursor); a group takes two in all,
    # beside the pass's own few (cursor, archive bookkeeping, the lookup of the batch).
    assert commits[0] <= 8
    assert sorted(m.rcpt_tos[0] for m in bot.smtp.messages) == sorted(people)
    assert all(not (u := bot.user(p)) or not u.marketing_consent for p in people)
    assert bot.account.snapshot("INBOX") == {}


def test_a_request_failing_inside_a_group_is_rolled_back_and_set_aside_alone(
    bot_any_db: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dsr_mailbot import lifecycle
    from dsr_mailbot.pipeline import handle

    bot = bot_any_db
    people = ["a@example.kz", "b@example.kz", "c@example.kz"]
    for person in people:
        bot.add_user(person, marketing_consent=True)
        bot.account.append(mail(person, "Unsubscribe"))
    real_intake = lifecycle.intake

    def intake_failing_after_its_changes(ctx, session, row, headers, reading, **kw):  # type: ignore[no-untyped-def]
        done = real_intake(ctx, session, row, headers, reading, **kw)
        if headers.sender == "b@example.kz":
            session.flush()  # its opt-out, reply and events are written ... and must not survive
            raise RuntimeError("a surprise after the changes were made")
        return done

    monkeypatch.setattr(handle, "intake", intake_failing_after_its_changes)

    report = bot.run()

    assert report.states == {"completed": 2, "review": 1}
    [failed] = [r for r in bot.requests() if r.state == "review"]
    assert failed.reason == "intake:RuntimeError"
    b = bot.user("b@example.kz")
    assert b is not None and b.marketing_consent  # nothing of its half-done intake was committed
    assert sorted(m.rcpt_tos[0] for m in bot.smtp.messages) == ["a@example.kz", "c@example.kz"]
    assert [e.event for e in bot.events() if e.request_id == failed.id] == ["request_received", "request_review"]


# On SQLite the race cannot happen: the lookup and the inserts share one BEGIN IMMEDIATE transaction.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_request_recorded_by_another_process_during_the_batch_s_recording_is_not_done_twice(
    bot_any_db: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database's unique Message-ID refuses one row of the batch: it is rolled back and redone one by one."""
    from dsr_mailbot.pipeline import record

    bot = bot_any_db
    for person in ("a@example.kz", "b@example.kz"):
        bot.add_user(person, marketing_consent=True)
    taken = mail("b@example.kz", "Unsubscribe")
    bot.account.append(mail("a@example.kz", "Unsubscribe"))
    bot.account.append(taken)
    real_record_new = record.record_new

    def another_process_first(ctx, session, arrival, headers, *args, **kwargs):  # type: ignore[no-untyped-def]
        if headers.message_id == message_id_of(taken):  # after this process looked the batch up
            with bot.store.transaction() as other:
                other.add(Request(message_ref=bot.keyring.message_ref(message_id_of(taken)),
                                  message_id=message_id_of(taken), source="other", uidvalidity=1, uid=10_000,
                                  kind="optout", state="completed", language="en", received_at=utcnow(),
                                  due_at=utcnow(), subject_ref="x"))
        return real_record_new(ctx, session, arrival, headers, *args, **kwargs)

    monkeypatch.setattr(record, "record_new", another_process_first)

    report = bot.run()

    assert report.states == {"completed": 1} and report.duplicates == 1 and report.temporary_failure is None
    assert [m.rcpt_tos for m in bot.smtp.messages] == [["a@example.kz"]]
    b = bot.user("b@example.kz")
    assert b is not None and b.marketing_consent  # the other process's to apply, not this one's
    assert [r.source for r in bot.requests()] == ["other", bot.config.source_name]
    assert bot.account.snapshot("INBOX") == {}  # its copy moved out of the way, as any duplicate


def test_logs_at_the_highest_verbosity_carry_no_personal_data(bot: Bot) -> None:
    """What -vv prints: no address, phone, name or message text, from the bot or the libraries it uses."""
    import logging

    from dsr_mailbot.cli import configure_logging

    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    configure_logging(2)
    handler = Collect(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        bot.add_user(IVAN, phone="+77011112233")
        bot.account.append(mail(f"Иван Петров <{IVAN}>", "Обновление персональных данных",
                                "Телефон: 8 701 765 43 21\nФИО: Петров Иван Сергеевич"))
        bot.account.append(mail("stranger@example.org", "Personal data update", "Phone: +7 702 111 22 33"))
        bot.account.append(mail("broken@example.org", "Unsubscribe", "x"))
        bot.smtp.stop()
        bot.run()
        bot.smtp.start()
        bot.run()
    finally:
        logging.getLogger().removeHandler(handler)
        configure_logging(0)
    # "mail.log" is the test's own SMTP server (aiosmtpd), a peer, not part of the bot.
    text = "\n".join(r.getMessage() for r in records if r.name != "mail.log")
    assert records, "the run should have logged something at debug level"
    for secret in ("ivan", "example", "7017654321", "701 765", "Петров", "Иван", "Телефон", "stranger"):
        assert secret not in text, secret


def test_a_cron_run_erases_users_whose_date_has_come(bot: Bot) -> None:
    from datetime import timedelta

    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(mail(IVAN, "Withdrawal of consent"))
    bot.run()
    assert bot.user(IVAN) is not None

    early = bot.run(now=utcnow() + timedelta(days=29))
    late = bot.run(now=utcnow() + timedelta(days=31))

    assert (early.erased, late.erased) == (0, 1)
    assert bot.user(IVAN) is None
    assert [e.event for e in bot.events()].count("user_erased") == 1
