"""SQL systems: the operator's existing tables, unchanged, through SQLAlchemy Core (PostgreSQL, MySQL/MariaDB, SQLite).

**Finding the person.** A match table's ``match`` column holds e-mail
addresses as the shop wrote them (``Pavel.K@Example.com``).  SQL finds the
candidates case-insensitively, by the address and by its Unicode domain (SQL
knows no IDNA), and Python keeps only the rows whose value has exactly the
sender's normal form: a MariaDB ``_ci`` collation also folds accents and
trailing spaces, so without that check a look-alike of another person's
address would match.  The person's rows are then named by the exact stored
values, and the rows of a ``via`` table by the key values of the rows it
references, resolved in Python first (references chain).

**How an index serves it.** MySQL/MariaDB with a case-insensitive collation
(their default) compare ``col = :address`` through the column's plain index.
PostgreSQL and SQLite compare ``lower(col)``, which an expression index
serves (``CREATE INDEX … ON b_user (lower("EMAIL"))``); the bot never adds
one itself, and ``systems check`` warns when there is none.

**Actions** run in one transaction per system and set values or delete rows,
so a second run finds nothing more to do.  Erasure resolves every table's rows
before it changes any, then deletes the referencing tables first.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    MetaData,
    Table,
    delete,
    func,
    inspect,
    select,
    text,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.sql.elements import ColumnElement

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.config.datamap import TableMap
from dsr_mailbot.errors import MappingError, SystemRefused
from dsr_mailbot.store.database import is_mysql, unusable_url
from dsr_mailbot.systems.protocol import (
    MAX_VALUE_CHARS,
    BeforeCommit,
    Changes,
    Done,
    Found,
    HeldRecord,
    TableCheck,
    TableDone,
    shown,
)
from dsr_mailbot.systems.sqledge import engine_for, translated
from dsr_mailbot.systems.sqlexact import MAX_KEYS, bounded, exactly_in, unicode_form
from dsr_mailbot.systems.sqlreport import indexed as index_serves
from dsr_mailbot.systems.sqlreport import row_count, unique

CONSENTS = ("marketing_consent", "processing_consent")
STREAM_ROWS = 1_000


@dataclass
class _Reflected:
    table: Table
    mapping: TableMap
    # MySQL/MariaDB: does the match column compare case-insensitively (a _ci collation), so that its own index
    # serves the lookup?  Read from information_schema: the column's effective collation, default or not.
    folds_case: bool = False


class SqlConnector:
    """One ``kind = "sql"`` entry: its engine (connected lazily) and its tables, reflected on first use."""

    def __init__(self, name: str, url: str, tables: Sequence[TableMap], *, read_only: bool = False,
                 engine: Engine | None = None) -> None:
        self._name = name
        self.mappings = tuple(tables)
        self.read_only = read_only
        try:
            self.engine = engine or engine_for(url)
        except (sa_exc.ArgumentError, ValueError, ImportError) as exc:  # a bad port, a driver not installed
            raise MappingError(f'[[systems]] "{name}": {unusable_url(url, exc)}') from None
        except MappingError as exc:
            raise MappingError(f'[[systems]] "{name}": {exc}') from None
        self._reflected: dict[str, _Reflected] | None = None

    @property
    def name(self) -> str:
        return self._name

    def close(self) -> None:
        self.engine.dispose()

    # Reading the mapping against the database.

    @contextmanager
    def _connection(self, write: bool) -> Iterator[Connection]:
        try:
            with (self.engine.begin() if write else self.engine.connect()) as conn:
                yield conn
        except sa_exc.SQLAlchemyError as exc:
            raise translated(self._name, exc) from None

    def _tables(self, conn: Connection) -> dict[str, _Reflected]:
        if self._reflected is None:
            self._reflected = self._reflect(conn)
        return self._reflected

    def _reflect(self, conn: Connection) -> dict[str, _Reflected]:
        inspector = inspect(conn)
        found: dict[str, _Reflected] = {}
        for mapping in self.mappings:
            if not inspector.has_table(mapping.table):
                raise MappingError(f'[[systems]] "{self._name}" → table {mapping.table}: not found in the database')
            with warnings.catch_warnings():  # SQLite: an index on lower(EMAIL), which reflection cannot show
                warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
                table = Table(mapping.table, MetaData(), autoload_with=conn)
            for column in _mapped_columns(mapping):
                if column not in table.c:
                    raise MappingError(f'[[systems]] "{self._name}" → table {mapping.table}: no column {column}')
            folds_case = bool(mapping.match) and is_mysql(conn.dialect.name) and str(conn.execute(text(
                "SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = :t AND COLUMN_NAME = :c"), {"t": mapping.table, "c": mapping.match}
            ).scalar() or "").lower().endswith("_ci")
            found[mapping.table] = _Reflected(table, mapping, folds_case)
        for reflected in found.values():
            reference = reflected.mapping.reference
            if reference is not None and reference.target not in found[reference.table].table.c:
                raise MappingError(f'[[systems]] "{self._name}" → table {reference.table}: no column '
                                   f"{reference.target} (the via of {reflected.mapping.table})")
        return found

    def reflect(self, again: bool = False) -> None:
        """Read the tables and check the mapping against them (MappingError names what is missing).

        ``again``: read them anew (a run checks before its first action: the shop may have changed them).
        """
        if again:
            self._reflected = None
        with self._connection(write=False) as conn:
            self._tables(conn)

    # Finding the person's rows.

    def _candidates(self, conn: Connection, reflected: _Reflected, address: str) -> ColumnElement[bool]:
        assert reflected.mapping.match is not None
        column = reflected.table.c[reflected.mapping.match]
        forms = [address, *([u] if (u := unicode_form(address)) else [])]
        if reflected.folds_case:
            return column.in_(forms)  # the column's own index serves it
        return func.lower(column).in_([form.lower() for form in forms])

    def _matched_rows(self, conn: Connection, reflected: _Reflected, address: str) -> ColumnElement[bool] | None:
        """The condition that names exactly this person's rows of a match table, or None when it has none.

        The rows are named by their primary key when the table has one, else by their exact stored address:
        never by the candidate condition, which a ``_ci`` collation also lets look-alikes through.
        """
        assert reflected.mapping.match is not None
        table, column = reflected.table, reflected.table.c[reflected.mapping.match]
        keys = list(table.primary_key.columns)
        candidates = select(column, *keys).where(self._candidates(conn, reflected, address)).limit(MAX_KEYS + 1)
        found = bounded(self._name, conn.execute(candidates).all())
        mine = [row for row in found if isinstance(row[0], str) and normalise_address(row[0]) == address]
        if not mine:
            return None
        if len(keys) == 1:
            return exactly_in(conn, keys[0], [row[1] for row in mine])
        if keys:
            return tuple_(*keys).in_([tuple(row[1:]) for row in mine])
        return exactly_in(conn, column, list({row[0] for row in mine}))

    def _where(self, conn: Connection, tables: dict[str, _Reflected], reflected: _Reflected,
               address: str, seen: frozenset[str] = frozenset()) -> ColumnElement[bool] | None:
        """The condition that selects the person's rows of a table; None when they have none there."""
        mapping = reflected.mapping
        if mapping.match is not None:
            return self._matched_rows(conn, reflected, address)
        reference = mapping.reference
        assert reference is not None and reference.table not in seen
        target = tables[reference.table]
        condition = self._where(conn, tables, target, address, seen | {mapping.table})
        if condition is None:
            return None
        keys = [k for k in bounded(self._name, conn.execute(select(target.table.c[reference.target]).where(condition)
                                                             .distinct().limit(MAX_KEYS + 1)).scalars().all())
                if k is not None]
        return exactly_in(conn, reflected.table.c[reference.column], keys) if keys else None

    def _conditions(self, conn: Connection, address: str) -> list[tuple[_Reflected, ColumnElement[bool]]]:
        tables = self._tables(conn)
        found = []
        for reflected in tables.values():
            condition = self._where(conn, tables, reflected, address)
            if condition is not None:
                found.append((reflected, condition))
        return found

    # The actions.

    def lookup(self, email: str) -> Found:
        with self._connection(write=False) as conn:
            tables = self._tables(conn)
            return Found(any(self._matched_rows(conn, r, email) is not None
                             for r in tables.values() if r.mapping.match))

    def access(self, email: str) -> list[HeldRecord]:
        records: list[HeldRecord] = []
        with self._connection(write=False) as conn:
            for reflected, condition in self._conditions(conn, email):
                mapping, table = reflected.mapping, reflected.table
                labels = {label: column for column, label in mapping.access.items()}
                shown: dict[str, str] = {**{str(f): c for f, c in mapping.fields.items()}, **labels}
                columns = [table.c[column] for column in shown.values()]
                if not columns:
                    continue
                for row in bounded(self._name, conn.execute(select(*columns).where(condition)
                                                             .limit(MAX_KEYS + 1)).all()):
                    records.append(HeldRecord(mapping.table, {
                        label: _text(value) for label, value in zip(shown, row, strict=True) if value is not None}))
        return records

    def update(self, email: str, changes: Changes, key: str = "", before_commit: BeforeCommit | None = None) -> Done:
        def values(mapping: TableMap) -> dict[str, Any]:
            found = {mapping.fields[f]: v for f, v in changes.items() if f in mapping.fields}
            if "email" in changes and mapping.match is not None:
                found[mapping.match] = changes["email"]  # the new address is where the person is found now
            return found

        return self._set(email, values, before_commit)

    def optout(self, email: str, key: str = "", before_commit: BeforeCommit | None = None) -> Done:
        return self._set(email, lambda m: {m.fields["marketing_consent"]: False}
                         if "marketing_consent" in m.fields else {}, before_commit)

    def withdraw(self, email: str, key: str = "", before_commit: BeforeCommit | None = None) -> Done:
        return self._set(email, lambda m: {m.fields[c]: False for c in CONSENTS if c in m.fields}, before_commit)

    def _set(self, email: str, values_of: Any, before_commit: BeforeCommit | None) -> Done:
        self._writable()
        done: list[TableDone] = []
        with self._connection(write=True) as conn:
            for reflected, condition in self._conditions(conn, email):
                values = values_of(reflected.mapping)
                if not values:
                    continue
                result = conn.execute(reflected.table.update().where(condition).values(values))
                done.append(TableDone(reflected.mapping.table, updated=_count(result.rowcount)))
            if before_commit is not None:
                before_commit(Done.of(done))
        return Done.of(done)

    def erase(self, email: str, key: str = "", before_commit: BeforeCommit | None = None) -> Done:
        self._writable()
        done: list[TableDone] = []
        with self._connection(write=True) as conn:
            found = self._conditions(conn, email)  # every table's rows resolved before any is changed
            # Referencing tables first, the farthest first: a basket line, then its order, then the customer.
            depth = {r.mapping.table: _depth(self._tables(conn), r) for r, _condition in found}
            for reflected, condition in sorted(found, key=lambda item: -depth[item[0].mapping.table]):
                erase, table = reflected.mapping.erase, reflected.table
                if erase == "delete":
                    result = conn.execute(delete(table).where(condition))
                    done.append(TableDone(table.name, deleted=_count(result.rowcount)))
                elif isinstance(erase, dict):
                    result = conn.execute(table.update().where(condition).values(dict(erase)))
                    done.append(TableDone(table.name, updated=_count(result.rowcount), cleared=tuple(erase)))
            if before_commit is not None:
                before_commit(Done.of(done))  # the counts are recorded before they are committed here
        return Done.of(done)

    def recipients(self) -> Iterator[str]:
        """Every address of every table that maps ``email``, in the normal form, streamed from the database.

        Rows whose mapped ``processing_consent`` is false are skipped (a policy-change notice goes to those who
        have not withdrawn); unreadable addresses too.  Duplicates are left to the caller, who sees every system.
        """
        for mapping in self.mappings:
            if "email" not in mapping.fields:
                continue
            with self._connection(write=False) as conn:
                table = self._tables(conn)[mapping.table].table
                email = table.c[mapping.fields["email"]]
                consent = table.c[mapping.fields["processing_consent"]] \
                    if "processing_consent" in mapping.fields else None
                query = select(email, consent) if consent is not None else select(email)
                rows = conn.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(query)
                for row in rows:
                    if consent is not None and row[1] is not None and not row[1]:
                        continue
                    address = normalise_address(row[0].strip()) if isinstance(row[0], str) else None
                    if address is not None:
                        yield address

    def _writable(self) -> None:
        if self.read_only:
            raise SystemRefused(f'system "{self._name}" is read_only')

    def check(self) -> list[TableCheck]:
        checks: list[TableCheck] = []
        with self._connection(write=False) as conn:
            tables = self._tables(conn)
            inspector = inspect(conn)
            for name, reflected in tables.items():
                match = reflected.mapping.match
                indexed = index_serves(inspector, conn, reflected.table, match, reflected.folds_case) if match else None
                rows, estimated = row_count(conn, reflected.table)
                warnings = [] if indexed in (True, None) else [
                    f"{match} has no index that serves a case-insensitive lookup: every lookup reads the whole "
                    "table (see README, \"Data map\")"]
                if (reference := reflected.mapping.reference) is not None and \
                        not unique(inspector, tables[reference.table].table, reference.target):
                    warnings.append(f"{reference.table}.{reference.target} is neither a primary key nor unique: "
                                    f"a {reference.column} may name rows of several people")
                checks.append(TableCheck(name, True, tuple(c.name for c in reflected.table.c), indexed, rows,
                                         estimated, tuple(warnings)))
        return checks


def _depth(tables: dict[str, _Reflected], reflected: _Reflected) -> int:
    """How many references a table is away from a match table."""
    depth, current = 0, reflected
    while (reference := current.mapping.reference) is not None and depth <= len(tables):
        depth, current = depth + 1, tables[reference.table]
    return depth


def _mapped_columns(mapping: TableMap) -> list[str]:
    columns = [*mapping.fields.values(), *mapping.access]
    if isinstance(mapping.erase, dict):
        columns += list(mapping.erase)
    if mapping.match:
        columns.append(mapping.match)
    if (reference := mapping.reference) is not None:
        columns.append(reference.column)
    return list(dict.fromkeys(columns))


def _count(rowcount: int | None) -> int:
    return max(int(rowcount or 0), 0)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return shown(str(value), MAX_VALUE_CHARS)


