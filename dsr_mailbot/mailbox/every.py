"""Every watched mailbox at once, for erasure and retention: a person's messages go from each of them.

All or nothing: when one mailbox cannot be opened, :meth:`EveryMailbox.open`
fails, and the erasure waits for the next pass rather than write an act that
leaves copies in a mailbox it could not reach.
"""

from __future__ import annotations

from collections.abc import Sequence

from dsr_mailbot.mailbox.source import MailSource


class EveryMailbox:
    def __init__(self, sources: Sequence[MailSource]) -> None:
        self.sources = list(sources)

    def open(self) -> int:
        for source in self.sources:
            source.open()
        return 0  # no one UIDVALIDITY: the callers of this view use none

    def expunge_processed(self, message_ids: Sequence[str]) -> int:
        return sum(source.expunge_processed(message_ids) for source in self.sources)

    def count_from(self, address: str) -> int:
        return sum(source.count_from(address) for source in self.sources)

    def close(self) -> None:
        for source in self.sources:
            source.close()
