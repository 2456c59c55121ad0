"""Who may work on the mailbox: one process at a time.

- **SQLite** — a file lock (``flock``) on ``<database>.lock``.  SQLite serves
  one process, so whoever holds the lock does everything (mailbox, outbox,
  jobs); a second cron run or daemon finds it held and leaves.
- **PostgreSQL** — a session-level advisory lock, keyed by the mailbox, on a
  connection held open for as long as the lock is wanted.  Many workers may
  run: the holder watches the mailbox, every worker sends from the outbox
  (rows are claimed with ``FOR UPDATE SKIP LOCKED``).  When the holder dies,
  its connection closes, PostgreSQL drops the lock, and the next worker that
  tries takes the mailbox over.
- **MySQL/MariaDB** — the same with a named lock (``GET_LOCK``), which the
  server also releases when the connection that holds it closes.

All are released by the kernel or the server when the process dies, so a
crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from typing import IO, Any, Protocol

from sqlalchemy import BigInteger, Connection, literal, select
from sqlalchemy import func as sql_func

from dsr_mailbot.errors import StoreUnavailable
from dsr_mailbot.store.database import Store, is_mysql


class RunLock(Protocol):
    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; never waits."""

    def still_held(self) -> bool:
        """False once the lock has been lost (its database connection died)."""

    def release(self) -> None:
        """Give the lock up; never raises."""

    @property
    def description(self) -> str:
        """What is locked, for messages (no personal data)."""


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None

    @property
    def description(self) -> str:
        return f"lock file {self.path}"

    def try_acquire(self) -> bool:
        if self.handle is not None:
            return True
        handle = self.path.open("ab")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self.handle = handle
        return True

    def still_held(self) -> bool:
        return self.handle is not None

    def release(self) -> None:
        handle, self.handle = self.handle, None
        if handle is not None:
            handle.close()  # closing the descriptor releases the flock


class AdvisoryLock:
    """A lock the database server holds for one of our connections (PostgreSQL's advisory lock, MySQL's GET_LOCK)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        digest = hashlib.sha256(f"dsr-mailbot:{name}".encode()).digest()
        self.key = int.from_bytes(digest[:8], "big", signed=True)
        # MySQL names a lock with a string of at most 64 characters.
        self.mysql_name = f"dsr-mailbot:{digest[:16].hex()}"
        self.conn: Connection | None = None

    @property
    def mysql(self) -> bool:
        return is_mysql(self.store.dialect)

    @property
    def description(self) -> str:
        if self.mysql:
            return f"MySQL/MariaDB named lock {self.mysql_name}"
        return f"PostgreSQL advisory lock {self.key}"

    def _take(self) -> Any:
        if self.mysql:
            return select(sql_func.get_lock(literal(self.mysql_name), literal(0)))
        return select(sql_func.pg_try_advisory_lock(literal(self.key, BigInteger)))

    def _give_back(self) -> Any:
        if self.mysql:
            return select(sql_func.release_lock(literal(self.mysql_name)))
        return select(sql_func.pg_advisory_unlock(literal(self.key, BigInteger)))

    def try_acquire(self) -> bool:
        if self.conn is not None and self.still_held():
            return True
        try:
            conn = self.store.engine.connect()
            got = bool(conn.execute(self._take()).scalar())
            conn.commit()
        except Exception as exc:
            raise StoreUnavailable(f"advisory lock: {type(exc).__name__}") from exc
        if not got:
            conn.close()
            return False
        self.conn = conn
        return True

    def still_held(self) -> bool:
        if self.conn is None:
            return False
        try:
            self.conn.execute(select(literal(1)))
            self.conn.commit()
        except Exception:  # the connection died, and with it the lock
            self.release()
            return False
        return True

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.execute(self._give_back())
            conn.commit()
        except Exception:  # a dead connection has released the lock already
            conn.invalidate()
        finally:
            conn.close()


class NoLock:
    """An in-memory database: nothing else can see it, so there is nothing to share."""

    description = "no lock"

    def try_acquire(self) -> bool:
        return True

    def still_held(self) -> bool:
        return True

    def release(self) -> None:
        return None


def run_lock_for(store: Store, source_name: str) -> RunLock:
    if store.serves_many_workers:
        return AdvisoryLock(store, source_name)
    database = store.engine.url.database
    if not database or database == ":memory:":
        return NoLock()
    return FileLock(Path(f"{database}.lock"))
