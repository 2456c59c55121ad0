"""What every system where personal data live answers to: one small interface, typed results, one error tree.

A connector is given the person's address in the bot's normal form
(:func:`~dsr_mailbot.addresses.normalise_address`) and does one action.
Every action is idempotent: it sets values (``SET col = :new WHERE …``) or
deletes rows, so running it again after a crash finds nothing left to do and
changes nothing more; an HTTP system gets the same idempotency key again.

Errors, added to :mod:`dsr_mailbot.errors`:

- :class:`~dsr_mailbot.errors.SystemUnavailable` (temporary: the system is
  down, times out, or asks to retry): the action waits and is retried;
- :class:`~dsr_mailbot.errors.SystemRefused` (permanent: an HTTP 4xx, a
  constraint the database enforces): the request goes to review, naming the system;
- :class:`~dsr_mailbot.errors.MappingError` (a configuration error, exit 78):
  a table or column of the data map is not there.

Messages name the system, the table and the column, never the URL or a value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

Action = Literal["lookup", "access", "update", "optout", "withdraw", "erase"]
ACTIONS: tuple[Action, ...] = ("lookup", "access", "update", "optout", "withdraw", "erase")
# A change an update carries: a bot field's new value (text, or a consent's true/false).
Changes = Mapping[str, str | bool]


# What an access answer shows of one label or value: a system's text on one line, never a line of its own (a
# "-- " signature, an operator's notice), in valid Unicode, and bounded.
MAX_LABEL_CHARS, MAX_VALUE_CHARS = 200, 2000
_ONE_LINE = {c: " " for c in [*range(0x20), 0x7F, 0x85, 0x2028, 0x2029]}


def shown(text: str, limit: int) -> str:
    """A system's label or value as an access answer shows it (its control characters and line breaks as spaces,
    a lone surrogate as U+FFFD), cut at ``limit`` characters."""
    cut = text[:limit].translate(_ONE_LINE)
    return cut.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


@dataclass(frozen=True)
class HeldRecord:
    """What one table (or one record of an API) holds about the person, labelled for an access answer."""

    label: str
    fields: dict[str, str]


@dataclass(frozen=True)
class TableDone:
    """What an action did in one table: the act of destruction reports it."""

    table: str
    deleted: int = 0
    updated: int = 0
    cleared: tuple[str, ...] = ()  # the columns overwritten (erase by values)


@dataclass(frozen=True)
class Done:
    """What an action did in a system, table by table (an HTTP system reports its own counts)."""

    tables: tuple[TableDone, ...] = ()
    deleted: int = 0
    updated: int = 0

    @classmethod
    def of(cls, tables: list[TableDone]) -> Done:
        return cls(tuple(tables), sum(t.deleted for t in tables), sum(t.updated for t in tables))


@dataclass(frozen=True)
class SystemHold:
    """A system's own hold on the person's data (an HTTP lookup's ``"hold"``): kept on a ground, until a date."""

    ground: str
    until: datetime | date | None  # a day: its end in [policy] timezone
    kind: str = "block"  # block | retain


@dataclass(frozen=True)
class Found:
    """A lookup's answer: true when the system holds anything about the person, and any hold it keeps them under."""

    found: bool
    hold: SystemHold | None = None

    def __bool__(self) -> bool:
        return self.found


@dataclass(frozen=True)
class Presence:
    """The person looked up in the data map's systems other than the builtin, before the decision (by name)."""

    asked: tuple[str, ...] = ()
    found: tuple[str, ...] = ()
    unreachable: tuple[str, ...] = ()  # down, or refused the lookup: "we hold no data" cannot be said yet
    holds: tuple[tuple[str, SystemHold], ...] = ()  # (system, its hold): a withdrawal then blocks, not destroys


@dataclass(frozen=True)
class TableCheck:
    """``systems check``, per table: found, its columns, the match column's index, a row count."""

    table: str
    found: bool
    columns: tuple[str, ...] = ()
    match_indexed: bool | None = None  # None: not a match table
    rows: int | None = None
    estimated: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)


# Called with what an action did, inside the system's transaction, before it commits: the bot records the
# counts first, so that a re-run after a crash between the two commits (which finds nothing left) keeps them.
BeforeCommit = Callable[[Done], None]


class Connector(Protocol):
    """A system of the data map (``builtin``, ``sql``, ``http``)."""

    @property
    def name(self) -> str:
        """What acts, access answers and the console call it."""

    def lookup(self, email: str) -> Found:
        """Does the system hold anything about the person at this address (and keep it under a hold)?"""

    def access(self, email: str) -> list[HeldRecord]:
        """Everything it holds about them, labelled."""

    def update(self, email: str, changes: Changes, key: str, before_commit: BeforeCommit | None = None) -> Done:
        """Set the mapped fields; a new ``email`` also changes the match columns."""

    def optout(self, email: str, key: str, before_commit: BeforeCommit | None = None) -> Done:
        """Marketing off wherever it is mapped."""

    def withdraw(self, email: str, key: str, before_commit: BeforeCommit | None = None) -> Done:
        """Consent to processing (and marketing) off wherever it is mapped."""

    def erase(self, email: str, key: str, before_commit: BeforeCommit | None = None) -> Done:
        """Each table's ``erase``: its rows deleted, or their columns overwritten."""

    def check(self) -> list[TableCheck]:
        """Connect and compare the mapping with what is there (raises MappingError when it is wrong)."""

    def close(self) -> None:
        """Release connections."""
