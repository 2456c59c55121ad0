"""The rows of a users file being imported, kept outside memory between the check and the insert.

``users import`` checks every row before it writes any (all or nothing), and
a file can hold millions of rows: holding them, or even a set of their
addresses, would make memory grow with the file.  They go instead into a
private temporary SQLite database (the standard library's ``sqlite3``,
opened on the empty file name): SQLite keeps a small page cache and spills
the rest to a temporary file that has no name (it is unlinked as soon as it
is opened, and readable only by its owner) and is gone when the import ends,
whatever way it ends.  The rows are read back in file order, so that pass 2
neither reads the file again nor checks a row twice (the validators are most
of an import's time).

An address given twice is found once every row is in: the rows are appended
without an index, which is then built by sorting, and one query finds the
lines whose address a good row on an earlier line has.  Keeping a unique
index up to date row by row costs twice as much at a million rows (random
inserts into a B-tree larger than the cache).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType


@dataclass(frozen=True)
class UserRow:
    """A row of a users file that passed every check: its values in their normal forms."""

    line: int
    email: str
    phone: str | None
    surname: str | None
    first_name: str | None
    patronymic: str | None
    marketing_consent: bool
    consent_source: str | None = None
    consent_at: datetime | None = None


class CheckedRows:
    """Every row with a valid address, by line; closed (and its file gone) at the end of its ``with`` block."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        # Scratch data: a crash loses nothing that the file does not hold, so no journal and no syncing.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        # A good row whole; a row refused for another reason by its line and address only (good = 0).
        self._db.execute("CREATE TABLE checked (line INTEGER PRIMARY KEY, email TEXT NOT NULL, good INTEGER NOT NULL, "
                         "phone TEXT, surname TEXT, first_name TEXT, patronymic TEXT, marketing_consent INTEGER, "
                         "consent_source TEXT, consent_at TEXT)")
        self._indexed = False

    def __enter__(self) -> CheckedRows:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def keep(self, good: Sequence[UserRow], refused: Sequence[tuple[int, str]] = ()) -> None:
        """Keep good rows, and the line and address of rows with a valid address refused for another reason."""
        self._db.executemany("INSERT INTO checked VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?)", [
            (r.line, r.email, r.phone, r.surname, r.first_name, r.patronymic, r.marketing_consent,
             r.consent_source, r.consent_at.isoformat() if r.consent_at else None)
            for r in good
        ])
        self._db.executemany("INSERT INTO checked (line, email, good) VALUES (?, ?, 0)", refused)

    def duplicates(self) -> Iterator[tuple[int, int]]:
        """Each line whose address a good row on an earlier line has, with the first such line, in line order.

        Compared with the good rows only, as a person reads the report: a line refused for another reason is no
        "same address" for a later one.  Called once every row is kept.
        """
        if not self._indexed:
            self._db.execute("CREATE INDEX checked_email ON checked (email, good, line)")
            self._indexed = True
        yield from self._db.execute(
            "SELECT line, first FROM (SELECT later.line AS line, (SELECT earlier.line FROM checked AS earlier "
            "WHERE earlier.email = later.email AND earlier.good = 1 ORDER BY earlier.line LIMIT 1) AS first "
            "FROM checked AS later) WHERE first < line ORDER BY line")

    def rows(self, batch: int = 5_000) -> Iterator[UserRow]:
        """Every good row, in file order (distinct addresses when :meth:`duplicates` finds none)."""
        cursor = self._db.execute("SELECT line, email, phone, surname, first_name, patronymic, marketing_consent, "
                                  "consent_source, consent_at FROM checked WHERE good = 1 ORDER BY line")
        while page := cursor.fetchmany(batch):
            for line, email, phone, surname, first_name, patronymic, consent, source, given_at in page:
                yield UserRow(line, email, phone, surname, first_name, patronymic, bool(consent), source,
                              datetime.fromisoformat(given_at) if given_at else None)
