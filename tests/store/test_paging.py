"""Open requests a page at a time (store/paging.py), on every backend: each page follows the last without gap or
repeat, in the order the console shows, whatever is decided between two pages; counts are exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import OPEN_STATES, Request, RequestState
from dsr_mailbot.store.paging import EPOCH, Key, Ordered, Page, count_open, open_page, parse_key

NOW = datetime(2026, 3, 19, 6, 0, tzinfo=UTC)
QUEUED = (RequestState.REVIEW, RequestState.AWAITING_CONFIRMATION, RequestState.CARRYING_OUT)
# Open states in turn, with closed requests and confirmations among them (never listed, never counted).
STATES = (*OPEN_STATES, "completed", RequestState.REVIEW, "rejected", RequestState.CARRYING_OUT)


def fill(store: Store, count: int) -> None:
    """``count`` requests; three at a time share a received_at and a due_at (the id orders them), and each time
    is earlier than the last: the order is not the ids'."""
    with store.transaction() as session:
        for n in range(count):
            at = NOW - timedelta(hours=n // 3)
            kind = "confirm" if n % 11 == 5 else "access"
            session.add(Request(message_ref=f"r{n}", source="s", uidvalidity=1, uid=n, kind=kind, intents=[kind],
                                state=STATES[n % len(STATES)], language="ru", received_at=at,
                                due_at=at + timedelta(hours=10), subject_ref="-"))


def expected(store: Store, states: tuple[str, ...], by: Ordered) -> list[int]:
    with store.transaction() as session:
        rows = [r for r in session.exec(select(Request)).all() if r.state in states and r.kind != "confirm"]
    return [r.id or 0 for r in sorted(rows, key=lambda r: (getattr(r, by), r.id))]


def walk_forward(session: Session, states: tuple[str, ...], by: Ordered, size: int,
                 until: datetime | None = None) -> list[Page]:
    pages = [open_page(session, states, by, size, until=until)]
    while pages[-1].next is not None:
        pages.append(open_page(session, states, by, size, until=until, after=pages[-1].next))
    return pages


def ids(page: Page) -> list[int]:
    return [r.id or 0 for r in page.rows]


@pytest.mark.parametrize(("states", "by"), [(QUEUED, "received_at"), (OPEN_STATES, "due_at")])
def test_the_pages_list_every_open_request_once_in_order_and_lead_back_the_same_way(
        store: Store, states: tuple[str, ...], by: Ordered) -> None:
    fill(store, 60)
    order = expected(store, states, by)
    assert len(order) > 4 * 5  # more than four pages of five
    with store.transaction() as session:
        pages = walk_forward(session, states, by, 5)
        assert [i for page in pages for i in ids(page)] == order  # no gap, no repeat, the order kept
        assert all(len(page.rows) == 5 for page in pages[:-1]) and 0 < len(pages[-1].rows) <= 5
        assert pages[0].previous is None and pages[-1].next is None
        assert all(page.previous is not None for page in pages[1:])
        back = [pages[-1]]
        while back[-1].previous is not None:
            back.append(open_page(session, states, by, 5, before=back[-1].previous))
    assert [ids(page) for page in reversed(back)] == [ids(page) for page in pages]
    assert back[-1].next == pages[0].next  # the first page again, with its link onwards


def test_a_request_decided_between_two_pages_moves_no_other_across_them(store: Store) -> None:
    fill(store, 40)
    order = expected(store, QUEUED, "received_at")
    with store.transaction() as session:
        first = open_page(session, QUEUED, "received_at", 5)
    with store.transaction() as session:  # an operator decides the second row of the first page meanwhile
        decided = session.get(Request, order[1])
        assert decided is not None
        decided.state = "completed"
    with store.transaction() as session:
        second = open_page(session, QUEUED, "received_at", 5, after=first.next)
    # OFFSET 5 would now start at order[6]: order[5] would be on neither page.
    assert ids(first) == order[:5] and ids(second) == order[5:10]


def test_deadlines_stop_at_the_horizon_and_the_counts_are_the_databases_exact_ones(store: Store) -> None:
    fill(store, 90)
    horizon = NOW - timedelta(hours=5)  # due by then: received 15 hours ago or earlier
    late = NOW - timedelta(hours=10)  # due before then: received over 20 hours ago
    with store.transaction() as session:
        listed = [i for page in walk_forward(session, OPEN_STATES, "due_at", 4, until=horizon) for i in ids(page)]
        counted = count_open(session, OPEN_STATES, late, until=horizon)
        queued = count_open(session, QUEUED, NOW)
        rows = {r.id: r for r in session.exec(select(Request)).all()}
    due = [i for i in expected(store, OPEN_STATES, "due_at") if rows[i].due_at <= horizon]
    assert listed == due and 0 < len(due) < len(expected(store, OPEN_STATES, "due_at"))
    assert counted.total == len(due)
    assert counted.overdue == len([i for i in due if rows[i].due_at < late]) > 0
    assert queued.total == len(expected(store, QUEUED, "received_at"))
    assert queued.overdue == len([i for i in expected(store, QUEUED, "received_at") if rows[i].due_at < NOW])


def test_a_page_after_the_last_row_is_empty_and_leads_back(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.init_schema()
    fill(store, 9)
    last = expected(store, QUEUED, "received_at")[-1]
    with store.transaction() as session:
        request = session.get(Request, last)
        assert request is not None
        past_end = open_page(session, QUEUED, "received_at", 5, after=Key(request.received_at, last))
    assert (past_end.rows, past_end.next) == ([], None) and past_end.previous == Key(request.received_at, last)
    store.dispose()


def test_a_key_travels_as_digits_and_anything_else_is_refused() -> None:
    key = Key(datetime(2026, 3, 19, 6, 0, 0, 123456, tzinfo=UTC), 42)
    assert key.token == "1773900000123456-42" and parse_key(key.token) == key
    assert parse_key("0-1") == Key(EPOCH, 1)
    for token in ("", "-", "1-", "-1", "1-2-3", "1_2", "x-1", "1-x", "²-1", "1-１", " 1-2", "9" * 17 + "0-1",
                  "1-" + "9" * 40):
        assert parse_key(token) is None, token
