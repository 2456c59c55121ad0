"""The audit trail on every backend: events chained as they are appended, by several writers at once, and verified."""

from __future__ import annotations

import threading

from sqlalchemy import text

from dsr_mailbot.store.audit import chain_head, chained_events, record_event
from dsr_mailbot.store.chain import ChainBreak, verify
from dsr_mailbot.store.database import Store


def verified(store: Store) -> ChainBreak | None:
    with store.transaction() as session:
        last_id, head = chain_head(session)
        return verify(list(chained_events(session, 0, last_id, limit=10**6)), head)


def append(store: Store, *names: str) -> None:
    with store.transaction() as session:
        for name in names:
            record_event(session, name, request_id=7, subject_ref="ref", detail_kind="update", figures=(1, 2))


def test_events_are_chained_as_they_are_appended_and_the_head_follows(store: Store) -> None:
    append(store, "request_received", "request_read")
    append(store, "reply_sent")
    assert verified(store) is None
    with store.transaction() as session:
        last_id, head = chain_head(session)
        assert [e.chain_hash for e in chained_events(session, 0, last_id)][-1] == head and last_id == 3


def test_a_changed_detail_a_removed_event_and_a_removed_last_event_are_each_found(store: Store) -> None:
    append(store, "a", "b", "c", "d")
    with store.transaction() as session:
        session.execute(text("UPDATE audit_events SET actor = 'staff:mallory' WHERE id = 2"))
    broken = verified(store)
    assert broken is not None and (broken.event_id, broken.after) == (2, 1)
    with store.transaction() as session:
        session.execute(text("UPDATE audit_events SET actor = 'bot' WHERE id = 2"))
    assert verified(store) is None
    with store.transaction() as session:
        session.execute(text("DELETE FROM audit_events WHERE id = 3"))
    broken = verified(store)
    assert broken is not None and (broken.event_id, broken.after) == (4, 2)


def test_removing_the_last_events_breaks_the_head(store: Store) -> None:
    append(store, "a", "b", "c")
    with store.transaction() as session:
        session.execute(text("DELETE FROM audit_events WHERE id = 3"))
    broken = verified(store)
    assert broken is not None and broken.event_id is None and broken.after == 2


def test_concurrent_writers_keep_one_unbroken_chain(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                append(store, f"w{n}-{i}-a", f"w{n}-{i}-b")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert verified(store) is None
    with store.transaction() as session:
        assert chain_head(session)[0] == 4 * 15 * 2
