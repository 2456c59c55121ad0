"""Queueing a policy-change campaign for a large store, next to one ``INSERT … SELECT`` of the same rows.

For each size (``--users``, default 100,000 and 1,000,000) and each store
(SQLite, then PostgreSQL at 127.0.0.1:5432 as the tests use it, a fresh
database), fills ``users`` in SQL (one in fifty has withdrawn), then:

- **the bot**: ``notify --template policy-change --campaign C`` as a fresh
  process, with SMTP on a closed port so that nothing is sent: what it
  costs is the queueing (and its start-up, about half a second); its peak
  RSS is the process's own (VmHWM);
- **the reference**, in the same database: one ``INSERT … SELECT`` of the
  same rows into a table of the same columns and no index; and the same
  into a table with the queue's unique key (``recipient_key, campaign``),
  which exactly once needs: what maintaining that index costs by itself.

It checks that the bot queued as many notices as the reference inserted,
and prints both times, their ratio (target ≤ 2×) and the bot's peak RSS
(target < 150 MB at any size).

Run from the repository root:  .venv/bin/python -m bench.notify [--users 100000 1000000]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench import postgres_database, run_measured
from dsr_mailbot.store.database import Store

FILL = {
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < :count) "
              "INSERT INTO users (ref, email, processing_consent, marketing_consent, created_at, updated_at) "
              "SELECT lower(hex(randomblob(16))), 'user' || x || '@example.kz', x % 50 <> 0, 0, "
              "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000' FROM n",
    "postgresql": "INSERT INTO users (ref, email, processing_consent, marketing_consent, created_at, updated_at) "
                  "SELECT md5(x::text), 'user' || x || '@example.kz', x % 50 <> 0, false, now(), now() "
                  "FROM generate_series(1, :count) AS x",
}
REFERENCE = [
    "CREATE TABLE {table} (id INTEGER PRIMARY KEY{serial}, campaign VARCHAR(40) NOT NULL, "
    "template VARCHAR(40) NOT NULL, recipient_key VARCHAR(40) NOT NULL, state VARCHAR(10) NOT NULL, "
    "run VARCHAR(16) NOT NULL, created_at TIMESTAMP NOT NULL{unique})",
    "INSERT INTO {table} (campaign, template, recipient_key, state, run, created_at) "
    "SELECT 'c1', 'policy_change', 'u:' || ref, 'queued', 'r', CURRENT_TIMESTAMP FROM users "
    "WHERE processing_consent = {true}",
]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure(dialect: str, url: str, users: int) -> None:
    store = Store(url)
    store.init_schema()
    with store.engine.begin() as connection:
        connection.execute(text(FILL[dialect]), {"count": users})
    work = Path(tempfile.mkdtemp(prefix="dsr-bench-"))
    config = work / "config.toml"
    config.write_text(
        '[imap]\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\nusername = "u"\npassword = "p"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {closed_port()}\nsecurity = "none"\n'
        f'from_address = "support@smarthings.kz"\n[database]\nurl = "{url}"\n',
        encoding="utf-8",
    )
    bot = run_measured("dsr_mailbot", ["-c", str(config), "notify", "--template", "policy-change", "--campaign", "c1"])
    with store.engine.connect() as connection:
        queued = connection.execute(text("SELECT count(*) FROM campaign_notices")).scalar_one()
    times: list[float] = []
    for table, unique in (("ref_plain", ""), ("ref_keyed", ", UNIQUE (recipient_key, campaign)")):
        with store.engine.begin() as connection:
            serial = "" if dialect == "sqlite" else " GENERATED ALWAYS AS IDENTITY"
            connection.execute(text(REFERENCE[0].format(table=table, serial=serial, unique=unique)))
            started = time.perf_counter()
            inserted = connection.execute(text(REFERENCE[1].format(
                table=table, true="1" if dialect == "sqlite" else "true"))).rowcount
            times.append(time.perf_counter() - started)
    reference, keyed = times
    store.dispose()
    print(f"{dialect}, {users:,} users: bot {bot.seconds:.2f} s (exit {bot.returncode}: SMTP closed, nothing sent), "
          f"peak RSS {bot.peak_mb} MB (target < 150 MB); reference INSERT … SELECT {reference:.2f} s: "
          f"{bot.seconds / reference:.1f}x (target <= 2x); into a table with the queue's unique key "
          f"(what exactly once costs) {keyed:.2f} s: {bot.seconds / keyed:.1f}x; "
          f"queued {queued:,} = inserted {inserted:,}: {queued == inserted}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    for users in args.users:
        for dialect in args.stores:
            if dialect == "sqlite":
                measure(dialect, f"sqlite:///{tempfile.mkdtemp(prefix='dsr-bench-')}/bench.db", users)
                continue
            with postgres_database() as url:
                measure(dialect, url, users)


if __name__ == "__main__":
    main()
