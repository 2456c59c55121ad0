"""The database edge: engine set-up, transactions, and the queries the pipeline needs.

SQLite (the default) is set up the way its documentation recommends for a
small service: WAL, a busy timeout, ``secure_delete`` (erased rows are
overwritten, not left in free pages), foreign keys on, and every transaction
opened with ``BEGIN IMMEDIATE`` so that a read-then-write transaction takes
the write lock up front instead of failing half-way with "database is
locked".  PostgreSQL is reached through psycopg 3; a plain
``postgresql://`` URL is read as ``postgresql+psycopg://``.  MySQL and
MariaDB are reached through PyMySQL (``mysql://`` and ``mariadb://`` are read
as ``…+pymysql://``) in utf8mb4, at READ COMMITTED as on PostgreSQL; the
bot's tables are utf8mb4 with a binary collation whatever the database's
default, so addresses compare exactly as on the other two.

Database failures are translated here into
:class:`~dsr_mailbot.errors.StoreUnavailable` (may pass: connection refused,
lock timeout) or :class:`~dsr_mailbot.errors.StoreError`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, event, func, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, SQLModel, col, create_engine, select

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.errors import ConfigError, StoreConflict, StoreError, StoreUnavailable
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import (
    FINAL_STATES,
    ActionState,
    AuditEvent,
    MailboxCursor,
    OutboxMessage,
    OutboxState,
    Request,
    RequestKind,
    RequestState,
    SystemAction,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
# The tables erasure changes, whose old row versions must go from the files (system_actions: its payloads).
ERASED_TABLES = "users, requests, outbox, audit_events, system_actions"


# The engines the store runs on, by URL scheme (before any "+driver"), and the driver each plain scheme gets.
DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg",
           "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}
MYSQL_DIALECTS = frozenset({"mysql", "mariadb"})


def normalise_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if sep and scheme in DRIVERS and scheme != "sqlite":
        return f"{DRIVERS[scheme]}://{rest}"
    return url


def is_mysql(dialect: str) -> bool:
    """MySQL or MariaDB (SQLAlchemy names the dialect after the URL's scheme)."""
    return dialect in MYSQL_DIALECTS


def make_engine(url: str, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    try:
        return _make_engine(normalise_url(url), busy_timeout_ms)
    except (sa_exc.ArgumentError, ValueError, ImportError) as exc:
        raise ConfigError(f"[database] {unusable_url(url, exc)}") from exc


def unusable_url(url: str, exc: Exception) -> str:
    """Why no engine could be made from a URL, and what to do; never the URL (it may hold a password)."""
    if isinstance(exc, ModuleNotFoundError):
        extra = "mysql" if url.startswith(("mysql", "mariadb")) else "postgresql"
        return f"url: the {extra} driver is not installed (pip install 'dsr-mailbot[{extra}]')"
    return f"url: not a usable database URL ({type(exc).__name__}; percent-encode @ : / in a password)"


def _make_engine(url: str, busy_timeout_ms: int) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

        def on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
            _sqlite_on_connect(dbapi_conn, busy_timeout_ms)

        event.listen(engine, "connect", on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if url.startswith("postgresql"):
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    if url.startswith(("mysql", "mariadb")):
        # READ COMMITTED, as PostgreSQL's default: InnoDB's REPEATABLE READ would let a long pass read a
        # snapshot older than the outbox rows another worker has just claimed.
        return create_engine(url, pool_pre_ping=True, pool_recycle=3600, isolation_level="READ COMMITTED",
                             connect_args={"connect_timeout": 10, "charset": "utf8mb4"})
    scheme = url.split(":", 1)[0]
    raise ConfigError(f"[database] url: unsupported database {scheme!r} "
                      "(use sqlite:///, postgresql:// or mysql://)")


def _sqlite_on_connect(dbapi_conn: Any, busy_timeout_ms: int) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA secure_delete=ON")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _translate(exc: Exception) -> StoreError:
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ):
        # The DBAPI text can quote SQL parameters (personal data); keep only the class.
        return StoreUnavailable(f"database unavailable ({type(exc.orig or exc).__name__})")
    if isinstance(exc, sa_exc.IntegrityError):
        return StoreConflict(f"database conflict ({type(exc.orig or exc).__name__})")
    if isinstance(exc, sa_exc.DBAPIError):
        return StoreError(f"database error ({type(exc.orig or exc).__name__})")
    return StoreError(f"database error ({type(exc).__name__})")


class Store:
    """Owns the engine; hands out sessions, each one transaction."""

    def __init__(self, url: str, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, busy_timeout_ms)
        # Threads of one process take turns sending the outbox (see send.drain_outbox).
        self.send_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def serves_many_workers(self) -> bool:
        """PostgreSQL and MySQL/MariaDB: workers share the outbox (row locks) and take the mailbox by a server lock.

        SQLite serves one process, which holds a file lock (:mod:`~dsr_mailbot.service.locks`).
        """
        return self.dialect != "sqlite"

    def init_schema(self, keyring: Keyring | None = None) -> str:
        """Create the tables, or upgrade them to the newest migration; return the revision (see schema.py)."""
        from dsr_mailbot.store import schema

        try:
            return schema.upgrade(self.engine, keyring)
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc

    def schema_state(self) -> Any:
        """The schema's revision (:class:`~dsr_mailbot.store.schema.SchemaState`); a database down is temporary."""
        from dsr_mailbot.store import schema

        try:
            return schema.schema_state(self.engine)
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc

    def check_schema(self) -> None:
        """Fail with a clear message when ``db init`` has not been run, or the schema is an older version's."""
        from dsr_mailbot.store import schema

        try:
            state = schema.schema_state(self.engine)
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc
        if not state.tables:
            raise ConfigError("[database] url: tables missing; run 'dsr-mailbot db init'")
        if not state.current:
            raise ConfigError(
                f"[database] url: the schema is at revision {state.revision or 'of the first release'}, "
                f"this version needs {state.head}; run 'dsr-mailbot db upgrade'"
            )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc

    @property
    def erasure_method(self) -> str:
        """How :meth:`reclaim_erased` destroys, in words, for the act of destruction."""
        if self.dialect == "sqlite":
            return "deleted from the SQLite store (secure_delete on; write-ahead log checkpointed and truncated)"
        if is_mysql(self.dialect):
            return "deleted from the MariaDB/MySQL store (the touched tables rebuilt)"
        return "deleted from the PostgreSQL store (the touched tables vacuumed)"

    def reclaim_erased(self) -> None:
        """Make erased rows unrecoverable from the database files.

        SQLite runs with ``secure_delete`` (freed content is overwritten with
        zeros); a ``wal_checkpoint(TRUNCATE)`` then copies the log into the
        database and empties it, so no earlier page image of a deleted row
        stays in the ``-wal`` file.  PostgreSQL keeps deleted rows as dead
        tuples until VACUUM, so the tables erasure touches are vacuumed here;
        its WAL segments and base backups keep them until they rotate (README,
        "Erasure").  InnoDB marks deleted records and purges them later; an
        ``OPTIMIZE TABLE`` rebuilds the tables without them (its undo and redo
        logs and the binlog keep them until they rotate, as PostgreSQL's WAL).
        """
        try:
            if self.dialect == "sqlite":
                # Outside any transaction (the engine's begin hook would open BEGIN IMMEDIATE around it).
                raw = self.engine.raw_connection()
                try:
                    cursor = raw.cursor()
                    busy = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    cursor.close()
                finally:
                    raw.close()
                if busy is not None and busy[0]:
                    log.info("the WAL checkpoint after erasure waited for a reader; the next one completes it")
                return
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                if is_mysql(self.dialect):
                    # It answers with a result set per table ("note: … doing recreate + analyze"): read it.
                    connection.exec_driver_sql(f"OPTIMIZE TABLE {ERASED_TABLES}").all()
                else:
                    connection.exec_driver_sql(f"VACUUM {ERASED_TABLES}")
        except sa_exc.SQLAlchemyError as exc:
            raise _translate(exc) from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"database unavailable ({type(exc).__name__})") from exc

    def dispose(self) -> None:
        self.engine.dispose()


# Queries.  Each takes the session of the caller's transaction.


def find_user_by_email(session: Session, email: str) -> User | None:
    """The user whose stored address is ``email`` in the normal form of :mod:`~dsr_mailbot.addresses`."""
    address = normalise_address(email.strip())
    if address is None:
        return None
    return session.exec(select(User).where(User.email == address)).first()


def find_request_by_ref(session: Session, message_ref: str) -> Request | None:
    """The request recorded for a Message-ID, by its keyed hash (see ``Keyring.message_ref``)."""
    return session.exec(select(Request).where(Request.message_ref == message_ref)).first()


def requests_awaiting_archive(session: Session, source: str) -> Sequence[Request]:
    return session.exec(
        select(Request)
        .where(
            Request.source == source,
            Request.archived_at.is_(None),  # type: ignore[union-attr]
            # Ignored mail is not a request: like all ordinary mail, it stays where it is.  A request
            # still "received" is not handled yet: moving it now would hide it from the next attempt.
            Request.state.not_in([RequestState.IGNORED, RequestState.RECEIVED]),  # type: ignore[attr-defined]
        )
        .order_by(Request.id)  # type: ignore[arg-type]
    ).all()


def mark_archived(session: Session, request_ids: Sequence[int], at: datetime) -> None:
    """Their messages are moved: one UPDATE for all of them."""
    if request_ids:
        session.execute(update(Request).where(col(Request.id).in_(request_ids)).values(archived_at=at))


def open_requests_due_by(session: Session, moment: datetime) -> Sequence[Request]:
    """Requests still open (not closed, not confirmations) whose due date is at or before ``moment``."""
    return session.exec(
        select(Request)
        .where(
            Request.state.not_in(list(FINAL_STATES)),  # type: ignore[attr-defined]
            Request.kind != RequestKind.CONFIRM,
            Request.due_at <= moment,
        )
        .order_by(Request.due_at)  # type: ignore[arg-type]
    ).all()


def all_requests(session: Session) -> Sequence[Request]:
    return session.exec(select(Request).order_by(Request.id)).all()  # type: ignore[arg-type]


def count_rows(session: Session, model: type[SQLModel], *conditions: Any) -> int:
    """How many rows of ``model`` meet every condition, counted by the database."""
    return int(session.exec(select(func.count()).select_from(model).where(*conditions)).one())


def erasures_between(session: Session, start: datetime, end: datetime) -> int:
    return count_rows(session, AuditEvent, AuditEvent.event == "user_erased", col(AuditEvent.at) >= start,
                      col(AuditEvent.at) < end)


def all_users(session: Session) -> Sequence[User]:
    return session.exec(select(User).order_by(User.id)).all()  # type: ignore[arg-type]


NOTICE_PURPOSE_PREFIX = "n:"  # the outbox purpose of a campaign's notices: "n:<campaign>"


def is_notice(purpose: str) -> bool:
    return purpose.startswith(NOTICE_PURPOSE_PREFIX)


def sendable_outbox(notices_allowed: bool, skip: Collection[int] = ()) -> Any:
    """The query for the next queued rows, oldest first; without campaign notices while their minute is used up,
    and without ``skip`` (rows this drain has tried already)."""
    query = select(OutboxMessage).where(OutboxMessage.state == OutboxState.QUEUED)
    if skip:
        query = query.where(col(OutboxMessage.id).not_in(skip))
    if not notices_allowed:
        query = query.where(col(OutboxMessage.purpose).not_like(f"{NOTICE_PURPOSE_PREFIX}%"))
    return query.order_by(OutboxMessage.id)  # type: ignore[arg-type]


def notices_sent_since(session: Session, since: datetime) -> int:
    return count_rows(session, OutboxMessage, col(OutboxMessage.purpose).like(f"{NOTICE_PURPOSE_PREFIX}%"),
                      OutboxMessage.state == OutboxState.SENT, col(OutboxMessage.sent_at) >= since)


def queued_outbox(session: Session, limit: int = 100, notices_allowed: bool = True,
                  skip: Collection[int] = ()) -> Sequence[OutboxMessage]:
    return session.exec(sendable_outbox(notices_allowed, skip).limit(limit)).all()  # type: ignore[no-any-return]


def get_cursor(session: Session, source: str) -> MailboxCursor | None:
    return session.get(MailboxCursor, source)


def save_cursor(session: Session, source: str, uidvalidity: int, last_uid: int) -> None:
    cursor = session.get(MailboxCursor, source)
    if cursor is None:
        cursor = MailboxCursor(source=source, uidvalidity=uidvalidity, last_uid=last_uid)
    else:
        cursor.uidvalidity = uidvalidity
        cursor.last_uid = last_uid
        cursor.updated_at = utcnow()
    session.add(cursor)


def pending_actions(session: Session, action: str, email: str, system: str | None = None) -> list[SystemAction]:
    """The pending actions of this kind for this address, on one system or all (few: erasures wait for their date,
    the rest run within minutes), compared in Python: the payload is JSON, which each engine queries its own way."""
    query = select(SystemAction).where(SystemAction.action == action, SystemAction.state == ActionState.PENDING)
    if system is not None:
        query = query.where(SystemAction.system == system)
    return [row for row in session.exec(query).all() if row.payload.get("email") == email]
