"""The built-in system: the bot's own ``users`` table, in its store (SQLite, PostgreSQL or MariaDB).

Requests are carried out there inside the transaction that decides them
(:mod:`dsr_mailbot.lifecycle`), so it needs no action rows: the decision and
its effect commit together.  Here it answers ``systems check`` like the others.
"""

from __future__ import annotations

from sqlalchemy import inspect

from dsr_mailbot.store.database import Store, count_rows
from dsr_mailbot.store.models import User
from dsr_mailbot.systems.protocol import TableCheck


class BuiltinConnector:
    def __init__(self, name: str, store: Store) -> None:
        self._name = name
        self.store = store

    @property
    def name(self) -> str:
        return self._name

    def check(self) -> list[TableCheck]:
        self.store.check_schema()
        with self.store.transaction() as session:
            rows = count_rows(session, User)
            columns = tuple(c["name"] for c in inspect(session.connection()).get_columns("users"))
        return [TableCheck("users", True, columns, match_indexed=True, rows=rows)]

    def close(self) -> None:
        self.store.dispose()
