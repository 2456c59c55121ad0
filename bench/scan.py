"""One `run --once` through a busy shared mailbox, next to the least work any implementation must do.

Starts a private Dovecot and an SMTP server on 127.0.0.1 (needs root and
dovecot-imapd), fills two identical mailboxes with ``--messages`` messages
of 4–400 KB (sizes log-uniform), ``--request-share`` of them opt-out
requests, and measures on the same servers, in this order:

- **the naive loop**: fetch every message whole, one at a time
  (``BODY.PEEK[]``), on mailbox A;
- **the reference**, the least work: one SEARCH and a FETCH of every header
  block in batches, with the SEARCH of each batch's text for the stems of
  letters without a marker (``reading/unmarked.toml``), each request's body whole, one reply per request over
  one SMTP connection, and one MOVE of the requests — imapclient and
  smtplib, no processing — on mailbox A;
- **the bot**: one pass of ``run --once`` (SQLite, replies over SMTP), then
  a pass with nothing new, on mailbox B.  Its time net of start-up is the
  first pass minus the second.

It prints each time and the bot's and the naive loop's ratios to the
reference.  (Memory is ``bench.memory``'s: this process holds the generated
mailbox.)

Run from the repository root:  .venv/bin/python -m bench.scan [--messages 20000] [--request-share 0.01]
"""

from __future__ import annotations

import argparse
import math
import random
import smtplib
import tempfile
import time
from pathlib import Path

from bench import started_dovecot
from dsr_mailbot.config import load_config
from dsr_mailbot.mailbox.imap import text_search
from dsr_mailbot.reading.unmarked import shipped_unmarked
from dsr_mailbot.service.app import run_once_from_config
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import User
from tests.harness import mail
from tests.servers import ImapAccount, SmtpServer

LINE = "Where is my parcel? It was paid a week ago and the tracking page says nothing new.\n"


def messages(count: int, share: float, min_kb: int, max_kb: int, seed: int) -> tuple[list[bytes], int]:
    """The mailbox's messages in arrival order, and how many are requests."""
    rng = random.Random(seed)
    requests = max(1, round(count * share)) if share > 0 else 0
    every = max(1, count // max(1, requests))
    out: list[bytes] = []
    made = 0
    for n in range(count):
        size = int(math.exp(rng.uniform(math.log(min_kb), math.log(max_kb))) * 1024)
        if made < requests and n % every == every - 1:
            out.append(mail(f"user{made}@example.kz", "Unsubscribe", "Please stop sending me newsletters.\n"))
            made += 1
        else:
            out.append(mail(f"buyer{n}@example.org", f"Order {n}", LINE * max(1, size // len(LINE))))
    return out, made


def fill(account: ImapAccount, data: list[bytes]) -> None:
    with account.client() as client:
        for start in range(0, len(data), 100):
            client.multiappend("INBOX", data[start:start + 100])


def naive_loop(account: ImapAccount) -> float:
    with account.client() as client:
        client.select_folder("INBOX", readonly=True)
        started = time.perf_counter()
        for uid in client.search(["ALL"]):
            client.fetch([uid], ["BODY.PEEK[]"])
        return time.perf_counter() - started


def least_work(account: ImapAccount, smtp_port: int, request_uids: set[int]) -> float:
    started = time.perf_counter()
    with account.client() as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search(["ALL"])
        stems = shipped_unmarked().stems
        for start in range(0, len(uids), 200):
            batch = uids[start:start + 200]
            client.fetch(batch, ["BODY.PEEK[HEADER]", "RFC822.SIZE", "INTERNALDATE"])
            # Letters without a marker (policy 4.1, 7.1): the server's own search for the stems, over the batch.
            client.search(text_search(f"{batch[0]}:{batch[-1]}", stems), charset="UTF-8")
        bodies = {uid: client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] for uid in sorted(request_uids)}
        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
            for uid in bodies:
                smtp.sendmail("support@smarthings.kz", [f"user{uid}@example.kz"],
                              mail("support@smarthings.kz", "Re: Unsubscribe", "Done."))
        client.select_folder("INBOX")
        client.create_folder("Processed")  # the bot creates its processed folder on its first move too
        client.move(sorted(request_uids), "Processed")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--request-share", type=float, default=0.01)
    parser.add_argument("--min-kb", type=int, default=4)
    parser.add_argument("--max-kb", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    data, requests = messages(args.messages, args.request_share, args.min_kb, args.max_kb, args.seed)
    request_uids = {n + 1 for n, message in enumerate(data) if b"Subject: Unsubscribe" in message[:2000]}
    dovecot = started_dovecot()
    smtp = SmtpServer()
    smtp.start()
    try:
        reference_box, bot_box = dovecot.new_account(), dovecot.new_account()
        started = time.perf_counter()
        fill(reference_box, data)
        fill(bot_box, data)
        megabytes = sum(len(m) for m in data) / 1e6
        print(f"mailbox: {len(data):,} messages, {requests} requests, {megabytes:,.0f} MB "
              f"(filled twice in {time.perf_counter() - started:.0f} s)")
        del data

        naive = naive_loop(reference_box)
        reference = least_work(reference_box, smtp.port, request_uids)

        work = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
        (work / "config.toml").write_text(
            f'[imap]\nhost = "127.0.0.1"\nport = {bot_box.port}\nsecurity = "none"\n'
            f'username = "{bot_box.username}"\npassword = "{bot_box.password}"\n'
            f'[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\nsecurity = "none"\n'
            'from_address = "support@smarthings.kz"\n',
            encoding="utf-8",
        )
        config = load_config(work / "config.toml")
        store = Store(config.database_url)
        store.init_schema()
        with store.transaction() as session:
            for n in range(requests):
                session.add(User(email=f"user{n}@example.kz", marketing_consent=True))
        started = time.perf_counter()
        report = run_once_from_config(config, store)
        first = time.perf_counter() - started
        started = time.perf_counter()
        run_once_from_config(config, store)
        idle = time.perf_counter() - started
        store.dispose()
        net = first - idle

        print(f"reference (least work: headers, request bodies, SMTP, MOVE): {reference:.2f} s")
        print(f"naive loop (every message whole, one at a time):            {naive:.2f} s "
              f"= {naive / reference:.1f}x the reference")
        print(f"bot, first pass: {first:.2f} s; {report.summary()}")
        print(f"bot, pass with nothing new: {idle * 1000:.0f} ms")
        print(f"bot net of start-up: {net:.2f} s = {net / reference:.1f}x the reference (target <= 1.3x)")
    finally:
        smtp.stop()
        dovecot.destroy()


if __name__ == "__main__":
    main()
