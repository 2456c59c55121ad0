"""An update carried out through a MariaDB system, against a direct UPDATE of the same row, in one run.

Starts a private MariaDB (as the tests do: Debian's mariadb-server, as root), fills a shop table of customers
(``--rows``, default 100,000) with a plain index on the e-mail column (utf8mb4_unicode_ci, the default), then
times, alternating, for ``--updates`` different customers:

- **direct**: what a hand-written script would run: ``UPDATE b_user SET PERSONAL_PHONE = :p WHERE EMAIL = :e``;
- **through the system**: ``SqlConnector.update`` with the data map's mapping: the candidate SELECT, the exact
  normal-form check in Python, and the UPDATE of the rows by primary key, in one transaction.

Both on the same engine and pool, with the mapping reflected once beforehand (a run reflects once too).

Run from the repository root, as root:  .venv/bin/python -m bench.systems [--rows 100000] [--updates 2000]
"""

from __future__ import annotations

import argparse
import statistics
import time

from sqlalchemy import text

from dsr_mailbot.config.datamap import TableMap
from dsr_mailbot.store.database import make_engine
from dsr_mailbot.systems.sql import SqlConnector
from tests.servers import MariaDB, mariadb_binaries

MAPPING = (TableMap(table="b_user", match="EMAIL", erase="delete",
                    fields={"email": "EMAIL", "phone": "PERSONAL_PHONE"}),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=2_000)
    args = parser.parse_args()
    binaries = mariadb_binaries()
    if binaries is None:
        raise SystemExit("mariadb-server is not installed")
    server = MariaDB(*binaries)
    server.start()
    try:
        url = server.create_database("shop")
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE b_user (ID INT PRIMARY KEY AUTO_INCREMENT, EMAIL VARCHAR(255), "
                              "PERSONAL_PHONE VARCHAR(30), INDEX ix_email (EMAIL))"))
            for start in range(0, args.rows, 10_000):
                conn.execute(text("INSERT INTO b_user (EMAIL, PERSONAL_PHONE) VALUES (:e, :p)"),
                             [{"e": f"Customer.{n}@Example.com", "p": "+77010000000"}
                              for n in range(start, min(start + 10_000, args.rows))])
        connector = SqlConnector("Shop", url, MAPPING, engine=engine)
        connector.check()  # reflect once, as a run does before its first action
        direct: list[float] = []
        through: list[float] = []
        for n in range(args.updates):
            person = (n * 7919) % args.rows
            phone = f"+7701{n:07d}"
            if n % 2:
                started = time.perf_counter()
                with engine.begin() as conn:
                    conn.execute(text("UPDATE b_user SET PERSONAL_PHONE = :p WHERE EMAIL = :e"),
                                 {"p": phone, "e": f"Customer.{person}@Example.com"})
                direct.append(time.perf_counter() - started)
            else:
                started = time.perf_counter()
                done = connector.update(f"customer.{person}@example.com", {"phone": phone}, key=str(n))
                through.append(time.perf_counter() - started)
                assert done.updated == 1
        for name, times in (("direct UPDATE", direct), ("through the system", through)):
            ordered = sorted(times)
            print(f"{name:<20} median {statistics.median(times) * 1000:.2f} ms  "
                  f"p99 {ordered[int(len(ordered) * 0.99) - 1] * 1000:.2f} ms  ({len(times)} updates)")
        ratio = statistics.median(through) / statistics.median(direct)
        print(f"through the system / direct: {ratio:.2f}x, on {args.rows:,} rows")
        connector.close()
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
