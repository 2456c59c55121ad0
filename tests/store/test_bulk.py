"""Many rows into one table in the caller's transaction (COPY on PostgreSQL, executemany elsewhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import SQLModel, select

from dsr_mailbot.errors import StoreConflict
from dsr_mailbot.store.bulk import insert_many, padded, values_present
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


def test_an_in_list_has_one_of_a_few_lengths_the_last_value_repeated() -> None:
    assert padded(["a", "b", "c"]) == ["a", "b", "c", *["c"] * 13]
    assert [len(padded(list(range(n)))) for n in (16, 17, 2_600, 2_800, 5_000)] == [16, 32, 4_096, 4_096, 8_192]
    assert len(padded(list(range(5_000)), limit=999)) == 5_000  # never fewer than asked: the caller chunks
    assert padded(list(range(600)), limit=999)[-390:] == [599] * 390 and padded([]) == []


def test_the_values_present_are_found_whatever_the_padding(store: Store) -> None:
    table = SQLModel.metadata.tables["suppressions"]
    now = datetime.now(UTC)
    with store.transaction() as session:
        insert_many(session, table, COLUMNS, [(c * 64, now) for c in "abc"])
        assert values_present(session, table, "sha256", ["b" * 64, "d" * 64, "a" * 64]) == {"a" * 64, "b" * 64}
        assert values_present(session, table, "sha256", []) == set()
