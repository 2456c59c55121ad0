"""Many rows into one table in the caller's transaction (COPY on PostgreSQL, executemany elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import SQLModel, select

from dsr_mailbot.errors import StoreConflict
from dsr_mailbot.store.bulk import insert_many
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import Suppression

COLUMNS = ("sha256", "created_at")


def test_values_are_bound_through_their_column_types(store: Store) -> None:
    almaty = datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=5)))
    with store.transaction() as session:
        insert_many(session, SQLModel.metadata.tables["suppressions"], COLUMNS,
                    [("a" * 64, almaty), ("b" * 64, almaty)])
    with store.transaction() as session:
        stored = session.exec(select(Suppression).order_by(Suppression.sha256)).all()
    assert [(s.sha256[0], s.created_at) for s in stored] == [("a", almaty), ("b", almaty)]
    assert stored[0].created_at.utcoffset() == timedelta(0)  # stored as UTC, read back aware


def test_a_conflict_is_the_stores_conflict_and_undoes_the_transaction(store: Store) -> None:
    table = SQLModel.metadata.tables["suppressions"]
    now = datetime.now(UTC)
    with pytest.raises(StoreConflict), store.transaction() as session:
        insert_many(session, table, COLUMNS, [("a" * 64, now)])
        insert_many(session, table, COLUMNS, [("b" * 64, now), ("a" * 64, now)])
    with store.transaction() as session:
        assert session.exec(select(Suppression)).all() == []
