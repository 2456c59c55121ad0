"""Arrival → reply accepted by the SMTP server, while the daemon idles (IMAP IDLE).

Starts a private Dovecot and an SMTP server (as the tests do; needs root and
dovecot-imapd), runs `dsr-mailbot run` as a real process on SQLite, then
APPENDs requests one at a time (``--gap`` seconds apart) and measures, for
each, the time from the APPEND's completion to the SMTP server's acceptance
of the reply.  Prints p50, p90, p99 and max.  Targets (issue 5): p50 < 1 s,
p99 < 3 s.

Run from the repository root:  .venv/bin/python -m bench.latency [--messages 60] [--gap 0.3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench import started_dovecot
from dsr_mailbot.store.models import User
from tests.harness import Bot, DaemonProcess, mail, wait_until
from tests.servers import SmtpServer


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--gap", type=float, default=0.3)
    args = parser.parse_args()
    dovecot, smtp = started_dovecot(), SmtpServer()
    smtp.start()
    work = Path(tempfile.mkdtemp(prefix="dsr-latency-"))
    bot = Bot(work, dovecot.new_account(), smtp, f"sqlite:///{work / 'store.db'}")
    bot.write_config(extra="\n[daemon]\nidle = true\npoll_interval_seconds = 60\n")
    people = [f"user{n}@example.kz" for n in range(args.messages)]
    with bot.store.transaction() as session:
        session.add_all([User(email=p, marketing_consent=True) for p in people])
    daemon = DaemonProcess(bot)
    try:
        daemon.wait_for_log("dsr-mailbot running")
        time.sleep(1)
        arrived: dict[str, float] = {}
        for person in people:
            bot.account.append(mail(person, "Unsubscribe"))
            arrived[person] = time.monotonic()
            time.sleep(args.gap)
        wait_until(lambda: len(smtp.messages) >= len(people), timeout=120, what="every reply")
        latencies = [m.accepted_at - arrived[m.rcpt_tos[0]] for m in smtp.messages]
        print(f"{len(latencies)} requests, one every {args.gap} s, daemon idling (IMAP IDLE), SQLite")
        print(f"arrival → reply accepted: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p90 {percentile(latencies, 0.9) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
              f"max {max(latencies) * 1000:.0f} ms")
    finally:
        daemon.stop()
        smtp.stop()
        dovecot.destroy()
        bot.close()


if __name__ == "__main__":
    main()
