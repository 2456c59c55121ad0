"""Crafted slow input (issue 8, class 3) against a plain message of the same size, measured in the same run.

For each crafted class, at each size: the time to parse the message and
read it as a request (everything the bot does with sender text; all of it
before any database transaction), next to the same for an ordinary request
of the same size.  Linear work shows as a ratio near 1 that stays flat as
the size grows; a super-linear pattern shows as a ratio that grows with it.

Run from the repository root:  .venv/bin/python -m bench.crafted [--sizes 250000 1000000 4000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from dsr_mailbot.config import Config, load_config
from dsr_mailbot.facts import read_request
from dsr_mailbot.reading.classify import classify_subject
from dsr_mailbot.reading.parse import parse_message
from tests.crafted import CRAFTED, SUBJECT, plain_reference

SENDER = "ivan@example.ru"


def time_read(config: Config, data: bytes, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        parsed = parse_message(data)
        classification = classify_subject(parsed.headers.subject) or classify_subject(SUBJECT)
        assert classification is not None
        read_request(config, parsed, classification)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000, 4_000_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.toml"
        path.write_text('[maildir]\npath = "mail"\n', encoding="utf-8")
        config = load_config(path)
        print(f"{'input':<24}" + "".join(f"{size:>12,} B (ratio)" for size in args.sizes))
        references = {size: time_read(config, plain_reference(SENDER, size)) for size in args.sizes}
        print(f"{'plain (reference)':<24}" + "".join(f"{references[s] * 1000:>11.1f} ms (1.00)" for s in args.sizes))
        for name, build in CRAFTED.items():
            cells = []
            for size in args.sizes:
                seconds = time_read(config, build(SENDER, size))
                cells.append(f"{seconds * 1000:>11.1f} ms ({seconds / references[size]:.2f})")
            print(f"{name:<24}" + "".join(cells))


if __name__ == "__main__":
    main()
