"""The audit trail's hash chain (pure): each event carries the hash of its content and of the event before it.

A changed event no longer matches its hash; a removed one breaks the link of
the event after it; removed last events no longer match the chain's head
(``audit_chain``, one row, moved with every append).  :func:`verify` names the
first event that does not follow.  The hash is SHA-256, lower-case hex, over
the previous hash and the event's canonical JSON: time (to the second, as
every backend keeps it), request, person's reference, name, actor, detail.
Nothing in it is personal data, so the hashes can be exported and kept apart
as the anchor an inspector compares against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of the first event


def canonical(at: datetime, request_id: int | None, subject_ref: str | None, event: str, actor: str,
              detail: Mapping[str, Any]) -> bytes:
    """The bytes an event's hash covers: the same for the row written and the row read back, on every backend."""
    moment = at.astimezone(UTC).replace(microsecond=0).isoformat()
    return json.dumps([moment, request_id, subject_ref, event, actor, detail], ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def link(previous: str, content: bytes) -> str:
    return hashlib.sha256(previous.encode("ascii") + b"\n" + content).hexdigest()


@dataclass(frozen=True)
class ChainedEvent:
    id: int
    content: bytes
    chain_hash: str | None


@dataclass(frozen=True)
class ChainBreak:
    """The first event that does not follow (None: the last events were removed after ``after``)."""

    event_id: int | None
    after: int | None  # the last event that did follow
    reason: str


def verify(events: Iterable[ChainedEvent], head: str | None) -> ChainBreak | None:
    """Follow the chain over ``events`` (every event, in id order) up to ``head``; None when it holds."""
    previous, last = GENESIS, None
    for event in events:
        expected = link(previous, event.content)
        if event.chain_hash is None:
            return ChainBreak(event.id, last, "it carries no hash")
        if event.chain_hash != expected:
            return ChainBreak(event.id, last, "it was changed, or an event before it was removed")
        previous, last = expected, event.id
    if (head or GENESIS) != previous:
        return ChainBreak(None, last, "the chain's head does not match the last event: events after it were removed")
    return None
