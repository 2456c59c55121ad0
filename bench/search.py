"""What Dovecot's body SEARCH costs without a full-text index, by the number of stems, next to fetching the text.

The scan asks the server which of a batch's ordinary letters contain a
stem of an opt-out or a question (``reading/unmarked.toml``).  Without an
FTS plugin Dovecot reads every message for every stem.  Starts a private
Dovecot (needs root and dovecot-imapd), fills a mailbox with
``--messages`` messages as ``bench.scan`` makes them (delivered header
blocks), and times, over the same batches of 200: the SEARCH with 1, 2, 4
and all the stems; and a FETCH of each message's first 64 KB of text (what
reading them here would transfer).

Run from the repository root:  .venv/bin/python -m bench.search [--messages 1000] [--max-kb 100]
"""

from __future__ import annotations

import argparse
import time

from bench import started_dovecot
from bench.scan import fill, messages
from dsr_mailbot.mailbox.imap import text_search
from dsr_mailbot.reading.unmarked import shipped_unmarked

BATCH = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--max-kb", type=int, default=100)
    args = parser.parse_args()
    data, _requests = messages(args.messages, 0.01, 4, args.max_kb, 1, realistic=True)
    stems = shipped_unmarked().stems
    dovecot = started_dovecot()
    try:
        box = dovecot.new_account()
        fill(box, data)
        batches = [(start, min(start + BATCH - 1, len(data))) for start in range(1, len(data) + 1, BATCH)]
        with box.client() as client:
            client.select_folder("INBOX", readonly=True)
            started = time.perf_counter()
            for first, last in batches:
                client.fetch(list(range(first, last + 1)), ["BODY.PEEK[TEXT]<0.65536>"])
            fetched = time.perf_counter() - started
            print(f"{len(data):,} messages: FETCH of each one's first 64 KB of text {fetched:.2f} s "
                  f"({fetched / len(data) * 1000:.1f} ms a message)")
            for count in sorted({1, 2, 4, len(stems)}):
                started = time.perf_counter()
                for first, last in batches:
                    client.search(text_search(f"{first}:{last}", stems[:count]), charset="UTF-8")
                took = time.perf_counter() - started
                print(f"  SEARCH for {count:2d} stem(s): {took:.2f} s ({took / len(data) * 1000:.1f} ms a message, "
                      f"{took / fetched:.1f}x the FETCH)")
    finally:
        dovecot.destroy()


if __name__ == "__main__":
    main()
