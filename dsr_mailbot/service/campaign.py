"""A policy-change campaign (``notify``, policy 7.2): its recipients across the data map, queued in batches.

The recipients are the bot's own users who have not withdrawn (when the
data map lists the built-in store), then every address of every SQL table
that maps ``email``, skipping rows whose mapped ``processing_consent`` is
false, streamed from each database and de-duplicated by the normal form of
the address.  Each batch is queued in one transaction; what a campaign has
queued already is never queued again (:mod:`~dsr_mailbot.replies.notices`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

from dsr_mailbot.config.datamap import SqlSystem
from dsr_mailbot.faults import crash_point
from dsr_mailbot.pipeline import Services
from dsr_mailbot.replies.notices import (
    Recipient,
    languages_by_subject,
    queue_notices,
    queued_notices,
    recipients,
    still_to_queue,
    system_recipient,
)
from dsr_mailbot.store.models import utcnow
from dsr_mailbot.systems import connect

BATCH = 500


@dataclass
class Queued:
    recipients: int = 0  # everyone the campaign reaches
    queued: int = 0  # notices queued by this run (a dry run: that it would queue)


def campaign_recipients(services: Services) -> Iterator[Recipient]:
    """Everyone a notice goes to, each address once, in the order: the bot's users, then each SQL system's."""
    config, keyring = services.config, services.keyring
    default = config.policy.default_language
    with services.store.transaction() as session:
        own = recipients(session, default) if any(s.kind == "builtin" for s in config.data_map) else []
        languages = languages_by_subject(session) if any(isinstance(s, SqlSystem) for s in config.data_map) else {}
    seen: set[bytes] = set()  # 8-byte digests of the normal forms: a million addresses in tens of MB

    def first_time(address: str) -> bool:
        digest = hashlib.blake2b(address.encode("utf-8"), digest_size=8).digest()
        if digest in seen:
            return False
        seen.add(digest)
        return True

    for person in own:
        if first_time(person.email):
            yield person
    for system in config.data_map:
        if not isinstance(system, SqlSystem):
            continue
        connector = connect(config, system)
        try:
            for address in connector.recipients():
                if first_time(address):
                    yield system_recipient(keyring, address, languages.get(keyring.subject_ref(address), default))
        finally:
            connector.close()


def _batches(items: Iterable[Recipient], size: int) -> Iterator[list[Recipient]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def queue_campaign(services: Services, campaign: str, template: str, *, dry_run: bool = False,
                   advance: Callable[[int], None] = lambda _n: None) -> Queued:
    """Queue the campaign's notice for everyone who does not have it yet, a batch per transaction."""
    config = services.config
    with services.store.transaction() as session:
        have = queued_notices(session, campaign)
    counted = Queued()
    for batch in _batches(campaign_recipients(services), BATCH):
        counted.recipients += len(batch)
        todo = still_to_queue(services.keyring, campaign, batch, have, config.reply_domain)
        counted.queued += len(todo)
        if dry_run or not todo:
            continue
        with services.store.transaction() as session:
            queue_notices(session, config=config, keyring=services.keyring, renderer=services.renderer,
                          campaign=campaign, template=template, users=todo, now=utcnow())
        crash_point("after_notice_batch")
        advance(len(todo))
    return counted
