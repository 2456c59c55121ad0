"""A campaign's queue (store/notices.py): references queued once per campaign and recipient, on every backend."""

from __future__ import annotations

from sqlmodel import select

from dsr_mailbot.store.database import Store
from dsr_mailbot.store.models import CampaignNotice, NoticeState, User, utcnow
from dsr_mailbot.store.notices import (
    SystemAddress,
    claim_queued_notices,
    forget_queued_notices,
    queue_own_users,
    queue_system_addresses,
)


def users(store: Store, *consents: bool, first: int = 0) -> list[str]:
    with store.transaction() as session:
        added = [User(email=f"u{n}@example.kz", processing_consent=c) for n, c in enumerate(consents, first)]
        session.add_all(added)
    return [u.ref for u in added]


def notices(store: Store) -> list[CampaignNotice]:
    with store.transaction() as session:
        return list(session.exec(select(CampaignNotice).order_by(CampaignNotice.id)).all())  # type: ignore[arg-type]


def test_the_bot_s_users_are_queued_by_reference_once_per_campaign_and_not_who_withdrew(store: Store) -> None:
    refs = users(store, True, False, True)
    with store.transaction() as session:
        first = queue_own_users(session, campaign="c1", template="policy_change", run="r1", now=utcnow())
    users(store, True, first=3)  # imported later
    with store.transaction() as session:
        again = queue_own_users(session, campaign="c1", template="policy_change", run="r2", now=utcnow())
        other = queue_own_users(session, campaign="c2", template="policy_change", run="r2", now=utcnow())

    assert (first.reached, first.queued) == (2, 2)
    assert (again.reached, again.queued) == (3, 1)  # only the newcomer
    assert (other.reached, other.queued) == (3, 3)  # another campaign reaches everyone again
    queued = [n for n in notices(store) if n.campaign == "c1"]
    assert sorted(n.recipient_key for n in queued[:2]) == sorted(f"u:{r}" for r in (refs[0], refs[2]))
    assert all(n.address is None and n.state == NoticeState.QUEUED for n in queued)  # no personal data kept


def test_a_system_s_address_is_queued_once_and_not_when_it_is_a_user_of_the_bot(store: Store) -> None:
    users(store, True)
    anna, pavel = SystemAddress("anna@example.kz", "s:aa"), SystemAddress("pavel@example.kz", "s:bb")
    own = SystemAddress("u0@example.kz", "s:cc")
    with store.transaction() as session:
        first = queue_system_addresses(session, campaign="c1", template="policy_change", run="r1", now=utcnow(),
                                       addresses=[anna, own, anna], skip_own_users=True)
        # the same run meets Anna again in another table, and Pavel for the first time
        second = queue_system_addresses(session, campaign="c1", template="policy_change", run="r1", now=utcnow(),
                                        addresses=[anna, pavel], skip_own_users=True)
        later = queue_system_addresses(session, campaign="c1", template="policy_change", run="r2", now=utcnow(),
                                       addresses=[anna, pavel], skip_own_users=True)

    assert (first.reached, first.queued) == (1, 1)
    assert (second.reached, second.queued) == (1, 1)  # Anna is not counted twice in one run
    assert (later.reached, later.queued) == (2, 0)  # a later run reaches both, queues no one
    assert [n.address for n in notices(store)] == ["anna@example.kz", "pavel@example.kz"]


def test_an_erased_person_s_queued_notice_is_dropped_with_their_address(store: Store) -> None:
    with store.transaction() as session:
        queue_system_addresses(session, campaign="c1", template="policy_change", run="r1", now=utcnow(),
                               addresses=[SystemAddress("anna@example.kz", "s:aa"),
                                          SystemAddress("pavel@example.kz", "s:bb")], skip_own_users=False)
    with store.transaction() as session:
        assert forget_queued_notices(session, ["s:aa", "u:nobody"]) == 1

    assert [(n.address, n.state) for n in notices(store)] == [
        (None, NoticeState.DROPPED), ("pavel@example.kz", NoticeState.QUEUED)]
    with store.transaction() as session:
        assert [n.address for n in claim_queued_notices(session, 10, lock=store.serves_many_workers)] == [
            "pavel@example.kz"]
