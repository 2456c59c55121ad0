"""Many rows at once, in the caller's transaction, through the driver: the bulk paths of ``users import``.

Neither the ORM nor Core's compiled statements: per row, their machinery
costs more than the database's own work (SQLAlchemy binds every parameter of
every row through its type, a dict each).  Here each value that needs it is
still bound through its column's type as SQLAlchemy would bind it
(``UTCDateTime`` stores naive UTC, SQLite's datetimes are text), and rows go
to the driver as tuples: ``COPY`` on PostgreSQL, ``executemany`` elsewhere
(PyMySQL makes it multi-row INSERTs).  A driver error under ``COPY`` is
raised as SQLAlchemy raises the others (an address taken meanwhile is an
``IntegrityError``), so that the store's transaction translates it as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy import exc as sa_exc
from sqlmodel import Session

T = TypeVar("T")


def insert_many(session: Session, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows``, each a value for each of ``columns`` in that order, into ``table``."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    bound = _bound(dialect, table, columns, rows)
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(name) for name in columns)
    if dialect.name == "postgresql":
        _copy(connection, f"COPY {quote(table.name)} ({names}) FROM STDIN", bound)
    else:
        marks = ", ".join([_placeholder(dialect)] * len(columns))
        insert = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608 (names and marks only)
        connection.exec_driver_sql(insert, bound)


def values_present(session: Session, table: Table, column: str, values: Sequence[str]) -> set[str]:
    """Those of ``values`` (text; a few thousand at most) found in ``column`` of ``table``: one query."""
    if not values:
        return set()
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    asked: tuple[Any, ...]
    if dialect.name == "postgresql":
        # One array parameter: psycopg parses a query's placeholders anew for each long query text (28 ms for
        # an IN list of 8,192), where a short one is parsed once and cached.
        condition, asked = "= ANY(%s)", (list(values),)
    else:
        asked = tuple(padded(values))
        condition = f"IN ({', '.join([_placeholder(dialect)] * len(asked))})"
    # Quoted names and placeholders only: the values are parameters.
    query = f"SELECT {quote(column)} FROM {quote(table.name)} WHERE {quote(column)} {condition}"  # noqa: S608
    return set(connection.exec_driver_sql(query, asked).scalars())


def padded(values: Sequence[T], limit: int | None = None) -> list[T]:
    """``values`` made up to the next power of two (at least 16, at most ``limit``) by repeating the last one.

    An IN list then has one of a few lengths.  A driver caches its prepared statements by their text (sqlite3
    keeps 128 of them), and one with thousands of parameters weighs hundreds of kilobytes: with an IN list of a
    new length in each batch, the cache grew by 55 MB over a million-row import.
    """
    size = max(16, 1 << (len(values) - 1).bit_length())
    size = min(size, limit) if limit is not None else size
    return [*values, *[values[-1]] * (size - len(values))] if values else []


def _placeholder(dialect: Dialect) -> str:
    """A positional parameter in the driver's own style (sqlite3: qmark; psycopg and PyMySQL: format)."""
    return "?" if dialect.paramstyle in ("qmark", "numeric") else "%s"


def _bound(dialect: Dialect, table: Table, columns: Sequence[str],
           rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows with each value bound through its column's type (None stays None)."""
    processors = [(n, process) for n, name in enumerate(columns)
                  if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None]
    if not processors:
        return list(rows)
    # A value the row before had too (a batch's one timestamp) is bound once.
    last: dict[int, tuple[Any, Any]] = {}
    bound: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row)
        for n, process in processors:
            value = values[n]
            if value is None:
                continue
            before = last.get(n)
            if before is not None and before[0] is value:
                values[n] = before[1]
            else:
                values[n] = process(value)
                last[n] = (value, values[n])
        bound.append(tuple(values))
    return bound


def _copy(connection: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    dialect = connection.dialect
    driver = connection.connection.driver_connection
    assert driver is not None
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except dialect.loaded_dbapi.Error as exc:
        raise sa_exc.DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error,
                                         dialect=dialect) from exc
