"""A campaign's queue of notices in the database (policy 7.2): references to recipients, not messages.

Queueing a campaign for the bot's own users is one ``INSERT … SELECT``: its
time and memory do not depend on the number of customers in Python.  A
recipient found in a system of the data map is inserted by batches.  The
campaign reaches each ``recipient_key`` once (a unique constraint), so
queueing again adds only who is missing.  Messages are written when their
turn to be sent comes (:mod:`~dsr_mailbot.replies.notices`), in pages
claimed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, insert, literal, true, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, col, select

from dsr_mailbot.store.database import NOTICE_PURPOSE_PREFIX, count_rows
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import CampaignNotice, NoticeState, OutboxMessage, OutboxState, User

OWN_USER = "u:"  # + users.ref
SYSTEM_RECIPIENT = "s:"  # + the keyed digest of the address


@dataclass(frozen=True)
class Queueing:
    """Who a part of a campaign reaches, and how many of them this run queued."""

    reached: int
    queued: int


def purpose_of(campaign: str) -> str:
    """The outbox purpose of a campaign's notices."""
    return f"{NOTICE_PURPOSE_PREFIX}{campaign}"


def queue_own_users(session: Session, *, campaign: str, template: str, run: str, now: datetime) -> Queueing:
    """Queue the notice for every user of the bot's store who has not withdrawn and does not have it yet."""
    notices, users = SQLModel.metadata.tables["campaign_notices"], SQLModel.metadata.tables["users"]
    key = literal(OWN_USER) + users.c.ref
    already = exists().where(notices.c.campaign == campaign, notices.c.recipient_key == key)
    rows = sa_select(literal(campaign), literal(template), key, literal(NoticeState.QUEUED.value), literal(run),
                  literal(now, notices.c.created_at.type)).where(users.c.processing_consent == true(), ~already)
    added = session.connection().execute(insert(notices).from_select(
        ["campaign", "template", "recipient_key", "state", "run", "created_at"], rows
    ).execution_options(preserve_rowcount=True))  # SQLAlchemy keeps an INSERT's row count only when asked
    reached = count_rows(session, User, User.processing_consent == True)  # noqa: E712
    return Queueing(reached=reached, queued=int(added.rowcount))


@dataclass(frozen=True)
class SystemAddress:
    address: str  # in its normal form
    key: str  # SYSTEM_RECIPIENT + the keyed digest of the address


def system_recipient_key(keyring: Keyring, address: str) -> str:
    """The key of someone found in a system of the data map: a digest of their address under the bot's key."""
    return SYSTEM_RECIPIENT + keyring.digest("notice-recipient", address)[:32]


def queue_system_addresses(session: Session, *, campaign: str, template: str, run: str, now: datetime,
                           addresses: Sequence[SystemAddress], skip_own_users: bool) -> Queueing:
    """Queue a batch of a system's recipients; an address the campaign already reaches is not queued again.

    ``skip_own_users``: the bot's store is in the data map, so its users are
    reached as users (or not at all, having withdrawn); their addresses found
    in a system are not separate recipients.
    """
    batch = {a.key: a for a in addresses}
    earlier: set[str] = set()  # queued by an earlier run: reached, not queued again
    this_run: set[str] = set()  # a second copy (another system, another table) of someone this run reached
    for run_of, key in session.exec(select(CampaignNotice.run, CampaignNotice.recipient_key).where(
            CampaignNotice.campaign == campaign, col(CampaignNotice.recipient_key).in_(batch))).all():
        (this_run if run_of == run else earlier).add(key)
    users = set(session.exec(select(User.email).where(
        col(User.email).in_([a.address for a in batch.values()])
    )).all()) if skip_own_users else set()
    new = [a for key, a in batch.items() if key not in this_run and key not in earlier and a.address not in users]
    if new:
        session.connection().execute(insert(SQLModel.metadata.tables["campaign_notices"]), [
            {"campaign": campaign, "template": template, "recipient_key": a.key, "address": a.address,
             "state": NoticeState.QUEUED.value, "run": run, "created_at": now} for a in new])
    reached = sum(1 for key, a in batch.items() if key not in this_run and a.address not in users)
    return Queueing(reached=reached, queued=len(new))


def claim_queued_notices(session: Session, limit: int, lock: bool) -> Sequence[CampaignNotice]:
    """The oldest queued notices, at most ``limit``; ``lock``: rows another worker has claimed are skipped."""
    query = select(CampaignNotice).where(CampaignNotice.state == NoticeState.QUEUED).order_by(
        col(CampaignNotice.id)).limit(limit)
    if lock:
        query = query.with_for_update(skip_locked=True)
    return session.exec(query).all()


def notices_waiting(session: Session, campaign: str) -> int:
    """The campaign's notices not sent yet: queued as references, or written and queued in the outbox."""
    return count_rows(session, CampaignNotice, CampaignNotice.campaign == campaign,
                      CampaignNotice.state == NoticeState.QUEUED) + count_rows(
        session, OutboxMessage, OutboxMessage.purpose == purpose_of(campaign),
        OutboxMessage.state == OutboxState.QUEUED)


def forget_queued_notices(session: Session, recipient_keys: Sequence[str]) -> int:
    """The person is erased: their notices not written yet are dropped, and any address with them.

    ``recipient_keys``: their keys as a user and as a system's recipient
    (found by the unique key's first column).  A worker writing the same
    notices holds their rows (``FOR UPDATE``): this waits for it, so the
    outbox, read after, holds whatever it wrote.
    """
    table = SQLModel.metadata.tables["campaign_notices"]
    dropped = session.connection().execute(update(table).where(
        table.c.recipient_key.in_(recipient_keys), table.c.state == NoticeState.QUEUED.value
    ).values(address=None, state=NoticeState.DROPPED.value))
    return int(dropped.rowcount)
