"""Stage 1: where messages come from — the mailbox interface.

A :class:`MailSource` is a mailbox the bot may read without changing and
from which it moves only request messages.  Two implementations:

- :class:`~dsr_mailbot.mailbox.imap.ImapSource`, the support mailbox over IMAP;
- :class:`~dsr_mailbot.mailbox.maildir.MaildirSource`, a local Maildir (the
  demo, and operators whose MTA delivers to disk).

Both give messages IMAP-style identities, (UIDVALIDITY, UID): UIDs only
grow, and a new UIDVALIDITY means old UIDs mean nothing any more.  Reading
never sets \\Seen (IMAP ``BODY.PEEK``; Maildir files are only opened).
The wiring (:func:`dsr_mailbot.service.app.open_source`) picks one; the
adapters and this protocol never import each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from threading import Event
from typing import Protocol


@dataclass(frozen=True)
class HeaderRecord:
    """A message seen by the scanner: its UID, header lines, size and arrival time.

    ``complete``: ``header`` is the whole header block; otherwise it holds
    only the fields the scan asked for, and ``size`` and ``internaldate``
    are not known (see :meth:`MailSource.scan`).
    """

    uid: int
    header: bytes
    size: int
    internaldate: datetime | None
    complete: bool = True


# A record's asked-for fields are read up to this many bytes; a record that reaches it is treated as unread.
FIELDS_CAP_BYTES = 64 * 1024


@dataclass(frozen=True)
class FetchedMessage:
    uid: int
    data: bytes
    truncated: bool


class MailSource(Protocol):
    def open(self) -> int:
        """Connect and select the watched folder; return its UIDVALIDITY."""

    def scan(self, after_uid: int, batch_size: int,
             fields: Sequence[str] = ()) -> Iterator[list[HeaderRecord]]:
        """Header records of messages with UID > ``after_uid``, in UID order, in batches.

        ``fields``: when given, a record may hold only these header fields,
        capped at :data:`FIELDS_CAP_BYTES` (which bounds a batch's bytes), and
        neither size nor arrival time (``complete`` False); a source for which
        the whole record costs no more (a local Maildir, a server refusing the
        narrower request) gives complete ones.
        """

    def complete_records(self, uids: Sequence[int]) -> dict[int, HeaderRecord]:
        """Complete records (whole header block, size, arrival time) of these messages, in one exchange.

        Those gone are missing.
        """

    def search_text(self, uids: Sequence[int], stems: Sequence[str]) -> set[int] | None:
        """Which of these messages' text holds any of the stems (the server's own case-insensitive search of the
        decoded text); None when the source has no such search (a Maildir: the caller reads the messages)."""

    def fetch(self, uid: int, max_bytes: int) -> FetchedMessage | None:
        """The whole message (at most ``max_bytes`` of it), or None when it is gone."""

    def fetch_many(self, uids: Sequence[int], max_bytes: int) -> dict[int, FetchedMessage]:
        """Several whole messages (each at most ``max_bytes``) in one exchange, by UID; those gone are missing.

        The caller bounds the sum of their sizes: this holds them all at once.
        """

    def archive(self, uids: Sequence[int]) -> None:
        """Move these messages to the processed folder (creating it when missing)."""

    def find_by_message_id(self, message_id: str) -> list[int]:
        """UIDs of messages in the watched folder with this Message-ID."""

    def expunge_processed(self, message_ids: Sequence[str]) -> int:
        """Delete for good the messages of the processed folder with exactly these Message-IDs; how many went.

        Erasure (152-FZ Art. 21 ч.5): a person's request and confirmation
        messages go with their data.  Nothing else in the folder is touched.
        """

    def count_from(self, address: str) -> int:
        """How many messages in the watched folder have exactly this From address (normal form), untouched."""

    def wait_for_change(self, timeout: float, stop: Event, use_idle: bool = True) -> None:
        """Return when the folder may have changed, after ``timeout`` seconds, or soon after ``stop`` is set.

        IMAP waits in IDLE when the server offers it (and ``use_idle``);
        otherwise this is a plain wait, and the caller's next pass is the poll.
        """

    def close(self) -> None:
        """Disconnect; never raises."""


class Expunging(Protocol):
    """What erasure and retention need of the mailboxes: a person's request messages expunged, their other mail
    counted (a :class:`MailSource`, or :class:`~dsr_mailbot.mailbox.every.EveryMailbox` over several)."""

    def open(self) -> int: ...

    def expunge_processed(self, message_ids: Sequence[str]) -> int: ...

    def count_from(self, address: str) -> int: ...

    def close(self) -> None: ...
