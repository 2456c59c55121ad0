"""Counts for ``/healthz`` and ``/metrics``, and the daemons' status rows: no personal data leaves here.

Every figure is counted by the database at the moment it is asked for
(``/metrics`` is scraped every 15–60 s).  Requests are grouped by their
``intents`` list as text (a JSON list: a mixed letter counts once for each
of its intents), so a scrape reads a few dozen rows however many requests
the store holds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlmodel import Session, col

from dsr_mailbot.store.models import FINAL_STATES, OutboxMessage, OutboxState, Request, RequestKind, WorkerStatus


@dataclass(frozen=True)
class StoreFigures:
    requests: Mapping[tuple[str, str], int]  # (intent, state) -> requests
    overdue: int  # open requests past their due date
    outbox: Mapping[str, int]  # outbox state -> rows


def store_figures(session: Session, now: datetime) -> StoreFigures:
    by_intent: Counter[tuple[str, str]] = Counter()
    # Grouped by the intents list as text: a few dozen groups, whatever the number of requests.
    intents_text = cast(col(Request.intents), String)
    rows = session.execute(
        select(col(Request.kind), intents_text, col(Request.state), func.count())
        .where(col(Request.kind) != RequestKind.CONFIRM)
        .group_by(col(Request.kind), intents_text, col(Request.state)))
    for kind, intents, state, count in rows:
        for intent in (json.loads(intents) if intents else None) or [kind]:
            by_intent[(str(intent), str(state))] += int(count)
    overdue = session.execute(
        select(func.count()).select_from(Request).where(
            col(Request.state).not_in(list(FINAL_STATES)), col(Request.kind) != RequestKind.CONFIRM,
            col(Request.due_at) < now)
    ).scalar_one()
    outbox = {state.value: 0 for state in OutboxState}
    for state, count in session.execute(select(col(OutboxMessage.state), func.count())
                                        .group_by(col(OutboxMessage.state))):
        outbox[str(state)] = int(count)
    return StoreFigures(dict(by_intent), int(overdue), outbox)


def outbox_depth(session: Session) -> int:
    """Replies waiting to be sent."""
    return int(session.execute(select(func.count()).select_from(OutboxMessage)
                               .where(col(OutboxMessage.state) == OutboxState.QUEUED)).scalar_one())


def save_worker_status(session: Session, worker: str, at: datetime, status: Mapping[str, Any]) -> None:
    row = session.get(WorkerStatus, worker)
    if row is None:
        session.add(WorkerStatus(worker=worker, updated_at=at, status=dict(status)))
    else:
        row.updated_at, row.status = at, dict(status)
        session.add(row)


def worker_statuses(session: Session) -> list[WorkerStatus]:
    """Every worker's last report (one row per worker name: a few)."""
    return list(session.exec(select(WorkerStatus)).scalars())  # type: ignore[call-overload]
