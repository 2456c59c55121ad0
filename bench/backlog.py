"""A backlog of requests, end to end, on SQLite, PostgreSQL and MariaDB, next to the least an implementation must do.

Starts a private Dovecot, an SMTP server and a private MariaDB on 127.0.0.1
(needs root, dovecot-imapd and mariadb-server; PostgreSQL at 127.0.0.1:5432
as the tests use it; a fresh database per store), fills a mailbox with
``--requests`` opt-out requests
from as many users, and measures:

- **the reference**, SMTP + MOVE only: one reply per request over one SMTP
  connection and one MOVE of every request (imapclient, smtplib);
- **the bot** on each store: one worker, as cron runs it (one ``run --once``
  as a fresh process), and two workers, as daemons (``run``) timed until
  every request is answered and moved; then it checks that every request
  was applied and answered exactly once (the store's states, the SMTP
  server's recipients).  SQLite serves one process: its second worker
  leaves at once, and the figure shows what one daemon does.  PostgreSQL and
  MariaDB share the work: one holds the mailbox, both send.

It prints requests per second for each and the bot's share of the reference.

Run from the repository root:  .venv/bin/python -m bench.backlog [--requests 10000]
"""

from __future__ import annotations

import argparse
import secrets
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlmodel import select

from bench import started_dovecot
from bench.scan import fill
from dsr_mailbot.store.database import Store, all_requests
from dsr_mailbot.store.models import OutboxMessage, User
from tests.harness import mail
from tests.servers import ImapAccount, MariaDB, SmtpServer, mariadb_binaries

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def requests(count: int) -> list[bytes]:
    return [mail(f"user{n}@example.kz", "Unsubscribe", "Please stop sending me newsletters.\n") for n in range(count)]


def reference(account: ImapAccount, smtp_port: int, count: int) -> float:
    started = time.perf_counter()
    with account.client() as client, smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
        client.select_folder("INBOX")
        uids = client.search(["ALL"])
        for n in range(count):
            smtp.sendmail("support@smarthings.kz", [f"user{n}@example.kz"],
                          mail("support@smarthings.kz", "Re: Unsubscribe", "Done."))
        client.create_folder("Processed")
        client.move(uids, "Processed")
    return time.perf_counter() - started


def prepare(db_url: str, account: ImapAccount, smtp: SmtpServer, count: int) -> Path:
    """A configuration for this store and mailbox, and the store with one consenting user per request."""
    work = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
    config = work / "config.toml"
    config.write_text(
        f'[imap]\nhost = "127.0.0.1"\nport = {account.port}\nsecurity = "none"\n'
        f'username = "{account.username}"\npassword = "{account.password}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
        f'from_address = "support@smarthings.kz"\n[database]\nurl = "{db_url}"\n'
        f"[daemon]\npoll_interval_seconds = 1\n",
        encoding="utf-8",
    )
    store = Store(db_url)
    store.init_schema()
    with store.transaction() as session:
        for n in range(count):
            session.add(User(email=f"user{n}@example.kz", marketing_consent=True))
    store.dispose()
    return config


def finished(db_url: str) -> tuple[Counter[str], int, int, int]:
    """Requests by state, those not moved yet, replies still queued, and users still consenting."""
    store = Store(db_url)
    with store.transaction() as session:
        requests = all_requests(session)
        states = Counter(r.state for r in requests)
        unarchived = sum(1 for r in requests if r.archived_at is None)
        queued = sum(1 for state in session.exec(select(OutboxMessage.state)).all() if state == "queued")
        consenting = sum(1 for consent in session.exec(select(User.marketing_consent)).all() if consent)
    store.dispose()
    return states, unarchived, queued, consenting


def run_once(name: str, db_url: str, account: ImapAccount, smtp: SmtpServer, count: int) -> float:
    """One worker, as cron runs it: one ``run --once`` as a fresh process."""
    config = prepare(db_url, account, smtp, count)
    before = len(smtp.messages)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(config), "run", "--once"], check=True,
                   capture_output=True)
    elapsed = time.perf_counter() - started
    report(f"{name}, one worker (run --once)", db_url, smtp, before, count, elapsed)
    return elapsed


def run_daemons(name: str, db_url: str, account: ImapAccount, smtp: SmtpServer, count: int, workers: int) -> float:
    """``workers`` daemons (``run``) on one store and mailbox, timed until every request is answered and moved.

    On PostgreSQL one holds the mailbox and every one sends from the outbox;
    on SQLite the store serves one process, and the others leave at once.
    """
    config = prepare(db_url, account, smtp, count)
    before = len(smtp.messages)
    started = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, "-m", "dsr_mailbot", "-c", str(config), "run"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(workers)]
    try:
        while True:
            time.sleep(0.2)
            if len(smtp.messages) - before < count:
                continue
            states, unarchived, queued, _consenting = finished(db_url)
            if states.get("completed", 0) == count and unarchived == 0 and queued == 0:
                break
        elapsed = time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
    report(f"{name}, {workers} workers (run)", db_url, smtp, before, count, elapsed)
    return elapsed


def report(label: str, db_url: str, smtp: SmtpServer, before: int, count: int, elapsed: float) -> None:
    states, unarchived, queued, consenting = finished(db_url)
    replies = Counter(r for m in smtp.messages[before:] for r in m.rcpt_tos)
    once = len(replies) == count and set(replies.values()) == {1}
    print(f"bot on {label}: {elapsed:.1f} s, {count / elapsed:,.0f} requests/s; states {dict(states)}; "
          f"opted out {count - consenting}/{count}; not moved {unarchived}; still queued {queued}; "
          f"every request answered exactly once: {once}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    data = requests(args.requests)
    binaries = mariadb_binaries()
    if binaries is None:
        raise SystemExit("mariadb-server is not installed (apt-get install mariadb-server)")
    mariadb = MariaDB(*binaries)
    mariadb.start()
    dovecot = started_dovecot()
    smtp = SmtpServer()
    smtp.start()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    database = f"dsr_bench_{secrets.token_hex(4)}"
    try:
        runs = [(name, workers) for name in ("SQLite", "PostgreSQL", "MariaDB") for workers in (1, 2)]
        boxes = [dovecot.new_account() for _ in range(len(runs) + 1)]
        for box in boxes:
            fill(box, data)
        ref = reference(boxes[0], smtp.port, args.requests)
        print(f"{args.requests:,} requests; reference (SMTP + MOVE only): {ref:.1f} s, "
              f"{args.requests / ref:,.0f} requests/s")
        results: list[tuple[str, float]] = []
        for n, (name, workers) in enumerate(runs):
            if name == "SQLite":
                url = f"sqlite:///{tempfile.mkdtemp(prefix='dsr-bench-')}/bench.db"
            elif name == "MariaDB":
                url = mariadb.create_database(f"{database}_{workers}")
            else:
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{database}_{workers}"'))
                url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}_{workers}"
            box = boxes[n + 1]
            elapsed = (run_once(name, url, box, smtp, args.requests) if workers == 1
                       else run_daemons(name, url, box, smtp, args.requests, workers))
            results.append((f"{name}, {workers} worker(s)", elapsed))
        for label, elapsed in results:
            print(f"{label}: {ref / elapsed:.0%} of the reference's throughput (target >= 50%)")
    finally:
        with admin.connect() as connection:
            for workers in (1, 2):
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}_{workers}" WITH (FORCE)'))
        admin.dispose()
        smtp.stop()
        dovecot.destroy()
        mariadb.destroy()


if __name__ == "__main__":
    main()
