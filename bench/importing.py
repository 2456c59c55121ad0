"""`users import` of a large CSV, on SQLite and PostgreSQL, beside a plain loop with the same validators.

Generates a realistic users CSV (Cyrillic names, +7 phones written several
ways, some rows with ``consent_source`` and ``consent_at``) at each size, in
a temporary directory, and measures on each engine, each in a fresh store
(``db init`` first; a PostgreSQL database ``dsr_bench_<random>`` made for
each run and dropped after it):

- **the bot**: ``python -m dsr_mailbot -c CONFIG users import FILE`` as a
  child process: its wall time and its peak RSS (``VmHWM``, read in the
  child at its end, as bench/memory.py does);
- **the reference**: a child process that reads the same file with the
  csv module, applies the same ``normalise_email``, ``normalise_name`` and
  ``normalise_phone`` to every row, and inserts the rows into the same
  ``users`` table with the DBAPI's ``executemany`` in batches (sqlite3,
  psycopg) and, on PostgreSQL, also with ``COPY``, in one transaction; its
  wall time and peak RSS.  It checks nothing else (no duplicates, no rows
  already present, no suppression list) and records no audit event.

It prints each figure beside its reference and the ratio (target: at most
1.5× the fastest reference, and a peak RSS under 150 MB whatever the size).
With ``--runs N`` each is run N times, in turn, and the fastest of each is
compared (the highest peak RSS is shown): the machine is shared.

Run from the repository root:
    .venv/bin/python -m bench.importing [--sizes 100000 1000000] [--engines sqlite postgresql] [--runs 1]
"""

from __future__ import annotations

import argparse
import csv
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import Measured, postgres_database, run_measured

BATCH = 5_000
HEADER = ("email", "phone", "surname", "first_name", "patronymic", "marketing_consent", "consent_source",
          "consent_at")
SURNAMES = ("Иванов", "Петров", "Смирнов", "Кузнецов", "Попов", "Соколов", "Лебедев", "Ахметов", "Сериков",
            "Нурланов", "Ким", "Цой", "Абдрахманов", "Жумабаев", "Морозов", "Волков", "Ли", "Тен")
FIRST_NAMES = ("Иван", "Анна", "Сергей", "Мария", "Алексей", "Елена", "Айгерим", "Данияр", "Асель", "Нурлан",
               "Дмитрий", "Ольга", "Ерлан", "Жанна", "Тимур", "Светлана", "Арман", "Дина")
PATRONYMICS = ("Сергеевич", "Ивановна", "Алексеевич", "Петровна", "Нурланович", "Ерланқызы", "Дмитриевна", "")
LATIN = str.maketrans({"а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ж": "zh", "з": "z", "и": "i",
                       "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s",
                       "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sch",
                       "ы": "y", "э": "e", "ю": "yu", "я": "ya", "ь": "", "ъ": "", "ұ": "u", "қ": "k"})
DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "inbox.kz", "bk.ru", "list.ru", "yandex.kz", "rambler.ru",
           "Mail.Ru", "почта.рф")
MOBILE_CODES = ("701", "702", "705", "707", "747", "771", "775", "777", "903", "905", "916", "926", "985")
SOURCES = ("checkout form v2", "loyalty card application", "mobile app sign-up", "  shop   counter, Almaty ")
TRUE_FALSE = ("true", "false", "да", "нет", "1", "0", "yes", "")


def phone(rng: random.Random) -> str:
    code, number = rng.choice(MOBILE_CODES), f"{rng.randrange(10_000_000):07d}"
    shape = rng.randrange(4)
    if shape == 0:
        return f"+7 {code} {number[:3]} {number[3:5]} {number[5:]}"
    if shape == 1:
        return f"8 ({code}) {number[:3]}-{number[3:5]}-{number[5:]}"
    if shape == 2:
        return f"+7{code}{number}"
    return f"8{code}{number}"


def rows(count: int, seed: int = 21) -> Iterator[list[str]]:
    rng = random.Random(seed)
    for n in range(count):
        surname, first = rng.choice(SURNAMES), rng.choice(FIRST_NAMES)
        local = f"{first.lower().translate(LATIN)}.{surname.lower().translate(LATIN)}{n}"
        if rng.random() < 0.1:
            local = local.capitalize()
        domain = DOMAINS[-1] if rng.random() < 0.01 else rng.choice(DOMAINS[:-1])
        given = rng.random()
        yield [
            f"{local}@{domain}",
            phone(rng) if rng.random() < 0.85 else "",
            surname if rng.random() < 0.9 else "",
            first if rng.random() < 0.95 else "",
            rng.choice(PATRONYMICS),
            rng.choice(TRUE_FALSE),
            rng.choice(SOURCES) if given < 0.3 else "",
            (f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}" if given < 0.2 else
             f"2025-03-01T{rng.randrange(24):02d}:15:00+05:00" if given < 0.3 else ""),
        ]


def write_csv(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        writer.writerows(rows(count))


def measured(module: str, args: list[str]) -> Measured:
    """Run ``python -m module args`` in a fresh process: its wall time, its own peak RSS and its stdout."""
    done = run_measured(module, args, output=True)
    if done.returncode != 0:
        raise SystemExit(f"python -m {module} {' '.join(args[:3])}… failed ({done.returncode}):\n{done.error}")
    return done


# The reference: the least a bulk loader with the same validators does.


def reference(path: Path, url: str, method: str) -> None:
    from dsr_mailbot.reading.extract import normalise_email, normalise_name, normalise_phone

    true = {"1", "true", "yes", "y", "да", "иә", "on"}
    now = datetime.now(UTC).replace(tzinfo=None)
    sqlite = url.startswith("sqlite")
    stamp: Any = f"{now:%Y-%m-%d %H:%M:%S.%f}" if sqlite else now

    def moment(text: str) -> Any:
        if not text:
            return None
        value = datetime.fromisoformat(text)
        value = value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
        return f"{value:%Y-%m-%d %H:%M:%S.%f}" if sqlite else value

    columns = ("ref, email, phone, surname, first_name, patronymic, processing_consent, marketing_consent, "
               "created_at, updated_at, consent_source, consent_at")
    connection, insert = _reference_inserter(url, method, columns)
    with path.open(encoding="utf-8-sig", newline="") as file:
        reader = csv.reader(file)
        where = {name: n for n, name in enumerate(next(reader))}
        e, p, s, f, m = where["email"], where["phone"], where["surname"], where["first_name"], where["patronymic"]
        c, src, at = where["marketing_consent"], where["consent_source"], where["consent_at"]
        batch: list[tuple[Any, ...]] = []
        for fields in reader:
            batch.append((
                secrets.token_hex(16), normalise_email(fields[e].strip()),
                normalise_phone(fields[p].strip()) if fields[p].strip() else None,
                normalise_name(fields[s]) if fields[s].strip() else None,
                normalise_name(fields[f]) if fields[f].strip() else None,
                normalise_name(fields[m]) if fields[m].strip() else None,
                True, fields[c].strip().lower() in true, stamp, stamp,
                " ".join(fields[src].split()) or None, moment(fields[at].strip()),
            ))
            if len(batch) == BATCH:
                insert(batch)
                batch = []
        if batch:
            insert(batch)
    connection.commit()
    connection.close()


def _reference_inserter(url: str, method: str, columns: str) -> tuple[Any, Any]:
    if url.startswith("sqlite"):
        import sqlite3

        lite = sqlite3.connect(url.removeprefix("sqlite:///"))
        lite.execute("PRAGMA synchronous=NORMAL")  # as the store's connections (the file is WAL already)
        sql = f"INSERT INTO users ({columns}) VALUES ({', '.join('?' * 12)})"
        return lite, lambda batch: lite.executemany(sql, batch)
    import psycopg

    connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))
    cursor = connection.cursor()
    if method == "copy":
        def copy(batch: list[tuple[Any, ...]]) -> None:
            with cursor.copy(f"COPY users ({columns}) FROM STDIN") as copying:
                for row in batch:
                    copying.write_row(row)
        return connection, copy
    sql = f"INSERT INTO users ({columns}) VALUES ({', '.join(['%s'] * 12)})"
    return connection, lambda batch: cursor.executemany(sql, batch)


# The runs.


@contextmanager
def fresh_store(engine: str, work: Path) -> Iterator[str]:
    """A database URL with the bot's tables and nothing in them; a PostgreSQL database is dropped after."""
    if engine == "sqlite":
        yield f"sqlite:///{work / f'store-{secrets.token_hex(4)}.db'}"
        return
    with postgres_database() as url:
        yield url


def config_for(url: str, work: Path) -> Path:
    path = work / f"config-{secrets.token_hex(4)}.toml"
    path.write_text(
        '[imap]\nhost = "127.0.0.1"\nport = 1\nsecurity = "none"\nusername = "bench"\npassword = "bench"\n'
        f'[file_delivery]\ndirectory = "{work / "outbox"}"\n[database]\nurl = "{url}"\n',
        encoding="utf-8",
    )
    return path


def users_in(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as connection:
        count = int(connection.execute(text("SELECT count(*) FROM users")).scalar_one())
    engine.dispose()
    return count


def one_engine(engine: str, path: Path, size: int, work: Path, runs: int) -> None:
    """Each reference and the bot, ``runs`` times in turn on fresh stores; the fastest of each is compared."""
    results: dict[str, list[Measured]] = {}
    methods = ("executemany", "copy") if engine == "postgresql" else ("executemany",)
    outputs: list[str] = []
    for _ in range(runs):
        for method in methods:
            with fresh_store(engine, work) as url:
                measured("dsr_mailbot", ["-c", str(config_for(url, work)), "db", "init"])
                results.setdefault(f"reference ({method})", []).append(
                    measured("bench.importing", ["reference", str(path), url, method]))
                assert users_in(url) == size, "the reference did not insert every row"
        with fresh_store(engine, work) as url:
            config = config_for(url, work)
            measured("dsr_mailbot", ["-c", str(config), "db", "init"])
            bot = measured("dsr_mailbot", ["-c", str(config), "users", "import", str(path)])
            results.setdefault("bot (users import)", []).append(bot)
            outputs.append(f"{bot.output!r}; {users_in(url):,} users stored")
    best = {label: min(found, key=lambda m: m.seconds) for label, found in results.items()}
    fastest = min(m.seconds for label, m in best.items() if label.startswith("reference"))
    bot = best["bot (users import)"]
    print(f"{engine}, {size:,} rows" + (f" (the fastest of {runs} runs each, in turn):" if runs > 1 else ":"))
    for label, m in best.items():
        every = f"  (runs: {', '.join(f'{r.seconds:.1f}' for r in results[label])} s)" if runs > 1 else ""
        peak = max(r.peak_mb for r in results[label])
        print(f"  {label:<26} {m.seconds:7.1f} s  {size / m.seconds:8,.0f} rows/s  peak RSS {peak:4d} MB{every}")
    print(f"  bot: {'; '.join(sorted(set(outputs)))}")
    print(f"  ratio to the fastest reference: {bot.seconds / fastest:.2f}× (target <= 1.5×); "
          f"peak RSS {max(r.peak_mb for r in results['bot (users import)'])} MB (target < 150 MB)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "reference":  # the child process of a reference run
        reference(Path(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--engines", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"])
    parser.add_argument("--runs", type=int, default=1, help="times each is run, in turn (the fastest is compared)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dsr-bench-") as tmp:
        work = Path(tmp)
        for size in args.sizes:
            path = work / f"users-{size}.csv"
            started = time.perf_counter()
            write_csv(path, size)
            print(f"{size:,} rows, {path.stat().st_size / 1e6:.0f} MB "
                  f"(generated in {time.perf_counter() - started:.1f} s)")
            for engine in args.engines:
                one_engine(engine, path, size, work, args.runs)
            path.unlink()


if __name__ == "__main__":
    main()
