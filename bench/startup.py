"""A cron run with nothing new, as a new process, against its reference measured in the same run.

Builds the demo (SQLite, a local Maildir, its mail already handled), then
times ``dsr-mailbot run --once`` as a fresh process several times, next to
the floor any SQLModel program pays: ``python -c "import sqlmodel"``.  The
difference is what the bot itself costs when there is nothing to do: its
imports, the configuration, the schema check, the start-up check of every
template, and one look at the mailbox.

Run from the repository root:  .venv/bin/python -m bench.startup [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo"
        subprocess.run([sys.executable, "-m", "dsr_mailbot", "demo", "--dir", str(demo)], check=True,
                       capture_output=True)
        bot = [sys.executable, "-m", "dsr_mailbot", "-c", str(demo / "config.toml"), "run", "--once"]
        floor = [sys.executable, "-c", "import sqlmodel"]
        bare = [sys.executable, "-c", "pass"]
        wall(bot, demo)  # warm the file cache and the compiled templates
        runs = {name: [wall(cmd, demo) for _ in range(args.runs)]
                for name, cmd in (("interpreter alone", bare), ("import sqlmodel", floor), ("run --once", bot))}
    for name, times in runs.items():
        print(f"{name:<18} median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f})")
    extra = statistics.median(runs["run --once"]) - statistics.median(runs["import sqlmodel"])
    print(f"the bot beyond import sqlmodel: {extra:.3f} s (target for the whole run: < 0.6 s)")


if __name__ == "__main__":
    main()
