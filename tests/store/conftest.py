"""A fresh store on each backend (SQLite, PostgreSQL, MariaDB) for the store's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dsr_mailbot.store.database import Store


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    store.init_schema()
    yield store
    store.dispose()
