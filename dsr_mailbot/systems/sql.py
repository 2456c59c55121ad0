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
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    cast,
    create_engine,
    delete,
    func,
    inspect,
    select,
    text,
    tuple_,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.config.datamap import TableMap
from dsr_mailbot.errors import MappingError, SystemRefused, SystemUnavailable
from dsr_mailbot.store.database import is_mysql, normalise_url
from dsr_mailbot.systems.protocol import BeforeCommit, Changes, Done, HeldRecord, TableCheck, TableDone

CONSENTS = ("marketing_consent", "processing_consent")
MAX_KEYS = 10_000  # a person's rows are few; more means a mapping that matches everyone: refused, not cut
STREAM_ROWS = 1_000
STATEMENT_TIMEOUT_SECONDS, LOCK_TIMEOUT_SECONDS = 120, 60  # notify: rows fetched at a time from a server-side cursor


def unicode_form(address: str) -> str | None:
    """The address with its domain's U-labels (``пример.kz``), as a shop may have stored it."""
    local, _, domain = address.rpartition("@")
    if "xn--" not in domain:
        return None
    try:
        import idna

        return f"{local}@{idna.decode(domain)}"
    except (idna.IDNAError, UnicodeError):
        return None


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
            self.engine = engine or _engine(url)
        except (sa_exc.ArgumentError, ValueError, ImportError) as exc:  # a bad port, an unknown driver
            raise MappingError(f'[[systems]] "{name}": url: not a usable database URL ({type(exc).__name__})') from None
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
            raise _translated(self._name, exc) from None

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
        found = _bounded(self._name, conn.execute(candidates).all())
        mine = [row for row in found if isinstance(row[0], str) and normalise_address(row[0]) == address]
        if not mine:
            return None
        if len(keys) == 1:
            return _exactly_in(conn, keys[0], [row[1] for row in mine])
        if keys:
            return tuple_(*keys).in_([tuple(row[1:]) for row in mine])
        return _exactly_in(conn, column, list({row[0] for row in mine}))

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
        keys = [k for k in _bounded(self._name, conn.execute(select(target.table.c[reference.target]).where(condition)
                                                             .distinct().limit(MAX_KEYS + 1)).scalars().all())
                if k is not None]
        return _exactly_in(conn, reflected.table.c[reference.column], keys) if keys else None

    def _conditions(self, conn: Connection, address: str) -> list[tuple[_Reflected, ColumnElement[bool]]]:
        tables = self._tables(conn)
        found = []
        for reflected in tables.values():
            condition = self._where(conn, tables, reflected, address)
            if condition is not None:
                found.append((reflected, condition))
        return found

    # The actions.

    def lookup(self, email: str) -> bool:
        with self._connection(write=False) as conn:
            tables = self._tables(conn)
            return any(self._matched_rows(conn, r, email) is not None for r in tables.values() if r.mapping.match)

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
                for row in _bounded(self._name, conn.execute(select(*columns).where(condition)
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
                indexed = _indexed(inspector, conn, reflected, match) if match else None
                rows, estimated = _row_count(conn, reflected.table)
                warnings = [] if indexed in (True, None) else [
                    f"{match} has no index that serves a case-insensitive lookup: every lookup reads the whole "
                    "table (see README, \"Data map\")"]
                if (reference := reflected.mapping.reference) is not None and \
                        not _unique(inspector, tables[reference.table].table, reference.target):
                    warnings.append(f"{reference.table}.{reference.target} is neither a primary key nor unique: "
                                    f"a {reference.column} may name rows of several people")
                checks.append(TableCheck(name, True, tuple(c.name for c in reflected.table.c), indexed, rows,
                                         estimated, tuple(warnings)))
        return checks


def _engine(url: str) -> Engine:
    normal = normalise_url(url)
    # Statements and lock waits end well inside the runner's five-minute lease: an action is never done twice at once.
    if normal.startswith(("mysql", "mariadb")):
        return create_engine(normal, pool_pre_ping=True, pool_recycle=3600, connect_args={
            "connect_timeout": 10, "charset": "utf8mb4",
            "init_command": f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_SECONDS}"})
    if normal.startswith("postgresql"):
        return create_engine(normal, pool_pre_ping=True, connect_args={
            "connect_timeout": 10, "options": f"-c statement_timeout={STATEMENT_TIMEOUT_SECONDS * 1000} "
                                              f"-c lock_timeout={LOCK_TIMEOUT_SECONDS * 1000}"})
    if normal.startswith("sqlite"):
        return create_engine(normal, connect_args={"timeout": 10})
    scheme = normal.split("://", 1)[0] if "://" in normal else None
    raise MappingError(f"a system's url: unsupported database {scheme!r}" if scheme and scheme.isalnum()
                       else "a system's url: not a database URL (like postgresql://…, mysql://… or sqlite:///…)")


class _Utf8Bytes(ColumnElement[bytes]):
    """MySQL: a text column's value as its UTF-8 bytes, whatever the column's character set (cp1251, latin1)."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = LargeBinary()


@compiles(_Utf8Bytes)
def _utf8_bytes(element: _Utf8Bytes, compiler: Any, **kw: Any) -> str:
    return f"CAST(CONVERT({compiler.process(element.column, **kw)} USING utf8mb4) AS BINARY)"


def _exactly_in(conn: Connection, column: Column[Any], values: list[Any]) -> ColumnElement[bool]:
    """``column IN values``, compared exactly, whatever the column's own equality.

    MySQL's ``_ci`` collations fold case, accents and trailing spaces; PostgreSQL's ``citext`` and
    nondeterministic ICU collations fold too, and SQLite's ``NOCASE``.  Text is compared as bytes (MySQL), in
    the "C" collation (PostgreSQL) or BINARY (SQLite).  A text column is compared with text: MySQL would read
    ``'1abc'`` as the number 1 (a ``via`` from an integer key into a VARCHAR column).
    """
    textual = isinstance(column.type, String)
    if textual:
        values = [v if isinstance(v, str) else str(v) for v in values]
    if not textual or not values:
        return column.in_(values)
    dialect = conn.dialect.name
    if is_mysql(dialect):
        return _Utf8Bytes(column).in_([v.encode("utf-8") for v in values])
    if dialect == "postgresql":
        return cast(column, Text).collate("C").in_(values)
    return column.collate("BINARY").in_(values)


def _bounded(name: str, rows: Sequence[Any]) -> Sequence[Any]:
    """Refuse, never truncate: past :data:`MAX_KEYS` rows an erasure could report done and leave the rest."""
    if len(rows) > MAX_KEYS:
        raise SystemRefused(f'system "{name}": more than {MAX_KEYS} rows match; a person decides')
    return rows


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


def _indexed(inspector: Any, conn: Connection, reflected: _Reflected, column: str) -> bool:
    """Does an index serve the lookup: on the column itself (MySQL, _ci), else on lower(column)?"""
    table = reflected.table
    if reflected.folds_case:
        indexes = list(inspector.get_indexes(table.name))
        plain = [i for i in indexes if i.get("column_names") and i["column_names"][0] == column]
        pk = inspector.get_pk_constraint(table.name).get("constrained_columns") or []
        unique = inspector.get_unique_constraints(table.name)
        return bool(plain) or pk[:1] == [column] or any(u["column_names"][:1] == [column] for u in unique)
    if conn.dialect.name == "sqlite":
        rows = conn.execute(text("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"),
                            {"t": table.name}).scalars().all()
        return any(sql and "lower(" in sql.lower() and column.lower() in sql.lower() for sql in rows)
    for index in inspector.get_indexes(table.name):
        expressions = index.get("expressions") or []
        if expressions and "lower(" in str(expressions[0]).lower() and column.lower() in str(expressions[0]).lower():
            return True
    return False


def _unique(inspector: Any, table: Table, column: str) -> bool:
    if [c.name for c in table.primary_key.columns] == [column]:
        return True
    return any(u.get("column_names") == [column] for u in inspector.get_unique_constraints(table.name)) or any(
        i.get("unique") and i.get("column_names") == [column] for i in inspector.get_indexes(table.name))


def _row_count(conn: Connection, table: Table) -> tuple[int | None, bool]:
    """Rows in the table: the planner's estimate where counting could be slow, else an exact count."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        estimate = conn.execute(text("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(:t)"),
                                {"t": table.name}).scalar()
        if estimate is not None and estimate >= 0:
            return int(estimate), True
    elif is_mysql(dialect):
        estimate = conn.execute(text("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                                     "DATABASE() AND TABLE_NAME = :t"), {"t": table.name}).scalar()
        if estimate is not None:
            return int(estimate), True
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one()), False


def _count(rowcount: int | None) -> int:
    return max(int(rowcount or 0), 0)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# What each driver says when a table or column the mapping names is not there (any more).
_MISSING_SQLSTATES = frozenset({"42703", "42P01"})  # PostgreSQL: undefined column, undefined table
_MISSING_MYSQL_ERRORS = frozenset({1054, 1146})  # unknown column, no such table
_MISSING_SQLITE_WORDS = ("no such column", "no such table", "has no column named")


def _names_a_missing_column(exc: sa_exc.SQLAlchemyError) -> bool:
    original = getattr(exc, "orig", None)
    if getattr(original, "sqlstate", None) in _MISSING_SQLSTATES:
        return True
    arguments = getattr(original, "args", ())
    if arguments and isinstance(arguments[0], int) and arguments[0] in _MISSING_MYSQL_ERRORS:
        return True
    return type(original).__module__ == "sqlite3" and any(w in str(original) for w in _MISSING_SQLITE_WORDS)


def _translated(name: str, exc: sa_exc.SQLAlchemyError) -> Exception:
    """The driver's text may quote the URL or the values: keep the class and the system's name."""
    cause = type(getattr(exc, "orig", None) or exc).__name__
    if _names_a_missing_column(exc):
        return MappingError(f'[[systems]] "{name}": a table or column of its mapping is not in the database '
                            f"any more ({cause}); see 'dsr-mailbot systems check'")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError) or (
            isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated):
        return SystemUnavailable(f'system "{name}": unreachable ({cause})')
    if isinstance(exc, sa_exc.NoSuchTableError | sa_exc.NoSuchColumnError):
        return MappingError(f'system "{name}": {cause}')
    return SystemRefused(f'system "{name}": refused ({cause})')
