"""Peak memory of one `run --once` over a very large mailbox with one huge request, next to its reference.

Starts a private Dovecot (needs root and dovecot-imapd), fills one mailbox
with ``--messages`` ordinary messages (default 100,000) and one update
request carrying a 25 MB attachment, then runs one pass in a fresh process
and prints its peak RSS beside the peak RSS of a fresh process that only
imports the bot and opens its store (the reference, measured in the same
run).  The request is read only up to ``max_message_bytes`` (10 MB by
default), and the scan holds one batch of header blocks at a time.

Run from the repository root:  .venv/bin/python -m bench.memory [--messages 100000] [--attachment-mb 25]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

from bench import started_dovecot
from bench.scan import fill, messages
from dsr_mailbot.config import load_config
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import User

# VmHWM, not getrusage's ru_maxrss: Linux carries the parent's peak at fork into the child's ru_maxrss.
PEAK = """
import sys
from pathlib import Path
{body}
status = open("/proc/self/status").read()
print(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) // 1024)
"""


def huge_request(size_mb: int) -> bytes:
    message = EmailMessage()
    message["From"] = "user0@example.kz"
    message["To"] = "support@smarthings.kz"
    message["Subject"] = "Обновление персональных данных"
    message["Message-ID"] = "<huge.request@example.kz>"
    message.set_content("Телефон: 8 701 765 43 21\n")
    message.add_attachment(b"\0" * (size_mb * 1024 * 1024), maintype="application", subtype="octet-stream",
                           filename="scan.bin")
    return message.as_bytes()


def peak_mb(body: str) -> int:
    result = subprocess.run([sys.executable, "-c", PEAK.format(body=body)], check=False, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise SystemExit(f"the measured process failed:\n{result.stderr[-2000:]}")
    return int(result.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--attachment-mb", type=int, default=25)
    args = parser.parse_args()
    dovecot = started_dovecot()
    try:
        account = dovecot.new_account()
        started = time.perf_counter()
        for start in range(0, args.messages, 10_000):  # 1–4 KB each, made and appended 10,000 at a time
            batch, _ = messages(min(10_000, args.messages - start), 0, 1, 4, seed=start)
            fill(account, batch)
        with account.client() as client:
            client.append("INBOX", huge_request(args.attachment_mb))
        print(f"mailbox: {args.messages:,} ordinary messages and one request with a {args.attachment_mb} MB "
              f"attachment (filled in {time.perf_counter() - started:.0f} s)")
        work = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
        config_path = work / "config.toml"
        config_path.write_text(
            f'[imap]\nhost = "127.0.0.1"\nport = {account.port}\nsecurity = "none"\n'
            f'username = "{account.username}"\npassword = "{account.password}"\n'
            '[trust]\nverification = "never"\n[file_delivery]\ndirectory = "outbox"\n',
            encoding="utf-8",
        )
        store = Store(load_config(config_path).database_url)
        store.init_schema()
        with store.transaction() as session:
            session.add(User(email="user0@example.kz", phone="+77010000000"))
        store.dispose()
        reference = peak_mb(
            "from dsr_mailbot.config import load_config\nfrom dsr_mailbot.service.app import build_services\n"
            f"build_services(load_config(Path({str(config_path)!r})))")
        started = time.perf_counter()
        bot = peak_mb(
            "from dsr_mailbot.config import load_config\nfrom dsr_mailbot.service.app import run_once_from_config\n"
            f"report = run_once_from_config(load_config(Path({str(config_path)!r})))\n"
            "print(report.summary(), file=sys.stderr)")
        elapsed = time.perf_counter() - started
        print(f"reference (the bot started, nothing done): peak RSS {reference} MB")
        print(f"one run --once over the mailbox ({elapsed:.1f} s): peak RSS {bot} MB (target < 200 MB)")
    finally:
        dovecot.destroy()  # removes its mail directory too


if __name__ == "__main__":
    main()
