"""Erasure that really erases, and its act of destruction, end to end on SQLite and PostgreSQL (issue 10).

A withdrawal with ``erasure_delay_days = 0``: after the next run the person
is gone from the store (and, on SQLite, from the raw bytes of the database
file and its write-ahead log), from the audit export and the logs; their
request messages are gone from the processed folder while other people's
stay; the notice of destruction reached them and was then forgotten; and the
act names them, without their address or phone.
"""

from __future__ import annotations

import email
import json
import stat
from email.policy import default
from pathlib import Path

from dsr_mailbot.store.acts import list_acts, read_act
from tests.harness import PROCESSED, Bot, mail, wait_until

IVAN = "ivan.petrov@example.ru"
ANNA = "anna.akhmetova@example.kz"
IVANS_DATA = (IVAN, "ivan.petrov", "+77011112233", "77011112233", "Петров", "Сергеевич")


def processed_message_ids(bot: Bot) -> set[str]:
    found = set()
    for _flags, data in bot.account.snapshot(PROCESSED).values():
        found.add(str(email.message_from_bytes(data, policy=default)["Message-ID"]))
    return found


def test_a_withdrawal_destroys_everything_that_identifies_the_person(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(erasure_delay_days=0)
    bot.add_user(IVAN, phone="+77011112233", surname="Петров", first_name="Иван", patronymic="Сергеевич",
                 marketing_consent=True)
    bot.add_user(ANNA, phone="+77015556677", surname="Ахметова", first_name="Анна")
    ivans_update = mail(f"Иван Петров <{IVAN}>", "Обновление персональных данных", "Телефон: 8 701 111 22 33")
    annas_update = mail(ANNA, "Обновление персональных данных", "Фамилия: Ахметова-Ким")
    bot.account.append(ivans_update)
    bot.account.append(annas_update)
    bot.account.append(mail(f"Иван Петров <{IVAN}>", "Где мой заказ?", "Заказ 1042 не пришёл."))  # ordinary mail
    bot.run()
    bot.account.append(mail(IVAN, "Отзыв согласия на обработку персональных данных", "Прошу удалить мои данные."))
    bot.run()  # the withdrawal: its erasure date is its receipt
    [withdrawal] = [r for r in bot.requests() if r.kind == "withdraw"]
    assert len(processed_message_ids(bot)) == 3

    erasing = bot.cli("-vv", "run", "--once")  # the next run erases, at the highest verbosity

    assert erasing.returncode == 0, erasing.stderr
    assert bot.user(IVAN) is None and bot.user(ANNA) is not None
    exported_users = bot.cli("users", "export").stdout
    assert IVAN not in exported_users and ANNA in exported_users
    # The mailbox: his request messages are gone from the processed folder; hers and his ordinary mail stay.
    assert processed_message_ids(bot) == {str(email.message_from_bytes(annas_update, policy=default)["Message-ID"])}
    assert len(bot.account.snapshot("INBOX")) == 1
    # The last message to him, in his language, sent before his address went.
    [notice] = [m for m in bot.replies() if m["To"] == IVAN and "уничтожены" in str(m["Subject"])]
    assert f"№ {withdrawal.id}" in str(notice["Subject"]) and notice["Auto-Submitted"] == "auto-generated"
    # Only what is true: his request messages went, his ordinary letter stays with the staff, and so his address.
    said = bot.reply_text(notice)
    assert "Ваши письма с запросами тоже удалены" in said
    assert "Ваши другие письма в нашу поддержку (1) пока остаются в нашем почтовом ящике" in said
    assert "этот адрес у нас больше не хранится" not in said
    assert not [row for row in bot.outbox() if row.recipient == IVAN or IVAN.encode() in row.data]
    # No copy of his data in the store, the audit export or the log lines.
    audit = bot.cli("audit", "export").stdout
    dump = json.dumps([[r.model_dump(mode="json") for r in rows] for rows in (
        bot.requests(), bot.outbox(), bot.events())], ensure_ascii=False)
    for value in IVANS_DATA:
        assert value not in audit and value not in erasing.stderr and value not in erasing.stdout
        assert value not in dump
    events = [line["event"] for line in map(json.loads, audit.splitlines())]
    for step in ("request_completed", "user_erased", "reply_sent", "destruction_notice_sent"):
        assert step in events
    if bot.db_url.startswith("sqlite"):
        database = Path(bot.db_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        for value in IVANS_DATA:
            assert value.encode("utf-8") not in raw, value
        assert b"akhmetova" in raw  # the check can find what is there
    elif bot.store.dialect in ("mysql", "mariadb"):
        # InnoDB leaves deleted records in their pages until purged: OPTIMIZE TABLE rebuilt each table's file
        # without them (the redo and undo logs keep them until they rotate: README, "Erasure").
        from sqlalchemy import text

        tables = ("users", "requests", "outbox", "audit_events")
        with bot.store.engine.connect() as connection:
            datadir = connection.execute(text("SELECT @@datadir")).scalar_one()
            database = connection.execute(text("SELECT DATABASE()")).scalar_one()
            # Write every changed page to the files, so that what is there can be seen there.
            connection.execute(text(f"FLUSH TABLES {', '.join(tables)} FOR EXPORT"))
            raw = b"".join((Path(datadir) / database / f"{table}.ibd").read_bytes() for table in tables)
            connection.execute(text("UNLOCK TABLES"))
        for value in IVANS_DATA:
            assert value.encode("utf-8") not in raw, value
        assert b"akhmetova" in raw  # the check can find what is there
    else:  # PostgreSQL keeps dead tuples until VACUUM: the erasure ran it on the tables it touched
        from sqlalchemy import text

        def vacuumed() -> bool:
            with bot.store.engine.connect() as connection:
                return bool(connection.execute(text(
                    "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('users', 'requests', 'outbox',"
                    " 'audit_events') AND last_vacuum IS NOT NULL")).scalar_one() == 4)

        wait_until(vacuumed, timeout=10, what="VACUUM in the statistics")
    # The act: his name, the categories, the reason and the method; no address, no phone.
    act_file = bot.config.policy.acts_dir / f"act-{withdrawal.id}.json"
    assert stat.S_IMODE(act_file.stat().st_mode) == 0o600
    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None
    assert act.subject_full_name == "Петров Иван Сергеевич"
    assert act.categories == ("email", "phone", "surname", "first_name", "patronymic")
    assert (act.request_id, act.processed_messages_expunged, act.ordinary_messages_left_in_inbox) == (
        withdrawal.id, 2, 1)
    assert act.notice == "sent" and "withdrawal of consent" in act.reason
    engine_names = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB", "mariadb": "MariaDB"}
    assert engine_names[bot.store.dialect] in act.method
    for value in (IVAN, "+77011112233", "77011112233"):
        assert value not in act_file.read_text(encoding="utf-8")
    shown = bot.cli("requests", "act", str(withdrawal.id))
    assert shown.returncode == 0 and "Петров Иван Сергеевич" in shown.stdout and act.system_name in shown.stdout
    listed = bot.cli("acts", "list")
    assert f"act {withdrawal.id}" in listed.stdout and "1 act(s)" in listed.stdout

    # He is a stranger now: writing again is an unknown sender's letter.
    bot.account.append(mail(IVAN, "Personal data update", "Phone: +7 701 000 00 00"))
    bot.run()
    assert bot.requests()[-1].reason == "no_such_user"


def test_a_notice_that_cannot_be_sent_in_time_is_dropped_and_the_act_says_so(bot_any_db: Bot) -> None:
    from datetime import timedelta

    from dsr_mailbot.store.models import utcnow

    bot = bot_any_db
    bot.write_config(erasure_delay_days=0)
    bot.add_user(IVAN, surname="Петров")
    bot.account.append(mail(IVAN, "Withdrawal of consent"))
    bot.run()
    bot.smtp.stop()  # the SMTP server is down for longer than confirm_expiry_days
    try:
        bot.run()
        [withdrawal] = bot.requests()
        act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
        assert act is not None and act.notice == "queued"
        assert any(row.recipient == IVAN for row in bot.outbox())  # the one copy left, while it may be sent

        bot.run(now=utcnow() + timedelta(days=8))
    finally:
        bot.smtp.start()

    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None and act.notice == "dropped"
    assert all(row.recipient == "erased" and row.data == b"" for row in bot.outbox())
    assert "destruction_notice_dropped" in [e.event for e in bot.events()]
    bot.run()
    notice_subject = b"Subject: Your personal data have been destroyed"
    assert not [m for m in bot.smtp.messages if notice_subject in m.data]  # dropped means never sent


def test_old_acts_are_deleted_after_their_retention(bot: Bot) -> None:
    from datetime import UTC, datetime

    from dsr_mailbot.store.acts import Act, write_act

    acts_dir = bot.config.policy.acts_dir
    old = Act("7", datetime(2020, 1, 1, tzinfo=UTC).isoformat(), "shop", "X Y", "ref", ("email",), "withdrawal", 7,
              None, "deleted", 0, 0, "sent")
    write_act(acts_dir, old)
    bot.run()
    assert list_acts(acts_dir) == []  # 1,096 days after 2020-01-01 have passed


def test_several_people_due_at_once_are_erased_on_one_mailbox_connection(bot_any_db: Bot) -> None:
    bot = bot_any_db
    bot.write_config(erasure_delay_days=0)
    people = [f"person{n}@example.kz" for n in range(3)]
    for address in people:
        bot.add_user(address, surname="Ким")
        bot.account.append(mail(address, "Отзыв согласия на обработку персональных данных"))
    bot.account.append(mail(people[0], "Вопрос по доставке", "Где заказ?"))  # ordinary mail: stays, counted
    bot.run()

    assert bot.run().erased == 3

    assert all(bot.user(address) is None for address in people)
    assert processed_message_ids(bot) == set() and len(bot.account.snapshot("INBOX")) == 1
    acts = {a.request_id or 0: a for a in list_acts(bot.config.policy.acts_dir)}
    assert sorted(acts) == sorted(r.id or 0 for r in bot.requests())
    assert sorted(a.ordinary_messages_left_in_inbox for a in acts.values()) == [0, 0, 1]
    assert all(a.processed_messages_expunged == 1 and a.notice == "sent" for a in acts.values())


def with_file_delivery(bot: Bot) -> Path:
    """Replies written as .eml files instead of sent (no [smtp]); the folder they go to."""
    text = bot.config_path.read_text(encoding="utf-8")
    start, end = text.index("[smtp]"), text.index("[database]")
    bot.config_path.write_text(text[:start] + '[file_delivery]\ndirectory = "outbox"\n\n' + text[end:],
                               encoding="utf-8")
    return bot.dir / "outbox"


def test_erasure_leaves_nothing_of_the_person_in_open_requests_the_database_files_or_the_outbox_folder(
        bot_any_db: Bot) -> None:
    """A question and a request in review, still open at the erasure date, hold his words: they go too."""
    bot = bot_any_db
    bot.write_config(erasure_delay_days=0)
    outbox = with_file_delivery(bot)
    bot.add_user(IVAN, phone="+77011112233", surname="Петров", first_name="Иван", patronymic="Сергеевич")
    bot.add_user(ANNA, phone="+77015556677", surname="Ахметова")
    bot.account.append(mail(IVAN, "Вопрос об обработке персональных данных (Петров)",
                            "Меня зовут Петров Иван Сергеевич, телефон +7 701 111 22 33. Кому вы их передаёте?"))
    bot.account.append(mail(IVAN, "Обновление персональных данных: Петров Сергеевич",
                            "Телефон: +7 701 111 22 33\nТелефон: +7 701 999 88 77"))
    bot.account.append(mail(ANNA, "Отписаться", "Ахметова"))
    bot.run()
    assert sorted(r.reason or "" for r in bot.requests() if r.state == "review") == [
        "awaiting_answer", "conflicting_values"]
    assert any(IVAN.encode() in p.read_bytes() for p in outbox.glob("*.eml"))  # the acknowledgement, to him
    bot.account.append(mail(IVAN, "Отзыв согласия на обработку персональных данных", "Петров И. С., +77011112233"))
    bot.run()  # the withdrawal: his erasure date is its receipt; the question and the review are still open

    erasing = bot.cli("run", "--once")

    assert erasing.returncode == 0, erasing.stderr
    assert bot.user(IVAN) is None
    his = [r for r in bot.requests() if r.kind != "optout"]
    assert all(r.state in ("completed", "rejected") for r in his)
    closed = [r for r in his if r.reason == "erased"]
    assert len(closed) == 2  # the question and the update in review, closed by the erasure
    for row in his:
        assert (row.letter_subject, row.letter_text, row.owner_reply, row.reply_address, row.thread) == (
            None, None, None, None, None)
        assert row.intent == {} and row.message_id is None
    erased_events = [e for e in bot.events() if e.detail.get("reason") == "erased"]
    assert sorted(e.request_id or 0 for e in erased_events) == sorted(r.id or 0 for r in closed)
    his_values = ("Петров", "Сергеевич", "+77011112233", "77011112233", "701 111 22 33", "701 999 88 77",
                  IVAN, "ivan.petrov")
    dump = json.dumps([[r.model_dump(mode="json") for r in rows] for rows in (
        bot.requests(), bot.outbox(), bot.events())], ensure_ascii=False)
    files = b"".join(p.read_bytes() for p in outbox.iterdir())
    assert "Ахметова".encode() in files or ANNA.encode() in files  # the check can find what is there
    for value in his_values:
        assert value not in dump, value
        assert value.encode() not in files, value
    if bot.db_url.startswith("sqlite"):
        database = Path(bot.db_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))  # the file, WAL, shm
        for value in his_values:
            assert value.encode("utf-8") not in raw, value
        assert "Ахметова".encode() in raw


ORDER_179 = '''
operator_address = "050000, Алматы, пр. Абая, 1"
operator_bin = "123456789012"
responsible_person = { name = "Ким Анна Олеговна", email = "dpo@smarthings.kz" }
[[policy.destruction_signers]]
name = "Сейткали Нурлан"
position = "Директор"
[[policy.destruction_signers]]
name = "Ким Анна Олеговна"
position = "Ответственный за обработку ПДн"
'''


def test_the_act_and_its_log_extract_carry_what_order_179_requires_as_text_json_and_signable_pdf(
        bot_any_db: Bot, tmp_path: Path) -> None:
    import hashlib

    from pypdf import PdfReader

    bot = bot_any_db
    bot.write_config(erasure_delay_days=0, extra=ORDER_179)
    bot.add_user(IVAN, phone="+77011112233", surname="Петров", first_name="Иван")  # no patronymic held
    bot.account.append(mail(IVAN, "Отзыв согласия на обработку персональных данных", ""))
    bot.run()
    [withdrawal] = bot.requests()
    bot.run()  # the erasure, then the notice is sent and the act says so

    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None and act.notice == "sent" and len(act.nonce) == 32  # its hash cannot confirm a guess
    assert act.categories == ("email", "phone", "surname", "first_name")  # what was held, not all five
    shown = bot.cli("requests", "act", str(withdrawal.id), "--language", "ru")
    assert shown.returncode == 0, shown.stderr
    for line in ("Оператор: SmartThings LLP, БИН 123456789012; адрес: 050000, Алматы, пр. Абая, 1",
                 "Ответственный за организацию обработки персональных данных: Ким Анна Олеговна, dpo@smarthings.kz",
                 "Субъект персональных данных: Петров Иван",
                 "Уничтожение произвели и акт подписали:",
                 "  Директор, Сейткали Нурлан: ______________________ (подпись)   дата ____________",
                 "  Ответственный за обработку ПДн, Ким Анна Олеговна: ______________________ (подпись)"):
        assert line in shown.stdout, line

    # Every version of the act is in the audit trail by its SHA-256: made, then updated when the notice went.
    written = [e for e in bot.events() if e.event == "act_written"]
    assert [e.detail["version"] for e in written] == ["made", "notice"]
    file_bytes = (bot.config.policy.acts_dir / f"act-{withdrawal.id}.json").read_bytes()
    assert written[-1].detail["sha256"] == hashlib.sha256(file_bytes).hexdigest()
    assert written[0].detail["sha256"] != written[-1].detail["sha256"]
    [erased] = [e for e in bot.events() if e.event == "user_erased"]
    assert erased.detail["fields"] == ["email", "phone", "surname", "first_name"]

    # The printable act: a PDF, private, with the same text and a signature line per signer.
    pdf_path = tmp_path / "act.pdf"
    printed = bot.cli("requests", "act", str(withdrawal.id), "--format", "pdf", "--output", str(pdf_path))
    assert printed.returncode == 0 and printed.stdout == "", printed.stderr
    assert pdf_path.read_bytes().startswith(b"%PDF-") and stat.S_IMODE(pdf_path.stat().st_mode) == 0o600
    text = " ".join(" ".join(page.extract_text() for page in PdfReader(pdf_path).pages).split())
    for phrase in ("АКТ ОБ УНИЧТОЖЕНИИ ПЕРСОНАЛЬНЫХ ДАННЫХ", "Петров Иван", "БИН 123456789012",
                   "Директор, Сейткали Нурлан", "(подпись)"):
        assert phrase in text, phrase
    assert IVAN not in text and "77011112233" not in text

    # The extract from the event log: the act's facts a)–e) and the person's events, with their chain hashes.
    extracted = bot.cli("acts", "extract", str(withdrawal.id), "--format", "json")
    assert extracted.returncode == 0, extracted.stderr
    extract = json.loads(extracted.stdout)
    assert (extract["subject_full_name"], extract["categories"], extract["information_systems"]) == (
        "Петров Иван", ["email", "phone", "surname", "first_name"], ["SmartThings online shop customer database"])
    assert extract["reason"] == act.reason and extract["destroyed_at"] == act.made_at
    names = [e["event"] for e in extract["events"]]
    for step in ("request_received", "request_completed", "user_erased", "act_written", "destruction_notice_sent"):
        assert step in names, step
    assert all(len(e["chain_hash"]) == 64 for e in extract["events"])
    assert IVAN not in extracted.stdout and "77011112233" not in extracted.stdout
    extract_pdf = tmp_path / "extract.pdf"
    assert bot.cli("acts", "extract", str(withdrawal.id), "--format", "pdf", "--output",
                   str(extract_pdf)).returncode == 0
    text = " ".join(PdfReader(extract_pdf).pages[0].extract_text().split())
    assert "ВЫПИСКА ИЗ ЖУРНАЛА РЕГИСТРАЦИИ СОБЫТИЙ" in text and "user_erased" in text
    missing = bot.cli("acts", "extract", "999999")
    assert missing.returncode != 0 and "no act of destruction for request 999999" in missing.stderr
