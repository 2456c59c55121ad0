"""Stage 7: move handled request messages out of the shared inbox.

A request message is moved only after its request row, the change and the
reply are committed, and ``archived_at`` is set only after the move, so a
crash in between moves it again on the next run (moving a UID that is
already gone is a no-op).  When the folder's UIDVALIDITY changed since the
request was recorded, its old UID means nothing; the message is found again
by its Message-ID.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsr_mailbot.faults import crash_point
from dsr_mailbot.mailbox.source import MailSource
from dsr_mailbot.store.database import Store, mark_archived, requests_awaiting_archive
from dsr_mailbot.store.models import utcnow


@dataclass
class ArchiveResult:
    moved: int = 0


def archive_pending(store: Store, source: MailSource, source_name: str, uidvalidity: int) -> ArchiveResult:
    with store.transaction() as session:
        pending = list(requests_awaiting_archive(session, source_name))
    if not pending:
        return ArchiveResult()
    for request in pending:
        crash_point("before_archive", request.message_id or "")
    current = [r for r in pending if r.uidvalidity == uidvalidity]
    if current:
        source.archive([r.uid for r in current])
    for request in pending:
        if request.uidvalidity != uidvalidity and request.message_id:
            source.archive(source.find_by_message_id(request.message_id))
    with store.transaction() as session:
        mark_archived(session, [r.id for r in pending if r.id is not None], utcnow())
    return ArchiveResult(moved=len(pending))
