"""The data map end to end: letters in a real Dovecot, the shop's own database on each engine, a mailing tool
behind the example receiver (contrib/), and the bot's runs in between.

Pavel is known only to the shop and to the mailing tool: the bot's own ``users`` table never holds him.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table
from sqlalchemy import select as core_select
from sqlmodel import select

from dsr_mailbot.faults import ENV
from dsr_mailbot.replies.digest import digest_text
from dsr_mailbot.store.acts import read_act
from dsr_mailbot.store.figures import erasures_due_by, month_erasures, store_figures
from dsr_mailbot.store.models import SystemAction, User, utcnow
from tests.harness import Bot, DaemonProcess, mail, via_mx, wait_until
from tests.http_servers import ScriptedHttpServer
from tests.systems.shop import (
    B_USER,
    NEWSLETTER,
    ORDER_ITEM,
    SALE_ORDER,
    data_map_toml,
    running_receiver,
)

PAVEL = "pavel.k@example.com"
PAVEL_FROM = "Павел <Pavel.K@Example.com>"
SECRET = "mailer secret"
WITHDRAWAL = "Отзыв согласия на обработку персональных данных"
UPDATE = "Обновление персональных данных"
UNKNOWN_SENDER_SAYS = "у нас нет персональных данных, связанных с адресом"


@pytest.fixture
def mailing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    monkeypatch.setenv("MAILER_SECRET", SECRET)
    with running_receiver(tmp_path, SECRET) as running:
        yield running


@pytest.fixture
def mailer(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedHttpServer]:
    monkeypatch.setenv("MAILER_SECRET", SECRET)
    server = ScriptedHttpServer()
    server.start()
    yield server
    server.stop()


def row(engine: Engine, table: Table, key: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(core_select(table).filter_by(ID=key)).first()


def subscriber(database: Path, address: str) -> tuple[str, int] | None:
    with sqlite3.connect(database) as db:
        found = db.execute("SELECT name, subscribed FROM subscribers WHERE email = ?", (address,)).fetchone()
        return (found[0], found[1]) if found else None


def posted(server: ScriptedHttpServer) -> list[str]:
    """The actions the system was asked for, in order."""
    return [json.loads(r.body)["action"] for r in server.requests]


def letters_to(bot: Bot, address: str) -> list[EmailMessage]:
    return [m for m in bot.replies() if m["To"] == address]


def actions(bot: Bot) -> list[SystemAction]:
    with bot.store.transaction() as session:
        return list(session.exec(select(SystemAction).order_by(SystemAction.id)))  # type: ignore[arg-type]


def configure(bot: Bot, shop: tuple[str, Engine], mailing: tuple[str, Path]) -> tuple[Engine, Path]:
    """The bot with the data map: its own store, the shop's database and the mailing tool (the example receiver)."""
    bot.write_config(extra=data_map_toml(shop[0], mailing[0]))
    return shop[1], mailing[1]


def withdraw_then_move(bot: Bot, shop_url: str, mailer_url: str) -> None:
    """Pavel withdraws, then moves to a new address before his erasure date (each letter in a run of its own)."""
    bot.write_config(extra=data_map_toml(shop_url, mailer_url))
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    bot.account.append(mail(PAVEL_FROM, UPDATE, "E-mail: pavel.new@example.com"))
    bot.run()


def confirm_last_challenge(bot: Bot, sender: str = PAVEL_FROM) -> None:
    [challenge] = [m for m in letters_to(bot, PAVEL) if "[DSR-" in str(m["Subject"])][-1:]
    mid = str(challenge["Message-ID"])
    bot.account.append(via_mx(mail(sender, f"Re: {challenge['Subject']}", "Да",
                                   headers={"In-Reply-To": mid, "References": mid})))


def test_every_intent_is_carried_out_in_every_system_for_a_person_only_the_shop_knows(
        bot: Bot, shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    engine, mailing_db = configure(bot, shop, mailing)

    # An update: every mapped column in every system, the reply once they are all done.
    bot.account.append(mail(PAVEL_FROM, UPDATE, "Телефон: +7 701 555 44 33\nИмя: Павлик"))
    report = bot.run()
    customer, order = row(engine, B_USER, 1), row(engine, SALE_ORDER, 10)
    assert (customer.PERSONAL_PHONE, customer.NAME, order.CONTACT_PHONE) == ("+77015554433", "Павлик", "+77015554433")
    look_alike = row(engine, B_USER, 2)
    assert (look_alike.PERSONAL_PHONE, look_alike.NAME) == ("+77019998877", "Pável")  # never another person's row
    assert subscriber(mailing_db, PAVEL) == ("Павлик", 1)
    [answer] = letters_to(bot, PAVEL)
    assert "+77015554433" in bot.reply_text(answer) and report.released == 1
    assert bot.user(PAVEL) is None  # the bot keeps no copy of someone the shop knows
    assert [r.state for r in bot.requests()] == ["completed"]

    # An opt-out: marketing off wherever it is mapped.
    bot.account.append(mail(PAVEL_FROM, "Отписаться", ""))
    bot.run()
    assert row(engine, B_USER, 1).UF_NEWS in (False, 0) and row(engine, NEWSLETTER, 1).ACTIVE in (False, 0)
    assert row(engine, B_USER, 2).UF_NEWS in (True, 1) and row(engine, NEWSLETTER, 2).ACTIVE in (True, 1)
    assert subscriber(mailing_db, PAVEL) == ("Павлик", 0)
    assert len(letters_to(bot, PAVEL)) == 2

    # An access request: confirmed by reply, then one answer listing what each system holds.
    bot.account.append(mail(PAVEL_FROM, "Запрос персональных данных", ""))
    bot.run()
    confirm_last_challenge(bot)
    bot.run()
    answer = letters_to(bot, PAVEL)[-1]
    text = bot.reply_text(answer)
    for expected in ("Shop:", "Павлик", "Login: pavel", "Order: 10", "129.90", "Gift note: Для Павла", "Mailer:",
                     "Mailing list", "Этот ответ охватывает все наши системы, где могут быть ваши данные: "
                     "SmartThings online shop customer database, Shop, Mailer."):
        assert expected in text, text
    assert "Pável" not in text and "other" not in text
    assert all("records" not in a.result for a in actions(bot))  # what was sent is not kept

    # A withdrawal: consent off at once, each table's erase at the erasure date.
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    assert row(engine, B_USER, 1).UF_AGREED in (False, 0)
    withdrawal = bot.requests()[-1]
    assert (withdrawal.kind, withdrawal.state) == ("withdraw", "completed")
    assert {a.system: a.state for a in actions(bot) if a.action == "erase"} == {"Shop": "pending",
                                                                                 "Mailer": "pending"}

    bot.run(now=utcnow() + timedelta(days=31))

    assert row(engine, B_USER, 1) is None and row(engine, NEWSLETTER, 1) is None
    order = row(engine, SALE_ORDER, 10)
    assert order is not None and (order.CONTACT_EMAIL, order.CONTACT_PHONE) == ("", "")  # kept for accounting
    assert row(engine, ORDER_ITEM, 100).GIFT_NOTE == ""
    assert row(engine, B_USER, 2) is not None and row(engine, SALE_ORDER, 11).CONTACT_PHONE == "+77019998877"
    assert subscriber(mailing_db, PAVEL) is None
    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None
    shop_part, mailer_part = act.systems
    assert (shop_part.name, shop_part.outcome, shop_part.deleted, shop_part.updated) == ("Shop", "done", 2, 2)
    assert {t.table: (t.deleted, t.updated) for t in shop_part.tables} == {
        "b_user": (1, 0), "sale_order": (0, 1), "sale_basket": (0, 1), "newsletter": (1, 0)}
    assert (mailer_part.name, mailer_part.outcome, mailer_part.deleted) == ("Mailer", "done", 1)
    assert "table sale_order: rows deleted 0, rows updated 1 (columns cleared: CONTACT_EMAIL, CONTACT_PHONE)" \
        in act.as_text()
    notice = letters_to(bot, PAVEL)[-1]
    assert "Данные уничтожены в каждой из этих систем: Shop, Mailer" in bot.reply_text(notice)
    assert "удалены из нашего почтового ящика" not in bot.reply_text(notice)  # his letters were not expunged
    assert act.notice == "sent"
    # Nothing of Pavel is left in the bot's store: its actions, requests and replies.
    assert all(a.payload == {} for a in actions(bot))
    assert all(r.reply_address is None and r.message_id is None for r in bot.requests())
    assert all(o.recipient in ("erased",) for o in bot.outbox())
    with bot.store.transaction() as session:
        assert session.exec(select(User)).first() is None


def test_a_system_down_at_the_lookup_makes_the_answer_wait_and_no_data_is_claimed_until_every_system_answered(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(503, {}, always=True)
    bot.account.append(mail("nobody@example.com", "Отписаться", ""))

    bot.run()

    [request] = bot.requests()
    assert (request.state, request.reason) == ("carrying_out", "lookup_incomplete")
    assert letters_to(bot, "nobody@example.com") == []  # not "we hold no data": the mailing tool was not asked
    [lookup] = actions(bot)
    assert (lookup.system, lookup.action, lookup.state, lookup.last_error) == (
        "Mailer", "lookup", "pending", "SystemUnavailable 503")

    mailer.answer(200, {"found": False}, always=True)
    bot.run(now=utcnow() + timedelta(hours=2))

    [request] = bot.requests()
    # No system knows the address: the opt-out is honoured all the same, on the suppression list.
    assert (request.state, request.outcome) == ("completed", "suppressed")
    [answer] = letters_to(bot, "nobody@example.com")
    assert UNKNOWN_SENDER_SAYS not in bot.reply_text(answer) and "в список" in bot.reply_text(answer)
    # The mailing tool may know people the shop does not: the opt-out went to it all the same.
    assert posted(mailer)[-1] == "optout"


def test_a_person_the_mailing_tool_knows_is_known_even_when_the_shop_is_not(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": True}, always=True)
    bot.account.append(mail("reader@example.com", "Отписаться", ""))

    bot.run()

    [request] = bot.requests()
    assert (request.state, request.outcome) == ("completed", "optout_applied")
    assert posted(mailer) == ["lookup", "optout"]


def test_an_http_system_down_during_the_erasure_holds_the_act_until_it_is_back(
        bot: Bot, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": True}, always=True)
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    withdrawal = bot.requests()[-1]
    assert withdrawal.state == "completed"

    mailer.answer(503, {}, always=True, headers={"Retry-After": "120"})
    erasure_day = utcnow() + timedelta(days=30, hours=1)  # within the mailing tool's give_up_after_hours
    report = bot.run(now=erasure_day)

    assert row(engine, B_USER, 1) is None  # the shop's part is done; the mailing tool's waits
    assert {a.system: (a.state, a.last_error) for a in actions(bot) if a.action == "erase"} == {
        "Shop": ("done", None), "Mailer": ("pending", "SystemUnavailable 503")}
    assert read_act(bot.config.policy.acts_dir, str(withdrawal.id)) is None  # not before every system is done
    assert [m for m in letters_to(bot, PAVEL) if "уничтожены" in str(m["Subject"])] == []
    assert report.temporary_failure is None  # one system down stops nothing else
    # Past its date, the mailing tool's erasure is late: the digest, /metrics and the month's report count it.
    with bot.store.transaction() as session:
        late = erasures_due_by(session, erasure_day, "bot", strictly=True)
        figures = store_figures(session, erasure_day)
        month = month_erasures(session, [withdrawal], erasure_day)
    assert [(e.request_id, e.where) for e in late] == [(withdrawal.id, "Mailer")]
    assert figures.erasures_overdue == 1 and month == (1, 1)
    subject, body = digest_text([], erasure_day, "Asia/Almaty", late)
    assert "1 late, 0 due soon" in subject and f"#{withdrawal.id:<6} LATE" in body and "erasure   in Mailer" in body
    listed = bot.cli("requests", "overdue", "--within", "40", "--format", "json")  # today: due within 30 days
    assert listed.returncode == 0 and [(r["kind"], r["system"], r["late"]) for r in json.loads(listed.stdout)] == [
        ("erasure", "Mailer", False)]

    mailer.answer(200, {"deleted": 1}, always=True)
    bot.run(now=erasure_day + timedelta(hours=1))
    with bot.store.transaction() as session:
        assert erasures_due_by(session, erasure_day, "bot") == []
        assert month_erasures(session, [withdrawal], erasure_day) == (0, 0)

    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None and [(s.name, s.outcome, s.deleted) for s in act.systems] == [
        ("Shop", "done", 2), ("Mailer", "done", 1)]
    assert len([m for m in letters_to(bot, PAVEL) if "уничтожены" in str(m["Subject"])]) == 1
    erase_keys = [json.loads(r.body)["id"] for r in mailer.requests if json.loads(r.body)["action"] == "erase"]
    assert len(erase_keys) == 2 and len(set(erase_keys)) == 1  # the retry carried the same idempotency key


def test_a_wrong_mapping_stops_the_run_with_78_before_anything_changes(
        bot: Bot, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url, match="E_MAIL"))
    bot.account.append(mail(PAVEL_FROM, "Отписаться", ""))

    result = bot.cli("run", "--once", env={**os.environ, "MAILER_SECRET": SECRET})

    assert result.returncode == 78, result.stderr
    assert '"Shop"' in result.stderr and "b_user" in result.stderr and "E_MAIL" in result.stderr
    assert shop_url not in result.stderr
    assert row(engine, B_USER, 1).UF_NEWS in (True, 1) and mailer.requests == []
    assert len(bot.account.snapshot("INBOX")) == 1  # the letter waits for a corrected mapping
    assert bot.requests() == []  # not even recorded: no attempt of it is used up on the mapping
    assert letters_to(bot, PAVEL) == []

    daemon = bot.cli("run", env={**os.environ, "MAILER_SECRET": SECRET})  # the daemon checks when it starts
    assert daemon.returncode == 78 and "E_MAIL" in daemon.stderr


def test_a_person_in_the_bots_own_store_and_the_shop_gets_one_act_and_one_notice_naming_both(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    engine, _mailing_db = configure(bot, sqlite_shop, mailing)
    bot.add_user(PAVEL, surname="Ким", first_name="Павел", patronymic="Олегович", phone="+77011112233")
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    user = bot.user(PAVEL)
    assert user is not None and not user.processing_consent and row(engine, B_USER, 1).UF_AGREED in (False, 0)
    withdrawal = bot.requests()[-1]

    bot.run(now=utcnow() + timedelta(days=30, hours=1))

    assert bot.user(PAVEL) is None and row(engine, B_USER, 1) is None
    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None and act.subject_full_name == "Ким Павел Олегович"  # the bot's own part names him
    assert [(s.name, s.outcome) for s in act.systems] == [("Shop", "done"), ("Mailer", "done")]
    [notice] = [m for m in letters_to(bot, PAVEL) if "уничтожены" in str(m["Subject"])]
    assert ("Данные уничтожены в каждой из этих систем: SmartThings online shop customer database, Shop, Mailer"
            in bot.reply_text(notice))
    assert act.notice == "sent"


def test_kill_9_between_two_systems_actions_loses_nothing_and_the_receiver_applies_each_key_once(
        bot: Bot, shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    engine, mailing_db = configure(bot, shop, mailing)
    bot.account.append(mail(PAVEL_FROM, UPDATE, "Имя: Павлик"))

    # The mailing tool commits the second action, and the bot dies before it records it.
    killed = bot.cli("run", "--once", env={**os.environ, "MAILER_SECRET": SECRET,
                                           ENV: "after_system_action#2"})

    assert killed.returncode == -9
    assert row(engine, B_USER, 1).NAME == "Павлик" and subscriber(mailing_db, PAVEL) == ("Павлик", 1)
    assert {a.system: a.state for a in actions(bot)} == {"Shop": "done", "Mailer": "pending"}
    assert letters_to(bot, PAVEL) == []  # the answer waits for every system

    bot.run(now=utcnow() + timedelta(minutes=10))  # the dead worker's lease has run out

    assert {a.system: (a.state, a.attempts) for a in actions(bot)} == {"Shop": ("done", 1), "Mailer": ("done", 2)}
    [answer] = letters_to(bot, PAVEL)
    assert "Павлик" in bot.reply_text(answer)
    with sqlite3.connect(mailing_db) as db:  # the same key twice, its effect once
        assert db.execute("SELECT count(*) FROM seen_keys").fetchone() == (1,)


def test_with_no_erasure_delay_the_withdrawal_is_answered_before_the_data_are_destroyed(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    shop_url, engine = sqlite_shop
    mailer_url, _mailing_db = mailing
    bot.write_config(extra=data_map_toml(shop_url, mailer_url), erasure_delay_days=0)
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))

    bot.run()

    assert row(engine, B_USER, 1) is None
    shop_actions = [(a.action, a.result.get("updated"), a.result.get("deleted")) for a in actions(bot)
                    if a.system == "Shop"]
    assert shop_actions == [("withdraw", 2, 0), ("erase", 2, 2)]  # consent off first, then the rows go
    [answer] = letters_to(bot, PAVEL)
    assert "уничтожены" not in str(answer["Subject"]) and "согласи" in bot.reply_text(answer).lower()

    bot.run()

    assert [m for m in letters_to(bot, PAVEL) if "уничтожены" in str(m["Subject"])] != []
    assert all(o.state == "sent" for o in bot.outbox())  # the answer was not scrubbed before it went


def test_without_a_builtin_entry_the_bots_own_users_table_is_no_system_of_the_map(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    shop_url, engine = sqlite_shop
    mailer_url, _mailing_db = mailing
    bot.write_config(extra=data_map_toml(shop_url, mailer_url, builtin=False))
    bot.add_user("leftover@example.com")  # imported before the data map listed the shop alone
    bot.account.append(mail(PAVEL_FROM, "Отписаться", ""))
    bot.account.append(mail("leftover@example.com", "Отписаться", ""))

    bot.run()

    assert row(engine, B_USER, 1).UF_NEWS in (False, 0)
    assert [r.outcome for r in bot.requests()] == ["optout_applied", "suppressed"]  # no system knows it
    leftover = bot.user("leftover@example.com")
    assert leftover is not None and leftover.marketing_consent  # not a system of this map: untouched


# What an attacker's review of the data map found (each failed before its fix).

def cli(bot: Bot, *args: str) -> None:
    done = bot.cli(*args, env={**os.environ, "MAILER_SECRET": SECRET})
    assert done.returncode == 0, done.stderr


def test_a_withdrawal_carried_out_cannot_be_rejected_and_approving_it_tries_the_refusing_system_again(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": True})  # the lookup; then the mailing tool refuses the withdrawal
    mailer.answer(403, {}, always=True)
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    [request] = bot.requests()
    assert (request.state, request.reason) == ("review", "system_refused:Mailer")
    assert row(engine, B_USER, 1).UF_AGREED in (False, 0)  # the shop withdrew: its erasure is due by law

    refused = bot.cli("requests", "reject", str(request.id), "--reason", "Нет.",
                      env={**os.environ, "MAILER_SECRET": SECRET})
    assert refused.returncode != 0 and "approve it to try that system again" in refused.stderr
    assert {a.action: a.state for a in actions(bot) if a.system == "Shop"} == {"withdraw": "done", "erase": "pending"}

    mailer.answer(200, {"updated": 1}, always=True)
    cli(bot, "requests", "approve", str(request.id))
    bot.run()

    [request] = bot.requests()
    assert (request.state, request.outcome) == ("completed", "withdrawal_applied")
    assert posted(mailer).count("withdraw") == 2
    [answer] = letters_to(bot, PAVEL)  # the answer composed when it was carried out, once every system withdrew
    assert "уничтожены" not in str(answer["Subject"])


def test_what_systems_returned_for_an_answer_that_never_went_is_not_kept(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": True})
    bot.account.append(mail(PAVEL_FROM, "Запрос персональных данных", ""))
    bot.run()
    confirm_last_challenge(bot)
    mailer.answer(403, {}, always=True)  # the mailing tool refuses the access: review
    bot.run()
    [request, _confirmation] = bot.requests()
    assert request.state == "review"
    assert any("records" in a.result for a in actions(bot))  # the shop's, for the answer a person may approve

    cli(bot, "requests", "reject", str(request.id), "--reason", "Нет.")

    assert all("records" not in a.result for a in actions(bot))


def test_an_erasure_follows_the_persons_new_address(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    shop_url, engine = sqlite_shop
    mailer_url, _mailing_db = mailing
    withdraw_then_move(bot, shop_url, mailer_url)
    assert row(engine, B_USER, 1).EMAIL == "pavel.new@example.com"

    bot.run(now=utcnow() + timedelta(days=30, hours=1))

    assert row(engine, B_USER, 1) is None  # not left behind under the address it no longer has
    withdrawal = bot.requests()[0]
    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None and act.systems[0].deleted == 2
    # The bot's own copies of his letters and answers go under both addresses.
    assert all(o.recipient == "erased" for o in bot.outbox())
    assert all(r.message_id is None and r.reply_address is None for r in bot.requests())


def test_two_withdrawals_make_one_erasure_one_act_and_one_notice(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    shop_url, _engine = sqlite_shop
    mailer_url, _mailing_db = mailing
    bot.write_config(extra=data_map_toml(shop_url, mailer_url))
    for _ in range(2):
        bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
        bot.run()

    bot.run(now=utcnow() + timedelta(days=30, hours=1))

    assert sorted(a.system for a in actions(bot) if a.action == "erase") == ["Mailer", "Shop"]
    assert len([m for m in letters_to(bot, PAVEL) if "уничтожены" in str(m["Subject"])]) == 1


def test_approving_after_a_system_refused_an_address_change_retries_under_the_old_address(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    bot.add_user(PAVEL)
    mailer.answer(200, {"found": True})
    mailer.answer(403, {}, always=True)
    bot.account.append(mail(PAVEL_FROM, UPDATE, "E-mail: pavel.new@example.com"))
    bot.run()
    [request] = bot.requests()
    assert request.state == "review" and bot.user("pavel.new@example.com") is not None

    mailer.answer(200, {"updated": 1}, always=True)
    cli(bot, "requests", "approve", str(request.id))
    bot.run()

    retried = json.loads(mailer.requests[-1].body)
    assert (retried["action"], retried["email"], retried["changes"]) == (
        "update", PAVEL, {"email": "pavel.new@example.com"})
    assert row(engine, B_USER, 1).EMAIL == "pavel.new@example.com"
    [notice] = letters_to(bot, PAVEL)  # the old address hears of the change
    assert str(notice["Subject"]).startswith("Адрес электронной почты изменён")


def test_a_flood_of_letters_waiting_for_a_lookup_gets_no_more_replies_than_the_daily_limit(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url),
                     trust='verification = "never"\nmax_replies_per_sender_per_day = 2')
    mailer.answer(503, {}, always=True)
    for _ in range(5):
        bot.account.append(mail("victim@example.org", "Отписаться", ""))
    bot.run()
    assert {r.state for r in bot.requests()} == {"carrying_out"}

    mailer.answer(200, {"found": False}, always=True)
    bot.run(now=utcnow() + timedelta(hours=2))

    assert len(letters_to(bot, "victim@example.org")) == 2
    assert sorted(r.reason or "" for r in bot.requests()).count("sender_daily_limit") == 3


def test_when_an_opt_out_on_receipt_fails_the_owners_yes_still_counts(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": True})
    mailer.answer(403, {})  # the opt-out carried out on receipt
    bot.account.append(mail(PAVEL_FROM, "Запрос персональных данных", "И отпишите меня от рассылки."))
    bot.run()
    request = bot.requests()[0]
    assert request.state == "awaiting_confirmation"  # not taken from its owner by the failure

    mailer.answer(200, {}, always=True)
    confirm_last_challenge(bot)
    bot.run()

    request = bot.requests()[0]
    assert (request.state, request.outcome) == ("completed", "several_applied")
    assert posted(mailer).count("optout") == 2  # written afresh by the yes, and done


# What a second review found.

def test_an_erasure_stays_with_the_address_a_system_still_knows(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": True}, always=True)
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    mailer.answer(200, {"found": True})
    mailer.answer(403, {}, always=True)  # the mailing tool refuses the address change; the shop takes it
    bot.account.append(mail(PAVEL_FROM, UPDATE, "E-mail: pavel.new@example.com"))
    bot.run()
    update = bot.requests()[-1]
    assert update.state == "review" and row(engine, B_USER, 1).EMAIL == "pavel.new@example.com"
    refused = bot.cli("requests", "reject", str(update.id), "--reason", "Нет.",
                      env={**os.environ, "MAILER_SECRET": SECRET})
    assert refused.returncode != 0  # carried out in the shop already: "nothing was changed" would be false

    mailer.answer(200, {"deleted": 1}, always=True)
    bot.run(now=utcnow() + timedelta(days=30, hours=1))

    assert row(engine, B_USER, 1) is None  # the shop erased under the address it has now
    [erase] = [json.loads(r.body) for r in mailer.requests if json.loads(r.body)["action"] == "erase"]
    assert erase["email"] == PAVEL  # and the mailing tool under the one it still has


def test_approving_a_request_whose_lookup_failed_for_good_carries_it_out_and_answers(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(503, {})  # down at intake, then it refuses the lookup for good
    mailer.answer(403, {}, always=True)
    bot.account.append(mail("reader@example.com", "Отписаться", ""))
    bot.run()
    bot.run(now=utcnow() + timedelta(hours=2))
    [request] = bot.requests()
    assert (request.state, request.reason) == ("review", "system_refused:Mailer")

    mailer.answer(200, {"updated": 1}, always=True)
    cli(bot, "requests", "approve", str(request.id))
    bot.run()

    [request] = bot.requests()
    assert (request.state, request.outcome) == ("completed", "optout_applied")
    assert posted(mailer)[-1] == "optout" and len(letters_to(bot, "reader@example.com")) == 1
    assert all(a.payload == {} for a in actions(bot))  # the failed lookup's address went with the request


def test_a_failed_action_approved_after_another_request_changed_the_address_follows_it(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": True})
    mailer.answer(403, {})  # the withdrawal, refused
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    withdrawal = bot.requests()[0]
    assert withdrawal.state == "review"
    mailer.answer(200, {"updated": 1}, always=True)
    bot.account.append(mail(PAVEL_FROM, UPDATE, "E-mail: pavel.new@example.com"))
    bot.run()  # the address changes everywhere
    assert bot.requests()[-1].state == "completed"

    cli(bot, "requests", "approve", str(withdrawal.id))
    bot.run()

    retried = json.loads(mailer.requests[-1].body)
    assert (retried["action"], retried["email"]) == ("withdraw", "pavel.new@example.com")


def test_the_bots_own_erasure_waits_for_a_withdrawal_still_carried_out_in_a_system(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url), erasure_delay_days=0)
    bot.add_user(PAVEL, surname="Ким")
    mailer.answer(200, {"found": True})
    mailer.answer(503, {}, always=True)
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    [withdrawal] = bot.requests()
    assert withdrawal.state == "carrying_out"

    bot.run(now=utcnow() + timedelta(minutes=1))  # due, but the answer still waits for the mailing tool
    assert bot.user(PAVEL) is not None

    mailer.answer(200, {"updated": 1}, always=True)
    for minutes in (60, 61, 62):
        bot.run(now=utcnow() + timedelta(minutes=minutes))

    subjects = [str(m["Subject"]) for m in letters_to(bot, PAVEL)]
    assert len(subjects) == 2 and "уничтожены" not in subjects[0] and "уничтожены" in subjects[1]
    assert bot.user(PAVEL) is None
    acts = sorted(p.name for p in bot.config.policy.acts_dir.glob("act-*.json"))
    assert acts == [f"act-{withdrawal.id}.json"]  # one act, its own part and each system's


# What a third review found.

def test_a_withdrawal_in_review_at_its_erasure_date_gets_one_act_naming_the_person_and_every_system(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, _engine = sqlite_shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    bot.add_user(PAVEL, surname="Ким", first_name="Павел")
    mailer.answer(200, {"found": True})
    mailer.answer(403, {})  # the mailing tool refuses the withdrawal; the request waits in review
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()
    [withdrawal] = bot.requests()
    assert withdrawal.state == "review"

    mailer.answer(200, {"deleted": 1}, always=True)
    bot.run(now=utcnow() + timedelta(days=30, hours=1))  # the law's date comes; erasure does not wait for review

    acts = sorted(p.name for p in bot.config.policy.acts_dir.glob("act-*.json"))
    assert acts == [f"act-{withdrawal.id}.json"]
    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None and act.subject_full_name == "Ким Павел"
    assert [(s.name, s.outcome) for s in act.systems] == [("Shop", "done"), ("Mailer", "done")]
    [notice] = [m for m in letters_to(bot, PAVEL) if "уничтожены" in str(m["Subject"])]
    assert "SmartThings online shop customer database, Shop, Mailer" in bot.reply_text(notice)


def test_forgetting_a_persons_former_address_spares_whoever_has_it_now(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    shop_url, _engine = sqlite_shop
    mailer_url, _mailing_db = mailing
    withdraw_then_move(bot, shop_url, mailer_url)
    # Later the old address is someone else's: a new customer of the bot's own records asks a question from it.
    newcomer = bot.add_user(PAVEL, surname="Другая")
    time.sleep(1.1)  # IMAP's INTERNALDATE counts whole seconds: her letter is later than the change, as in life
    bot.account.append(mail(PAVEL, "Вопрос о персональных данных", "Как вы используете мои данные?"))
    bot.run(now=utcnow() + timedelta(hours=1))
    question = bot.requests()[-1]
    assert (question.kind, question.state, question.user_id) == ("question", "review", newcomer)

    bot.run(now=utcnow() + timedelta(days=30, hours=1))

    question = bot.requests()[-1]
    assert (question.state, question.user_id) == ("review", newcomer) and question.letter_text
    assert [r.reply_address for r in bot.requests()[:2]] == [None, None]  # Pavel's own letters are forgotten


# What a fourth review found (the daemon, and what the person and the inspector receive).

def test_an_erasure_every_system_failed_still_gets_its_act_and_the_bot_forgets_its_copies(
        bot: Bot, mailer: ScriptedHttpServer) -> None:
    bot.write_config(extra=f'[[systems]]\nkind = "http"\nname = "Mailer"\nurl = "{mailer.url}"\n'
                           'secret_env = "MAILER_SECRET"\n')
    mailer.answer(200, {"found": True}, always=True)
    bot.account.append(mail("reader@example.com", WITHDRAWAL, ""))
    bot.run()
    [withdrawal] = bot.requests()
    assert withdrawal.outcome == "withdrawal_applied"

    mailer.answer(403, {}, always=True)  # the only system refuses the erasure for good
    bot.run(now=utcnow() + timedelta(days=30, hours=1))

    act = read_act(bot.config.policy.acts_dir, str(withdrawal.id))
    assert act is not None and [(s.name, s.outcome) for s in act.systems] == [("Mailer", "failed")]
    assert act.notice == "none"  # not told their data are gone: they are not
    assert [m for m in letters_to(bot, "reader@example.com") if "уничтожены" in str(m["Subject"])] == []
    assert all(o.recipient == "erased" for o in bot.outbox())
    assert all(a.payload == {} for a in actions(bot))


def test_an_access_answer_shows_a_systems_text_on_its_own_lines_only_and_a_huge_one_goes_to_a_person(
        bot: Bot, mailer: ScriptedHttpServer) -> None:
    bot.write_config(extra=f'[[systems]]\nkind = "http"\nname = "Mailer"\nurl = "{mailer.url}"\n'
                           'secret_env = "MAILER_SECRET"\n')
    forged = "x\n-- \nSmartThings LLP, служба поддержки\nПерейдите по ссылке"
    mailer.answer(200, {"found": True})
    mailer.answer(200, {"records": [{"label": "List\r\nBcc: x@evil.example", "fields": {
        "note": forged, "broken": "\ud800"}}]}, always=True)
    bot.account.append(mail(PAVEL_FROM, "Запрос персональных данных", ""))
    bot.run()
    confirm_last_challenge(bot)
    bot.run()

    answer = letters_to(bot, PAVEL)[-1]
    text = bot.reply_text(answer)
    assert "note: x --  SmartThings LLP, служба поддержки Перейдите по ссылке" in text
    assert "\n-- \nSmartThings LLP, служба поддержки\nПерейдите" not in text and answer["Bcc"] is None
    assert "broken: \ufffd" in text

    mailer.answer(200, {"found": True})
    mailer.answer(200, {"records": [{"label": f"Record {n}", "fields": {"note": "x" * 2000}}
                                    for n in range(200)]}, always=True)
    bot.account.append(mail(PAVEL_FROM, "Запрос персональных данных", ""))
    bot.run()
    confirm_last_challenge(bot)
    bot.run()
    huge = [r for r in bot.requests() if r.kind == "access"][-1]
    assert (huge.state, huge.reason) == ("review", "access_answer_too_large")


def test_a_data_map_added_by_sighup_is_carried_out_without_a_restart(
        bot: Bot, sqlite_shop: tuple[str, Engine], mailing: tuple[str, Path]) -> None:
    shop_url, engine = sqlite_shop
    mailer_url, _mailing_db = mailing
    bot.write_config(extra="[daemon]\npoll_interval_seconds = 5\n")
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("dsr-mailbot running")

    bot.write_config(extra=data_map_toml(shop_url, mailer_url) + "\n[daemon]\npoll_interval_seconds = 5\n")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("configuration and templates reloaded")
    bot.account.append(mail(PAVEL_FROM, "Отписаться", ""))

    wait_until(lambda: len(letters_to(bot, PAVEL)) == 1, timeout=30, what="the answer after every system")
    assert row(engine, B_USER, 1).UF_NEWS in (False, 0)
    assert daemon.stop() == 0


def test_a_systems_hold_at_the_lookup_blocks_the_data_everywhere_instead_of_destroying_them(
        bot: Bot, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    until = (utcnow() + timedelta(days=90)).date()
    mailer.answer(200, {"found": True, "hold": {"until": until.isoformat(), "ground": "open order 77\nfake line"}},
                  always=True)
    bot.account.append(mail(PAVEL_FROM, WITHDRAWAL, ""))
    bot.run()

    [withdrawal] = bot.requests()
    assert withdrawal.state == "completed"
    said = " ".join(bot.reply_text(letters_to(bot, PAVEL)[-1]).split())
    assert "open order 77 fake line" in said and "заблокированы" in said, said  # the system text, on one line
    erasures = {a.system: a.due_at.date() for a in actions(bot) if a.action == "erase"}
    assert erasures == {"Shop": until, "Mailer": until}  # the hold's end (before six months), in every system
    bot.run(now=utcnow() + timedelta(days=31))  # past the usual 30 days: blocked, not destroyed
    assert row(engine, B_USER, 1) is not None
    [held] = json.loads(bot.cli("users", "holds", "--format", "json").stdout)
    assert (held["kind"], held["until"]) == ("block", until.isoformat())
    assert [e.actor for e in bot.events() if e.event == "hold_placed"] == ["system:Mailer"]


def test_a_suppressed_address_found_later_in_a_systems_rows_gets_marketing_off_there(
        bot: Bot, shop: tuple[str, Engine], mailer: ScriptedHttpServer) -> None:
    shop_url, engine = shop
    bot.write_config(extra=data_map_toml(shop_url, mailer.url))
    mailer.answer(200, {"found": False}, always=True)
    bot.account.append(mail("pavel.new@example.com", "Отписаться", ""))  # no system knows this address yet
    bot.run()
    assert bot.requests()[0].outcome == "suppressed"

    with engine.begin() as connection:  # the shop takes the address on later, marketing on
        connection.execute(B_USER.update().where(B_USER.c.ID == 1).values(EMAIL="pavel.new@example.com",
                                                                           UF_NEWS=True))
    bot.account.append(mail("pavel.new@example.com", "Запрос персональных данных", ""))
    bot.run()

    assert row(engine, B_USER, 1).UF_NEWS in (False, 0)  # the list kept marketing off in the shop's row
