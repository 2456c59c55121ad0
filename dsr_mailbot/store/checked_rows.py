"""The good rows of a users file being imported, kept outside memory between the check and the insert.

``users import`` checks every row before it writes any (all or nothing), and
a file can hold millions of rows: holding them, or even a set of their
addresses, would make memory grow with the file.  They go instead into a
private temporary SQLite database (the standard library's ``sqlite3``,
opened on the empty file name): SQLite keeps a small page cache and spills
the rest to a temporary file that has no name (it is unlinked as soon as it
is opened, and readable only by its owner) and is gone when the import ends,
whatever way it ends.  Its unique index on the address is what finds an
address given on an earlier line.  The rows are read back in file order, so
that pass 2 neither reads the file again nor checks a row twice (the
validators are most of an import's time).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from dsr_mailbot.store.bulk import padded


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
    """Rows that passed every check, by line; closed (and its file gone) at the end of its ``with`` block."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("", isolation_level=None)
        # Scratch data: a crash loses nothing that the file does not hold, so no journal and no syncing.
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE checked (line INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, phone TEXT, "
                         "surname TEXT, first_name TEXT, patronymic TEXT, marketing_consent INTEGER NOT NULL, "
                         "consent_source TEXT, consent_at TEXT)")
        # Each IN query stays within the build's bound on parameters (999 before SQLite 3.32).
        self._per_query = self._db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)

    def __enter__(self) -> CheckedRows:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def first_lines(self, emails: Sequence[str]) -> dict[str, int]:
        """The line of each of these addresses that is already kept."""
        found: dict[str, int] = {}
        for start in range(0, len(emails), self._per_query):
            chunk = padded(emails[start:start + self._per_query], self._per_query)  # a few statements cached
            placeholders = ",".join("?" * len(chunk))  # only placeholders: the addresses are parameters
            found.update(self._db.execute(f"SELECT email, line FROM checked WHERE email IN ({placeholders})",  # noqa: S608
                                          chunk))
        return found

    def keep(self, rows: Sequence[UserRow]) -> None:
        """Keep good rows, each with an address not kept yet (:meth:`first_lines` tells)."""
        self._db.executemany("INSERT INTO checked VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            (r.line, r.email, r.phone, r.surname, r.first_name, r.patronymic, r.marketing_consent,
             r.consent_source, r.consent_at.isoformat() if r.consent_at else None)
            for r in rows
        ])

    def rows(self, batch: int = 5_000) -> Iterator[UserRow]:
        """Every kept row, in file order."""
        cursor = self._db.execute("SELECT * FROM checked ORDER BY line")
        while page := cursor.fetchmany(batch):
            for line, email, phone, surname, first_name, patronymic, consent, source, given_at in page:
                yield UserRow(line, email, phone, surname, first_name, patronymic, bool(consent), source,
                              datetime.fromisoformat(given_at) if given_at else None)
