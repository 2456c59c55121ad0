"""The store, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from dsr_mailbot.errors import ConfigError, StoreError, StoreUnavailable
from dsr_mailbot.store.audit import audit_events_page, record_event
from dsr_mailbot.store.database import (
    Store,
    find_request_by_ref,
    find_user_by_email,
    get_cursor,
    save_cursor,
)
from dsr_mailbot.store.models import AuditEvent, Request, User


def make_request(message_id: str = "<m@x>") -> Request:
    now = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
    return Request(message_ref=f"ref-{message_id}", message_id=message_id, source="s", uidvalidity=1, uid=1,
                   kind="update", state="received",
                   language="ru", received_at=now, due_at=now, subject_ref="ref")


def test_schema_is_created_once_and_checked(db_url: str) -> None:
    store = Store(db_url)
    with pytest.raises(ConfigError, match="db init"):
        store.check_schema()
    store.init_schema()
    store.init_schema()
    store.check_schema()
    store.dispose()


def test_times_come_back_as_aware_utc(db_url: str) -> None:
    store = Store(db_url)
    store.init_schema()
    almaty = timezone(timedelta(hours=5))
    with store.transaction() as session:
        session.add(User(email="a@example.kz", erasure_due_at=datetime(2026, 12, 25, 15, 0, tzinfo=almaty)))
    with store.transaction() as session:
        user = find_user_by_email(session, " A@Example.KZ ")
        assert user is not None
        assert user.erasure_due_at == datetime(2026, 12, 25, 10, 0, tzinfo=UTC)
        assert user.erasure_due_at.tzinfo is not None
    store.dispose()


def test_addresses_compare_exactly_and_times_keep_microseconds_on_every_engine(db_url: str) -> None:
    # The MariaDB test database defaults to utf8mb4_unicode_ci, which folds accents: the bot's tables do not.
    store = Store(db_url)
    store.init_schema()
    moment = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC)
    with store.transaction() as session:
        session.add(User(email="jose@example.kz", created_at=moment))
        session.add(User(email="josé@example.kz"))
    with store.transaction() as session:
        plain = find_user_by_email(session, "jose@example.kz")
        accented = find_user_by_email(session, "josé@example.kz")
        assert plain is not None and accented is not None and plain.id != accented.id
        assert accented.email == "josé@example.kz" and plain.created_at == moment
    store.dispose()


def test_a_failed_transaction_leaves_nothing_behind(db_url: str) -> None:
    store = Store(db_url)
    store.init_schema()
    with pytest.raises(RuntimeError), store.transaction() as session:
        session.add(User(email="a@example.kz"))
        session.flush()
        raise RuntimeError("boom")
    with store.transaction() as session:
        assert session.exec(select(User)).all() == []
    store.dispose()


def test_one_request_per_message_id(db_url: str) -> None:
    store = Store(db_url)
    store.init_schema()
    with store.transaction() as session:
        session.add(make_request())
    with pytest.raises(StoreError), store.transaction() as session:
        session.add(make_request())
    with store.transaction() as session:
        found = find_request_by_ref(session, "ref-<m@x>")
        assert found is not None and found.kind == "update"
    store.dispose()


def test_cursor_and_audit_events_round_trip(db_url: str) -> None:
    store = Store(db_url)
    store.init_schema()
    with store.transaction() as session:
        save_cursor(session, "imap://x", 7, 10)
        record_event(session, "request_completed", request_id=3, subject_ref="r", changed=["phone"])
    with store.transaction() as session:
        save_cursor(session, "imap://x", 7, 12)
    with store.transaction() as session:
        cursor = get_cursor(session, "imap://x")
        assert cursor is not None and (cursor.uidvalidity, cursor.last_uid) == (7, 12)
        [event] = session.exec(select(AuditEvent)).all()
        assert (event.event, event.request_id, event.detail) == ("request_completed", 3, {"changed": ["phone"]})
    store.dispose()


def test_unreachable_database_is_temporary() -> None:
    store = Store("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable):
        store.check_schema()


def test_sqlite_is_set_up_for_a_service(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    store.init_schema()
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA secure_delete")).scalar() == 1
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 10_000
    store.dispose()


def test_sqlite_write_lock_held_by_another_writer_is_temporary(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "x.db"
    store = Store(f"sqlite:///{path}")
    store.init_schema()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        impatient = Store(f"sqlite:///{path}", busy_timeout_ms=100)
        with pytest.raises(StoreUnavailable), impatient.transaction() as session:
            session.add(User(email="a@example.kz"))
        impatient.dispose()
    finally:
        other.execute("ROLLBACK")
        other.close()
        store.dispose()


def test_the_audit_trail_is_read_page_by_page_in_order(db_url: str) -> None:
    store = Store(db_url)
    store.init_schema()
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    with store.transaction() as session:
        for n in range(5):
            record_event(session, "sample", at=early if n < 2 else late, n=n)
    with store.transaction() as session:
        first = audit_events_page(session, 0, limit=2)
        rest = audit_events_page(session, first[-1][0].id or 0, limit=10)
        later = audit_events_page(session, 0, since=late)
    assert [e.detail["n"] for e, _ in (*first, *rest)] == [0, 1, 2, 3, 4]
    assert [e.detail["n"] for e, _ in later] == [2, 3, 4]
    store.dispose()
