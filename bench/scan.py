"""How fast one `run --once` goes through a busy shared mailbox, next to the IMAP server's own speed.

Starts a private Dovecot (as the tests do; needs root and dovecot-imapd), fills
one mailbox with ordinary support mail and some requests, then measures:

- baseline: the server alone — one UID SEARCH and a FETCH of every header
  block (BODY.PEEK[HEADER]) in batches, with imapclient and no processing;
- the bot: one pass of `run --once` (scan, classify, fetch and apply the
  requests, replies to a file outbox, archive), on SQLite;
- a second pass with nothing new (the cost of an idle cron run);
- peak memory (max RSS) of this process.

Run from the repository root:  .venv/bin/python -m bench.scan [--ordinary N] [--requests N]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from bench import started_dovecot
from dsr_mailbot.config import load_config
from dsr_mailbot.service.app import run_once_from_config
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import User
from tests.harness import mail


def fill(account_client: object, ordinary: int, requests: int) -> None:
    batch: list[bytes] = []
    every = max(1, ordinary // max(1, requests))
    made_requests = 0
    for n in range(ordinary + requests):
        if made_requests < requests and n % (every + 1) == every:
            batch.append(mail(f"user{made_requests}@example.kz", "Unsubscribe", "stop"))
            made_requests += 1
        else:
            batch.append(mail(f"buyer{n}@example.org", f"Order {n}", "Where is my parcel? " * 20))
        if len(batch) == 200:
            account_client.multiappend("INBOX", batch)  # type: ignore[attr-defined]
            batch = []
    if batch:
        account_client.multiappend("INBOX", batch)  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ordinary", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    dovecot = started_dovecot()
    try:
        account = dovecot.new_account()
        with account.client() as client:
            fill(client, args.ordinary, args.requests)
            client.select_folder("INBOX", readonly=True)
            started = time.perf_counter()
            uids = client.search(["UID", "1:*"])
            for i in range(0, len(uids), 200):
                client.fetch(uids[i : i + 200], ["BODY.PEEK[HEADER]", "RFC822.SIZE", "INTERNALDATE"])
            baseline = time.perf_counter() - started
        total = len(uids)

        work = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
        (work / "config.toml").write_text(
            f'[imap]\nhost = "127.0.0.1"\nport = {account.port}\nsecurity = "none"\n'
            f'username = "{account.username}"\npassword = "{account.password}"\n'
            '[file_delivery]\ndirectory = "outbox"\n',
            encoding="utf-8",
        )
        config = load_config(work / "config.toml")
        store = Store(config.database_url)
        store.init_schema()
        with store.transaction() as session:
            for n in range(args.requests):
                session.add(User(email=f"user{n}@example.kz", marketing_consent=True))

        started = time.perf_counter()
        report = run_once_from_config(config, store)
        first = time.perf_counter() - started
        started = time.perf_counter()
        run_once_from_config(config, store)
        idle = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        print(f"mailbox: {total} messages ({args.ordinary} ordinary, {args.requests} requests)")
        print(f"server alone, SEARCH + FETCH all headers: {baseline:.2f} s ({total / baseline:,.0f} msg/s)")
        print(f"bot, first pass:  {first:.2f} s ({total / first:,.0f} msg/s scanned); {report.summary()}")
        print(f"bot, pass with nothing new: {idle * 1000:.0f} ms")
        print(f"bot / server time for the scan: {first / baseline:.1f}x")
        print(f"per request (first pass minus the server's scan time): "
              f"{(first - baseline) / max(1, args.requests) * 1000:.1f} ms")
        print(f"peak RSS of this process: {peak_mb:.0f} MB")
        store.dispose()
    finally:
        dovecot.destroy()


if __name__ == "__main__":
    main()
