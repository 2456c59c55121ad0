"""A backlog of requests, end to end, on SQLite and PostgreSQL, next to the least an implementation must do.

Starts a private Dovecot and an SMTP server on 127.0.0.1 (needs root and
dovecot-imapd; PostgreSQL at 127.0.0.1:5432 as the tests use it, a fresh
database per store), fills a mailbox with ``--requests`` opt-out requests
from as many users, and measures:

- **the reference**, SMTP + MOVE only: one reply per request over one SMTP
  connection and one MOVE of every request (imapclient, smtplib);
- **the bot**: one ``run --once`` as a fresh process on each store, with
  replies over SMTP; then it checks that every request was applied and
  answered exactly once (the store's states, the SMTP server's recipients).

It prints requests per second for each and the bot's share of the reference.

Run from the repository root:  .venv/bin/python -m bench.backlog [--requests 10000]
"""

from __future__ import annotations

import argparse
import secrets
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
from dsr_mailbot.store.models import User
from tests.harness import mail
from tests.servers import ImapAccount, SmtpServer

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


def run_bot(name: str, db_url: str, account: ImapAccount, smtp: SmtpServer, count: int) -> float:
    work = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
    config = work / "config.toml"
    config.write_text(
        f'[imap]\nhost = "127.0.0.1"\nport = {account.port}\nsecurity = "none"\n'
        f'username = "{account.username}"\npassword = "{account.password}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
        f'from_address = "support@smarthings.kz"\n[database]\nurl = "{db_url}"\n',
        encoding="utf-8",
    )
    store = Store(db_url)
    store.init_schema()
    with store.transaction() as session:
        for n in range(count):
            session.add(User(email=f"user{n}@example.kz", marketing_consent=True))
    before = len(smtp.messages)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(config), "run", "--once"], check=True,
                   capture_output=True)
    elapsed = time.perf_counter() - started
    with store.transaction() as session:
        states = Counter(r.state for r in all_requests(session))
        consenting = sum(1 for consent in session.exec(select(User.marketing_consent)).all() if consent)
    store.dispose()
    replies = Counter(r for m in smtp.messages[before:] for r in m.rcpt_tos)
    once = len(replies) == count and set(replies.values()) == {1}
    print(f"bot on {name}: {elapsed:.1f} s, {count / elapsed:,.0f} requests/s; states {dict(states)}; "
          f"opted out {count - consenting}/{count}; every request answered exactly once: {once}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    data = requests(args.requests)
    dovecot = started_dovecot()
    smtp = SmtpServer()
    smtp.start()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    database = f"dsr_bench_{secrets.token_hex(4)}"
    try:
        boxes = [dovecot.new_account() for _ in range(3)]
        for box in boxes:
            fill(box, data)
        ref = reference(boxes[0], smtp.port, args.requests)
        print(f"{args.requests:,} requests; reference (SMTP + MOVE only): {ref:.1f} s, "
              f"{args.requests / ref:,.0f} requests/s")
        sqlite = run_bot("SQLite", f"sqlite:///{tempfile.mkdtemp(prefix='dsr-bench-')}/bench.db", boxes[1], smtp,
                         args.requests)
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        postgres = run_bot("PostgreSQL", PG_ADMIN.rsplit("/", 1)[0] + f"/{database}", boxes[2], smtp,
                           args.requests)
        for name, elapsed in (("SQLite", sqlite), ("PostgreSQL", postgres)):
            print(f"{name}: {ref / elapsed:.0%} of the reference's throughput (target >= 50%)")
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
        smtp.stop()
        dovecot.destroy()


if __name__ == "__main__":
    main()
