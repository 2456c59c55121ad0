"""The audit trail on every backend: events chained as they are appended, by several writers at once, and verified."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from dsr_mailbot.store.audit import (
    audit_events_page,
    chain_head,
    chained_events,
    export_line,
    first_event_since,
    record_event,
)
from dsr_mailbot.store.chain import ChainBreak, verify
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import Request, utcnow


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


ODD_DETAILS: list[dict[str, Any]] = [
    {"purpose": "reply"},
    {"purpose": "reply"},  # the same text again: written from the first's
    {"z": 1, "a": {"y": [3, {"b": None, "a": True}], "x": "Ж"}, "m": [1.5, 1e-07, 1e16, -0.0, 2**63]},
    {"text": 'кавычки " и \\ обратная, \x00 \x1b[31m \u2028 \t 😀 ©', "ключ": "значение"},
    {},
]


def test_an_exported_line_is_byte_for_byte_the_json_the_export_always_wrote(store: Store) -> None:
    with store.transaction() as session:
        request = Request(message_ref="m", source="s", uidvalidity=1, uid=1, kind="update", intents=["update"],
                          state="completed", language="ru", received_at=utcnow(), due_at=utcnow(),
                          subject_ref="the-requests-ref")
        session.add(request)
        session.flush()
        for n, detail in enumerate(ODD_DETAILS):
            record_event(session, f"event_{n}", request_id=request.id if n % 2 else None,
                         subject_ref=None if n % 2 else f"ref-{n}", actor="web:Ольга" if n == 3 else "bot",
                         **detail)
    with store.transaction() as session:
        page = audit_events_page(session, 0)
    lines = [export_line(event, ref) for event, ref in page]

    assert lines == [json.dumps({
        "id": event.id, "at": event.at.isoformat(), "event": event.event, "request_id": event.request_id,
        "subject_ref": event.subject_ref or ref, "actor": event.actor, "detail": event.detail,
        "chain_hash": event.chain_hash,
    }, ensure_ascii=False, sort_keys=True) for event, ref in page]
    assert [event.detail for event, _ in page] == [json.loads(json.dumps(d)) for d in ODD_DETAILS]
    assert '"subject_ref": "the-requests-ref"' in lines[1] and '"request_id": null' in lines[0]


def test_an_export_from_a_date_starts_at_its_first_event(store: Store) -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    with store.transaction() as session:
        for n, at in enumerate((early, late, early, late, early)):  # ids follow commits, not times
            record_event(session, "sample", at=at, n=n)
    with store.transaction() as session:
        start = first_event_since(session, late)
        after_all = first_event_since(session, datetime(2027, 1, 1, tzinfo=UTC))
        assert start == 1 and after_all is None
        assert [e.detail["n"] for e, _ in audit_events_page(session, start, late)] == [1, 3]
        assert first_event_since(session, early) == 0
