"""The monthly report and the audit export over a large store, as the operator runs them: time and peak memory.

Generates a store (bench/reporting_store.py) at each size of ``--requests``
(default 100,000 and 1,000,000), with ``--events-per-request`` audit events
per request (5: 500,000 and 5,000,000) and a tenth of the requests in the
reported month (10,000 and 100,000), on SQLite and on PostgreSQL
(127.0.0.1:5432 as the tests use it, a fresh database ``dsr_bench_<random>``,
dropped after).  Then it runs, each as a fresh process with its output sent
to /dev/null (``python -m dsr_mailbot -c CONFIG …``):

- ``db current``: the reference, the bot started and its store opened;
- ``report --month`` in both formats (table, json);
- ``audit export --format jsonl`` (its one format), whole and ``--since``
  the reported month's first day.

Each runs ``--runs`` times (3; the median time and the highest peak are shown)
under a fresh, small wrapper process that reads its peak RSS from
``getrusage(RUSAGE_CHILDREN)`` (a fresh wrapper: Linux carries a parent's
peak into a forked child's ``ru_maxrss``), and prints its wall time beside
the targets: peak RSS < 150 MB for every command (what streaming means
here: the same memory at both sizes), ``report`` < 2 s.

Run from the repository root:
  .venv/bin/python -m bench.reporting [--requests 100000 1000000] [--events-per-request 5]
                                      [--backends sqlite postgresql] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import postgres_database
from bench.reporting_store import REPORTED_MONTH, PostgresSink, Sink, SqliteSink, fill
from dsr_mailbot.store.database import Store

RSS_TARGET_MB, REPORT_TARGET_S = 150, 2.0

# A fresh wrapper per measurement: its own peak is the interpreter's (~10 MB); the child's is what it reports.
WRAPPER = """
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
elapsed = time.perf_counter() - started
if done.returncode:
    sys.stderr.write(done.stderr.decode(errors="replace")[-3000:])
    raise SystemExit(done.returncode)
print(elapsed, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
"""


def measured(config: Path, *arguments: str) -> tuple[float, int] | str:
    """Wall time (s) and peak RSS (MB) of ``dsr-mailbot -c CONFIG ARGUMENTS`` as a fresh process, or how it
    failed."""
    command = [sys.executable, "-c", WRAPPER, sys.executable, "-m", "dsr_mailbot", "-c", str(config), *arguments]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        return f"FAILED, exit {done.returncode}: {last[:100]}"
    seconds, peak = done.stdout.split()
    return float(seconds), int(peak)


COMMANDS = (
    ("db current (reference: start-up)", ("db", "current"), None),
    ("report --month, table", ("report", "--month", REPORTED_MONTH), REPORT_TARGET_S),
    ("report --month, json", ("report", "--month", REPORTED_MONTH, "--format", "json"), REPORT_TARGET_S),
    ("audit export (jsonl, all)", ("audit", "export", "--format", "jsonl"), None),
    ("audit export --since the month", ("audit", "export", "--since", f"{REPORTED_MONTH}-01"), None),
)


def measure(name: str, config: Path, runs: int) -> None:
    print(f"  {name} (the median time of {runs} runs, the highest peak)")
    print(f"    {'command':<34}{'time s':>9}{'peak RSS MB':>13}   targets")
    for label, arguments, seconds_target in COMMANDS:
        results = [measured(config, *arguments) for _ in range(runs)]
        failed = [r for r in results if isinstance(r, str)]
        if failed:
            print(f"    {label:<34}{failed[0]}")
            continue
        seconds = statistics.median(r[0] for r in results if not isinstance(r, str))
        peak = max(r[1] for r in results if not isinstance(r, str))
        targets = [f"RSS < {RSS_TARGET_MB} MB {'ok' if peak < RSS_TARGET_MB else 'MISSED'}"]
        if seconds_target is not None:
            targets.insert(0, f"< {seconds_target:g} s {'ok' if seconds < seconds_target else 'MISSED'}")
        if label.startswith("db current"):
            targets = ["(reference)"]
        print(f"    {label:<34}{seconds:>9.2f}{peak:>13}   {', '.join(targets)}")


def config_for(directory: Path, name: str, url: str) -> Path:
    path = directory / f"{name}.toml"
    (directory / "mail").mkdir(exist_ok=True)
    path.write_text(f'[maildir]\npath = "mail"\n[file_delivery]\ndirectory = "outbox"\n[database]\nurl = "{url}"\n',
                    encoding="utf-8")
    return path


def run_size(count: int, per_request: int, backends: list[str], directory: Path, runs: int) -> None:
    stores: dict[str, str] = {}
    with postgres_database() if "postgresql" in backends else _nothing() as pg_url:
        if "sqlite" in backends:
            stores["SQLite"] = f"sqlite:///{directory / f'store-{count}.db'}"
        if pg_url:
            stores["PostgreSQL"] = pg_url
        sinks: list[Sink] = []
        for url in stores.values():
            store = Store(url)
            store.init_schema()
            store.dispose()
            sinks.append(SqliteSink(url.removeprefix("sqlite:///")) if url.startswith("sqlite")
                         else PostgresSink(url.replace("+psycopg", "")))
        started = time.perf_counter()
        made = fill(sinks, count, per_request)
        print(f"\n{made.requests:,} requests ({made.in_month:,} in {REPORTED_MONTH}), {made.events:,} audit events, "
              f"{made.outbox:,} outbox rows, {made.system_actions:,} system actions, {made.users:,} users "
              f"(generated into {' and '.join(stores)} in {time.perf_counter() - started:.0f} s)")
        for name, url in stores.items():
            measure(name, config_for(directory, name, url), runs)
        if "SQLite" in stores:
            Path(stores["SQLite"].removeprefix("sqlite:///")).unlink()


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--events-per-request", type=int, default=5)
    parser.add_argument("--backends", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--runs", type=int, default=3, help="runs of each command (its median time is shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsr-bench-reporting-") as tmp:
        for count in args.requests:
            run_size(count, args.events_per_request, args.backends, Path(tmp), args.runs)


if __name__ == "__main__":
    main()
