"""The edge to an operator's database: its engine (drivers, timeouts below the actions' lease), its errors translated.

A driver's message may quote the URL or a value: only the class and the system's name go further.  A table
or column the mapping names that is not there (any more) is a wrong mapping (exit 78) on every engine.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Engine,
    create_engine,
    make_url,
)
from sqlalchemy import exc as sa_exc

from dsr_mailbot.errors import MappingError, SystemRefused, SystemUnavailable
from dsr_mailbot.store.database import normalise_url

# Statements and lock waits end well inside the runner's five-minute lease: an action is never done twice at once.
STATEMENT_TIMEOUT_SECONDS, LOCK_TIMEOUT_SECONDS = 120, 60


def engine_for(url: str) -> Engine:
    normal = normalise_url(url)
    if normal.startswith(("mysql", "mariadb")):
        return create_engine(normal, pool_pre_ping=True, pool_recycle=3600, connect_args={
            "connect_timeout": 10, "charset": "utf8mb4",
            "init_command": f"SET SESSION innodb_lock_wait_timeout = {LOCK_TIMEOUT_SECONDS}"})
    if normal.startswith("postgresql"):
        return create_engine(normal, pool_pre_ping=True, connect_args={
            "connect_timeout": 10, "options": f"-c statement_timeout={STATEMENT_TIMEOUT_SECONDS * 1000} "
                                              f"-c lock_timeout={LOCK_TIMEOUT_SECONDS * 1000}"})
    if normal.startswith("sqlite"):
        database = make_url(normal).database
        # Connecting would create an empty file where the shop's database was expected.
        if database and database != ":memory:" and not Path(database).is_file():
            raise MappingError("url: no SQLite database at that path")
        return create_engine(normal, connect_args={"timeout": 10})
    scheme = normal.split("://", 1)[0] if "://" in normal else None
    raise MappingError(f"url: unsupported database {scheme!r}" if scheme and scheme.isalnum()
                       else "url: not a database URL (like postgresql://…, mysql://… or sqlite:///…)")


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


def translated(name: str, exc: sa_exc.SQLAlchemyError) -> Exception:
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
