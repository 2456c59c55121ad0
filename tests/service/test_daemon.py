"""`dsr-mailbot run` as a real process: IDLE, polling, signals, reload, and outages of every server."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.harness import Bot, DaemonProcess, mail, wait_until
from tests.servers import Dovecot, ImapAccount, SmtpServer

IVAN = "ivan.petrov@example.ru"


def daemon_config(bot: Bot, poll: int = 60, idle: bool = True, extra: str = "") -> None:
    bot.write_config(extra=f"{extra}\n[daemon]\nidle = {'true' if idle else 'false'}\npoll_interval_seconds = {poll}\n")


def replies_to(bot: Bot, address: str) -> int:
    return sum(1 for m in bot.smtp.messages if m.rcpt_tos == [address])


def test_idle_answers_a_new_request_without_waiting_for_the_poll(bot: Bot) -> None:
    daemon_config(bot, poll=120)  # a poll would take two minutes: only IDLE can be this quick
    bot.add_user(IVAN, marketing_consent=True)
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("dsr-mailbot running")
    time.sleep(0.5)  # let the watcher reach IDLE

    bot.account.append(mail(IVAN, "Unsubscribe"))
    wait_until(lambda: replies_to(bot, IVAN) == 1, timeout=15, what="the reply")

    assert daemon.stop() == 0
    user = bot.user(IVAN)
    assert user is not None and not user.marketing_consent
    assert bot.account.snapshot("INBOX") == {}


def test_polling_when_idle_is_off(bot: Bot) -> None:
    daemon_config(bot, poll=1, idle=False)
    bot.add_user(IVAN, marketing_consent=True)
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("dsr-mailbot running")
    bot.account.append(mail(IVAN, "Unsubscribe"))
    wait_until(lambda: replies_to(bot, IVAN) == 1, what="the reply")
    assert daemon.stop() == 0


def test_sigterm_and_sigint_stop_it_cleanly_and_quickly(bot: Bot) -> None:
    daemon_config(bot)
    for signum in (signal.SIGTERM, signal.SIGINT):
        daemon = DaemonProcess(bot, name=f"d{signum}")
        daemon.wait_for_log("dsr-mailbot running")
        time.sleep(0.5)
        started = time.monotonic()
        daemon.signal(signum)
        assert daemon.stop(timeout=10) == 0
        assert time.monotonic() - started < 10


def test_sighup_reloads_templates(bot: Bot, tmp_path: Path) -> None:
    import shutil

    from tests.harness import REPO

    templates = tmp_path / "templates"
    shutil.copytree(REPO / "templates", templates)
    # A short poll: this test is about the reload, not about IDLE's latency (tested above).
    daemon_config(bot, poll=5, extra=f'[templates]\ndirectory = "{templates}"\n')
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user("anna@example.kz", marketing_consent=True)
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("dsr-mailbot running")
    bot.account.append(mail(IVAN, "Unsubscribe"))
    wait_until(lambda: len(bot.smtp.messages) == 1, what="the first reply")

    optout = templates / "en" / "parts" / "optout_applied.txt"  # the text; optout_applied.txt wraps it
    optout.write_text(optout.read_text(encoding="utf-8").replace("You have opted out", "Done: you opted out"),
                      encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    daemon.wait_for_log("configuration and templates reloaded")
    bot.account.append(mail("anna@example.kz", "Unsubscribe"))
    wait_until(lambda: len(bot.smtp.messages) == 2, what="the second reply")

    first, second = bot.replies()
    assert "You have opted out" in bot.reply_text(first)
    assert "Done: you opted out" in bot.reply_text(second)
    assert daemon.stop() == 0


def test_a_wrong_password_stops_it_with_exit_78(bot: Bot) -> None:
    daemon_config(bot)
    bot.config_path.write_text(bot.config_path.read_text(encoding="utf-8").replace(bot.account.password, "wrong"),
                               encoding="utf-8")
    daemon = DaemonProcess(bot)
    code = daemon.process.wait(timeout=20)
    daemon.log_file.close()
    assert code == 78
    assert "[imap] username/password: login refused" in daemon.log and "wrong" not in daemon.log


def test_a_second_daemon_on_one_sqlite_store_leaves(bot: Bot) -> None:
    daemon_config(bot)
    first = DaemonProcess(bot, name="first")
    first.wait_for_log("dsr-mailbot running")
    second = DaemonProcess(bot, name="second")
    assert second.process.wait(timeout=20) == 75
    assert "another dsr-mailbot holds the lock file" in second.log
    assert first.stop() == 0


# Outages


def test_dovecot_restarted_mid_run_is_survived_and_logged_once(
    own_dovecot: Dovecot, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    account: ImapAccount = own_dovecot.new_account()
    bot = Bot(tmp_path, account, smtp_server, f"sqlite:///{tmp_path / 'store.db'}")
    daemon_config(bot, poll=2)
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user("anna@example.kz", marketing_consent=True)
    account.append(mail(IVAN, "Unsubscribe"))
    daemon = DaemonProcess(bot)
    wait_until(lambda: replies_to(bot, IVAN) == 1, what="the first reply")

    own_dovecot.stop()
    daemon.wait_for_log("mailbox down:")
    time.sleep(3)  # several retries while it is down
    own_dovecot.start()
    account.append(mail("anna@example.kz", "Unsubscribe"))
    wait_until(lambda: replies_to(bot, "anna@example.kz") == 1, timeout=60, what="the reply after the restart")

    assert daemon.stop() == 0
    assert daemon.log.count("mailbox down:") == 1 and daemon.log.count("mailbox back after") == 1
    assert len(bot.smtp.messages) == 2
    bot.close()


def test_smtp_deferring_then_down_then_back(bot: Bot) -> None:
    daemon_config(bot, poll=1)
    bot.add_user(IVAN, marketing_consent=True)
    bot.smtp.handler.data_reply = "451 4.3.0 try again later"
    daemon = DaemonProcess(bot)
    bot.account.append(mail(IVAN, "Unsubscribe"))
    wait_until(lambda: any(r.attempts >= 2 for r in bot.outbox()), what="deferred attempts")
    bot.smtp.stop()
    time.sleep(2)
    bot.smtp.handler.data_reply = None
    bot.smtp.start()

    wait_until(lambda: replies_to(bot, IVAN) == 1, what="the reply after the outage")
    time.sleep(1.5)  # another outbox run, which must not send it again

    assert daemon.stop() == 0
    assert replies_to(bot, IVAN) == 1
    assert daemon.log.count("SMTP server down:") == 1 and daemon.log.count("SMTP server back after") == 1
    user = bot.user(IVAN)
    assert user is not None and not user.marketing_consent


def test_sqlite_locked_by_another_writer(bot: Bot) -> None:
    daemon_config(bot, poll=1)
    bot.config_path.write_text(
        bot.config_path.read_text(encoding="utf-8").replace("[database]\n", "[database]\nbusy_timeout_ms = 200\n"),
        encoding="utf-8",
    )
    bot.add_user(IVAN, marketing_consent=True)
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("dsr-mailbot running")
    time.sleep(0.5)
    database = bot.db_url.removeprefix("sqlite:///")
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the database
    bot.account.append(mail(IVAN, "Unsubscribe"))
    daemon.wait_for_log("database down: database unavailable (OperationalError)")
    time.sleep(2)
    other.execute("ROLLBACK")
    other.close()

    wait_until(lambda: replies_to(bot, IVAN) == 1, what="the reply once the lock is gone")
    assert daemon.stop() == 0
    assert len(bot.requests()) == 1
    assert daemon.log.count("database down:") == 1 and daemon.log.count("database back after") == 1


def test_postgresql_connections_killed_mid_run(
    tmp_path: Path, imap_account: ImapAccount, smtp_server: SmtpServer, pg_database: str
) -> None:
    from tests.conftest import _fresh_tables

    _fresh_tables(pg_database)
    bot = Bot(tmp_path, imap_account, smtp_server, pg_database)
    daemon_config(bot, poll=1)
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user("anna@example.kz", marketing_consent=True)
    daemon = DaemonProcess(bot)
    bot.account.append(mail(IVAN, "Unsubscribe"))
    wait_until(lambda: replies_to(bot, IVAN) == 1, what="the first reply")

    name = pg_database.rsplit("/", 1)[1]
    admin = create_engine(pg_database.rsplit("/", 1)[0] + "/test", isolation_level="AUTOCOMMIT")
    bot.store.dispose()
    with admin.connect() as conn:
        killed = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).scalar()
    admin.dispose()
    assert killed and killed >= 1
    bot.account.append(mail("anna@example.kz", "Unsubscribe"))
    wait_until(lambda: replies_to(bot, "anna@example.kz") == 1, timeout=60, what="the reply after the kill")

    assert daemon.stop() == 0
    assert len(bot.requests()) == 2
    bot.close()


def test_sigterm_under_load_loses_nothing(bot: Bot) -> None:
    daemon_config(bot, poll=1)
    people = [f"user{n}@example.kz" for n in range(150)]
    with bot.store.transaction() as session:
        from dsr_mailbot.store.models import User

        for address in people:
            session.add(User(email=address, marketing_consent=True))
    with bot.account.client() as client:
        client.multiappend("INBOX", [mail(a, "Unsubscribe") for a in people])
    daemon = DaemonProcess(bot)
    wait_until(lambda: len(bot.smtp.messages) >= 20, what="some replies")
    started = time.monotonic()
    assert daemon.stop(timeout=10) == 0
    assert time.monotonic() - started < 10
    assert len(bot.smtp.messages) < len(people)  # it really stopped mid-way

    again = DaemonProcess(bot, name="again")
    wait_until(lambda: len(bot.smtp.messages) >= len(people), timeout=60, what="all replies")
    time.sleep(1)
    assert again.stop() == 0

    assert sorted(m.rcpt_tos[0] for m in bot.smtp.messages) == sorted(people)  # each answered once
    assert [r.state for r in bot.requests()] == ["completed"] * len(people)
    assert sum(1 for e in bot.events() if e.event == "request_completed") == len(people)
    assert bot.account.snapshot("INBOX") == {}


def test_threads_of_one_daemon_never_send_one_reply_twice(bot: Bot) -> None:
    """The watcher and the outbox job both drain the outbox; on SQLite they take turns."""
    from dsr_mailbot.replies.send import drain_outbox
    from dsr_mailbot.replies.transports import FileTransport
    from dsr_mailbot.store.models import OutboxMessage

    with bot.store.transaction() as session:
        for n in range(200):
            session.add(OutboxMessage(purpose="reply", message_id=f"<dsr.{n}.reply.x@smarthings.kz>",
                                      recipient=f"u{n}@example.kz", data=b"Subject: x\r\n\r\nx\r\n"))
    out = bot.dir / "out"
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        drain_outbox(bot.store, FileTransport(out), "support@smarthings.kz"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.sent for r in results) == 200
    assert len(list(out.iterdir())) == 200


def test_withdrawn_users_are_erased_when_their_date_comes(bot: Bot) -> None:
    """The erasure step: the user row goes, the audit trail keeps only that it happened and why."""
    from datetime import timedelta

    from dsr_mailbot.store.keys import keyring_for
    from dsr_mailbot.store.models import utcnow

    bot.add_user(IVAN, marketing_consent=True, phone="+77011112233")
    bot.add_user("anna@example.kz", marketing_consent=True)
    bot.account.append(mail(IVAN, "Withdrawal of consent"))
    bot.run()
    config = bot.config
    keyring = keyring_for(config.secret_key, config.key_file)

    assert bot.run().erased == 0 and bot.user(IVAN) is not None  # not due yet
    assert bot.run(now=utcnow() + timedelta(days=31)).erased == 1

    assert bot.user(IVAN) is None and bot.user("anna@example.kz") is not None
    [erased] = [e for e in bot.events() if e.event == "user_erased"]
    assert erased.subject_ref == keyring.subject_ref(IVAN)
    [withdrawal] = bot.requests()
    assert erased.detail == {"fields": ["email", "phone"],  # what was held: he gave no name
                             "reason": "consent_withdrawn", "requests": 1, "replies": 1, "act": str(withdrawal.id),
                             "messages_expunged": 1, "messages_left_in_inbox": 0}
    assert all(row.recipient == "erased" and row.data == b"" for row in bot.outbox())  # the notice too, once sent
    assert all(r.user_id is None and r.message_id is None and r.message_ref for r in bot.requests())


def test_a_missing_folder_stops_it_with_a_clear_error(bot: Bot) -> None:
    daemon_config(bot)
    bot.config_path.write_text(bot.config_path.read_text(encoding="utf-8").replace(
        'folder = "INBOX"', 'folder = "No-Such-Folder"'), encoding="utf-8")
    daemon = DaemonProcess(bot)
    code = daemon.process.wait(timeout=20)
    daemon.log_file.close()
    assert code == 70  # EX_SOFTWARE: 1 is an answer of some commands, never an error
    assert "stopped: IMAP select: server said no" in daemon.log


def test_contrib_unit_is_hardened_and_runs_the_daemon() -> None:
    from tests.harness import REPO

    unit = (REPO / "contrib" / "dsr-mailbot.service").read_text(encoding="utf-8")
    for line in ("ExecStart=/opt/dsr-mailbot/.venv/bin/dsr-mailbot -c /etc/dsr-mailbot/config.toml run",
                 "ExecReload=/bin/kill -HUP $MAINPID", "RestartPreventExitStatus=78", "NoNewPrivileges=yes",
                 "ProtectSystem=strict", "PrivateTmp=yes"):
        assert line in unit.splitlines()
