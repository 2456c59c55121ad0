"""Open requests a page at a time, in a fixed order, and their counts by the database (the console, issue 21).

Keyset pagination: a page is the rows after (or before) a :class:`Key`, the
(time, id) of the row at the previous page's edge.  The database starts at
the key in an index and stops after one page, so page 1,000 costs what page 1
costs, where ``OFFSET`` would read and drop every row before it; and a row
decided meanwhile shifts no other row across a page boundary (no gap, no
repeat), where with ``OFFSET`` each decision would hide a row.

The order is a time column, then the id.  Each open state is read as its own
slice of the index ``(state, time, id)`` (migration 0011), limited to a page,
and the slices are merged in one ``UNION ALL``: a single ``state IN (…)``
over that index would read every open row and sort them all (SQLite,
PostgreSQL and MariaDB cannot merge the states' ranges in order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import case, func, or_, union_all
from sqlmodel import Session, col, select

from dsr_mailbot.store.models import Request, RequestKind

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MAX_TOKEN = 40  # digits of a microsecond timestamp, a dash, digits of an id: far fewer in any real link

Ordered = Literal["received_at", "due_at"]


@dataclass(frozen=True, order=True)
class Key:
    """A row's place in the order: its time (``received_at`` or ``due_at``), then its id."""

    at: datetime
    id: int

    @property
    def token(self) -> str:
        """The key as a link carries it: microseconds since 1970 (UTC), a dash, the id."""
        return f"{(self.at - EPOCH) // MICROSECOND}-{self.id}"


def parse_key(token: str) -> Key | None:
    """The key a link carries, or None when it is not one (the caller answers 400)."""
    micros, dash, number = token.partition("-")
    if not (dash and len(token) <= MAX_TOKEN and micros.isascii() and micros.isdigit() and number.isascii()
            and number.isdigit()):
        return None
    try:
        return Key(EPOCH + int(micros) * MICROSECOND, int(number))
    except OverflowError:  # past year 9999
        return None


@dataclass(frozen=True)
class Page:
    rows: list[Request]
    previous: Key | None  # the first row's key when rows come before it (a link ?before=…), else None
    next: Key | None  # the last row's key when rows come after it (a link ?after=…), else None


def _column(ordered: Ordered) -> Any:
    return col(Request.due_at) if ordered == "due_at" else col(Request.received_at)


def _key(request: Request, ordered: Ordered) -> Key:
    return Key(request.due_at if ordered == "due_at" else request.received_at, request.id or 0)


@dataclass(frozen=True)
class Narrowed:
    """The console queue's filters: the letter's (subject's) intent, its language, overdue at a moment; None: any."""

    kind: str | None = None
    language: str | None = None
    due_before: datetime | None = None

    def conditions(self) -> list[Any]:
        found: list[Any] = [col(Request.kind) != RequestKind.CONFIRM]
        if self.kind is not None:
            found.append(col(Request.kind) == self.kind)
        if self.language is not None:
            found.append(col(Request.language) == self.language)
        if self.due_before is not None:
            found.append(col(Request.due_at) < self.due_before)
        return found


def _edge(ordered: Ordered, states: Sequence[str], until: datetime | None, after: Key | None,
          before: Key | None, limit: int, narrowed: Narrowed) -> Any:
    """The ids of the page's rows: ``limit`` rows of each state from the key on, merged in one statement."""
    column = _column(ordered)
    request_id = col(Request.id)
    conditions = narrowed.conditions()
    if until is not None:
        conditions.append(column <= until)
    # ">= time AND (> time OR > id)": the index range starts at the key's time; "(time, id) > (…)" alone
    # would not start the range on every database.
    if after is not None:
        conditions += [column >= after.at, or_(column > after.at, request_id > after.id)]
    if before is not None:
        conditions += [column <= before.at, or_(column < before.at, request_id < before.id)]
    order = (column.desc(), request_id.desc()) if before is not None else (column, request_id)
    slices = [select(request_id.label("id"), column.label("at"))
              .where(col(Request.state) == state, *conditions).order_by(*order).limit(limit).subquery()
              for state in states]
    return union_all(*(select(s.c.id, s.c.at) for s in slices)).subquery("edge")


def open_page(session: Session, states: Sequence[str], ordered: Ordered, size: int, *,
              until: datetime | None = None, after: Key | None = None, before: Key | None = None,
              narrowed: Narrowed = Narrowed()) -> Page:
    """A page of requests in ``states`` (no confirmations), by ``ordered`` then id, due by ``until`` if given.

    ``after``: the page that follows that key; ``before``: the one that ends just before it; neither: the first.
    A ``before`` that reaches the start gives the first page, full, without a previous link.
    """
    if after is not None and before is not None:
        raise ValueError("a page follows one key or precedes one, not both")
    edge = _edge(ordered, states, until, after, before, size + 1, narrowed)
    order = (edge.c.at.desc(), edge.c.id.desc()) if before is not None else (edge.c.at, edge.c.id)
    found = list(session.exec(select(Request).join(edge, col(Request.id) == edge.c.id)
                              .order_by(*order).limit(size + 1)).all())
    more = len(found) > size
    rows = found[:size]
    if before is not None:
        if not more:
            return open_page(session, states, ordered, size, until=until, narrowed=narrowed)
        rows.reverse()
        return Page(rows, _key(rows[0], ordered), _key(rows[-1], ordered))
    previous = _key(rows[0], ordered) if after is not None and rows else after
    return Page(rows, previous, _key(rows[-1], ordered) if more else None)


@dataclass(frozen=True)
class OpenCount:
    total: int
    overdue: int  # of them, due before the moment given


def count_open(session: Session, states: Sequence[str], now: datetime, until: datetime | None = None,
               narrowed: Narrowed = Narrowed()) -> OpenCount:
    """How many requests are in ``states`` (no confirmations; due by ``until`` if given), how many of them are
    due before ``now``: counted by the database, exact, in one statement."""
    due = col(Request.due_at)
    conditions = [col(Request.state).in_(list(states)), *narrowed.conditions()]
    if until is not None:
        conditions.append(due <= until)
    total, overdue = session.execute(
        select(func.count(), func.coalesce(func.sum(case((due < now, 1), else_=0)), 0))
        .select_from(Request).where(*conditions)).one()
    return OpenCount(int(total), int(overdue))
