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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, cast, func, select
from sqlmodel import Session, col

from dsr_mailbot.store.models import (
    FINAL_STATES,
    ActionState,
    OutboxMessage,
    OutboxState,
    Request,
    RequestKind,
    SystemAction,
    User,
    WorkerStatus,
)


@dataclass(frozen=True)
class StoreFigures:
    requests: Mapping[tuple[str, str], int]  # (intent, state) -> requests
    overdue: int  # open requests past their due date
    outbox: Mapping[str, int]  # outbox state -> rows
    erasures_overdue: int = 0  # destructions past their date, in the bot's store or a system of the data map


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
    return StoreFigures(dict(by_intent), int(overdue), outbox, len(erasures_due_by(session, now, "", strictly=True)))


ERASURE_NOT_DONE = (ActionState.PENDING, ActionState.FAILED)


@dataclass(frozen=True)
class ErasureDue:
    """A destruction not done yet: when it is due, the withdrawal that asked for it, and where."""

    due_at: datetime
    request_id: int | None  # None: a person erased by the operator (``users erase``), or the request is gone
    where: str  # the system of the data map; ``builtin`` is the bot's own store


def erasures_due_by(session: Session, moment: datetime, builtin: str, *, strictly: bool = False) -> list[ErasureDue]:
    """Every destruction not done whose date is at or before ``moment`` (``strictly``: before), oldest first."""
    def by(due: Any) -> Any:
        return col(due) < moment if strictly else col(due) <= moment

    found: list[ErasureDue] = []
    users = dict(session.execute(select(col(User.id), col(User.erasure_due_at))
                                 .where(by(User.erasure_due_at))).all())
    if users:
        withdrawal: dict[int, int] = {}
        for request_id, user_id, intents in session.execute(
                select(col(Request.id), col(Request.user_id), col(Request.intents))
                .where(col(Request.user_id).in_(list(users))).order_by(col(Request.id))):
            if RequestKind.WITHDRAW in (intents or ()):
                withdrawal[user_id] = request_id  # the latest withdrawal
        found += [ErasureDue(due, withdrawal.get(user_id), builtin) for user_id, due in users.items() if due]
    found += [ErasureDue(due, request_id, system) for request_id, system, due in session.execute(
        select(col(SystemAction.request_id), col(SystemAction.system), col(SystemAction.due_at))
        .where(col(SystemAction.action) == "erase", col(SystemAction.state).in_(ERASURE_NOT_DONE),
               by(SystemAction.due_at)))]
    return sorted(found, key=lambda e: (e.due_at, e.request_id or 0, e.where))


def month_erasures(session: Session, received: Iterable[Request], now: datetime) -> tuple[int, int]:
    """Of the withdrawals among ``received`` (a month's requests): how many destructions are still to do, and how
    many of those are past their date."""
    return erasures_still_due(session, {r.id: r.user_id for r in received
                                        if r.id is not None and RequestKind.WITHDRAW in r.intents}, now)


def erasures_still_due(session: Session, withdrawals: Mapping[int, int | None], now: datetime) -> tuple[int, int]:
    """Of ``withdrawals`` (request -> its person in the store): how many have a destruction still to do (their
    person's date, or a system's erasure not done), and how many of those are past their first date.

    Every destruction not done is read (few: they wait at most the erasure delay, or a hold), not the month's
    withdrawals passed in a query: a month of 100,000 requests would pass the drivers' bounds on parameters.
    """
    if not withdrawals:
        return 0, 0
    due: dict[int, list[datetime]] = {}
    users = dict(session.execute(select(col(User.id), col(User.erasure_due_at))
                                 .where(col(User.erasure_due_at).is_not(None))).all())
    for request_id, user_id in withdrawals.items():
        if user_id in users:
            due.setdefault(request_id, []).append(users[user_id])
    for request_id, when in session.execute(
            select(col(SystemAction.request_id), col(SystemAction.due_at)).where(
                col(SystemAction.action) == "erase", col(SystemAction.state).in_(ERASURE_NOT_DONE))):
        if request_id in withdrawals:
            due.setdefault(request_id, []).append(when)
    return len(due), sum(1 for dates in due.values() if min(dates) < now)


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
