"""A policy-change campaign (``notify``, policy 7.2): its recipients across the data map, queued as references.

The recipients are the bot's own users who have not withdrawn (when the
data map lists the built-in store), queued by one ``INSERT … SELECT``;
then every address of every SQL table that maps ``email``, skipping rows
whose mapped ``processing_consent`` is false, streamed from each database
and queued by batches, each address once.  What a campaign has queued
already is never queued again (:mod:`~dsr_mailbot.store.notices`); the
messages are written when their turn to be sent comes
(:func:`~dsr_mailbot.replies.notices.write_notices`).

A dry run queues the same way in one transaction and rolls it back: its
counts are the real run's, and nothing stays.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice

from sqlmodel import Session

from dsr_mailbot.config.datamap import SqlSystem
from dsr_mailbot.faults import crash_point
from dsr_mailbot.pipeline import Services
from dsr_mailbot.replies.notices import system_recipient
from dsr_mailbot.store.models import utcnow
from dsr_mailbot.store.notices import Queueing, queue_own_users, queue_system_addresses
from dsr_mailbot.systems import connect

BATCH = 1000


@dataclass
class Queued:
    recipients: int = 0  # everyone the campaign reaches
    queued: int = 0  # notices queued by this run (a dry run: that it would queue)

    def add(self, part: Queueing) -> None:
        self.recipients += part.reached
        self.queued += part.queued


class _DryRun(Exception):
    """Rolls the dry run's transaction back."""


Step = Callable[[Session], Queueing]  # one part of the queueing, in one transaction


def _steps(services: Services, campaign: str, template: str) -> Iterator[Step]:
    """The bot's users in one step, then each SQL system's addresses in batches (streamed from its database)."""
    config, keyring, run, now = services.config, services.keyring, secrets.token_hex(8), utcnow()
    own = any(s.kind == "builtin" for s in config.data_map)
    if own:
        yield partial(queue_own_users, campaign=campaign, template=template, run=run, now=now)
    for system in config.data_map:
        if not isinstance(system, SqlSystem):
            continue
        connector = connect(config, system)
        try:
            addresses = (system_recipient(keyring, a) for a in connector.recipients())
            while batch := list(islice(addresses, BATCH)):
                yield partial(queue_system_addresses, campaign=campaign, template=template, run=run, now=now,
                              addresses=batch, skip_own_users=own)
        finally:
            connector.close()


def queue_campaign(services: Services, campaign: str, template: str, *, dry_run: bool = False,
                   advance: Callable[[int], None] = lambda _n: None) -> Queued:
    """Queue the campaign's notice for everyone who does not have it yet; a dry run counts and keeps nothing."""
    counted = Queued()
    if dry_run:
        try:
            with services.store.transaction() as session:
                for step in _steps(services, campaign, template):
                    counted.add(step(session))
                raise _DryRun
        except _DryRun:
            pass
        return counted
    for step in _steps(services, campaign, template):
        with services.store.transaction() as session:
            part = step(session)
        crash_point("after_notice_batch")
        counted.add(part)
        advance(part.queued)
    return counted
