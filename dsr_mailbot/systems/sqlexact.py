"""Comparing exactly, whatever the column's own equality: the person's rows and no one else's.

MySQL's ``_ci`` collations fold case, accents and trailing spaces; PostgreSQL's ``citext`` and
nondeterministic ICU collations fold too, and SQLite's ``NOCASE``.  More rows than a person can have is
refused, never cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    LargeBinary,
    String,
    Text,
    cast,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement

from dsr_mailbot.errors import SystemRefused
from dsr_mailbot.store.database import is_mysql

MAX_KEYS = 10_000  # a person's rows are few; more means a mapping that matches everyone: refused, not cut


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


class _Utf8Bytes(ColumnElement[bytes]):
    """MySQL: a text column's value as its UTF-8 bytes, whatever the column's character set (cp1251, latin1)."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column
        self.type = LargeBinary()


@compiles(_Utf8Bytes)
def _utf8_bytes(element: _Utf8Bytes, compiler: Any, **kw: Any) -> str:
    return f"CAST(CONVERT({compiler.process(element.column, **kw)} USING utf8mb4) AS BINARY)"


def exactly_in(conn: Connection, column: Column[Any], values: list[Any]) -> ColumnElement[bool]:
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


def bounded(name: str, rows: Sequence[Any]) -> Sequence[Any]:
    """Refuse, never truncate: past :data:`MAX_KEYS` rows an erasure could report done and leave the rest."""
    if len(rows) > MAX_KEYS:
        raise SystemRefused(f'system "{name}": more than {MAX_KEYS} rows match; a person decides')
    return rows
