"""The audit trail's hash chain, pure: what it covers, and the first event that does not follow."""

from __future__ import annotations

from datetime import UTC, datetime

from dsr_mailbot.store.chain import GENESIS, ChainedEvent, canonical, link, verify

AT = datetime(2026, 12, 6, 10, 0, 0, 123456, tzinfo=UTC)


def chain(*names: str) -> list[ChainedEvent]:
    events, previous = [], GENESIS
    for n, name in enumerate(names, start=1):
        content = canonical(AT, n, "ref", name, "bot", {"n": n})
        previous = link(previous, content)
        events.append(ChainedEvent(n, content, previous))
    return events


def test_an_intact_chain_holds_up_to_its_head_and_an_empty_one_too() -> None:
    events = chain("request_received", "request_read", "reply_sent")
    assert verify(events, events[-1].chain_hash) is None
    assert verify([], None) is None and verify([], GENESIS) is None


def test_a_changed_event_is_named_with_the_last_one_that_follows() -> None:
    events = chain("a", "b", "c")
    forged = canonical(AT, 2, "ref", "b", "bot", {"n": 99})
    events[1] = ChainedEvent(2, forged, events[1].chain_hash)
    broken = verify(events, events[-1].chain_hash)
    assert broken is not None and (broken.event_id, broken.after) == (2, 1) and "changed" in broken.reason


def test_a_removed_event_breaks_the_link_of_the_next_and_removed_last_events_break_the_head() -> None:
    events = chain("a", "b", "c", "d")
    head = events[-1].chain_hash
    broken = verify([events[0], events[2], events[3]], head)
    assert broken is not None and (broken.event_id, broken.after) == (3, 1)
    broken = verify(events[:3], head)
    assert broken is not None and (broken.event_id, broken.after) == (None, 3) and "removed" in broken.reason


def test_a_rehashed_forgery_still_fails_against_the_head_kept_apart() -> None:
    events = chain("a", "b")
    forged = chain("a", "x")  # a forger who recomputes every hash after the change
    assert verify(forged, events[-1].chain_hash) is not None


def test_an_event_without_a_hash_breaks_the_chain() -> None:
    events = chain("a", "b")
    broken = verify([events[0], ChainedEvent(2, events[1].content, None)], events[-1].chain_hash)
    assert broken is not None and broken.event_id == 2 and "no hash" in broken.reason


def test_the_hash_covers_every_field_but_not_what_a_backend_cannot_keep() -> None:
    base = canonical(AT, 1, "ref", "e", "bot", {"k": [1, "й"]})
    assert canonical(AT.replace(microsecond=0), 1, "ref", "e", "bot", {"k": [1, "й"]}) == base  # MariaDB: seconds
    for other in (canonical(AT.replace(second=1), 1, "ref", "e", "bot", {"k": [1, "й"]}),
                  canonical(AT, 2, "ref", "e", "bot", {"k": [1, "й"]}),
                  canonical(AT, 1, "fer", "e", "bot", {"k": [1, "й"]}),
                  canonical(AT, 1, "ref", "f", "bot", {"k": [1, "й"]}),
                  canonical(AT, 1, "ref", "e", "staff:anna", {"k": [1, "й"]}),
                  canonical(AT, 1, "ref", "e", "bot", {"k": [1, "и"]})):
        assert other != base
    assert canonical(AT, 1, None, "e", "bot", {"b": 1, "a": 2}) == canonical(AT, 1, None, "e", "bot", {"a": 2, "b": 1})
    assert len(link(GENESIS, base)) == 64 and link(GENESIS, base) == link(GENESIS, base).lower()
