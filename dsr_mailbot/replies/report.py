"""The monthly report for the operator and the regulator: what was asked, how fast it was answered (pure).

For the requests received in a month (in ``[policy] timezone``; confirmations
are part of their request, not requests):

- counts by intent (the primary one, the subject's) and state;
- the time to answer, in working days of ``[policy] calendar``: from the
  day of receipt to the day the request was closed (0 = the same day, 1 =
  the next working day, as the deadlines count), its median and its worst;
- the requests answered late (closed on a later local day than their due
  date: an "at once" deadline is met on the day of receipt, as a day-count
  deadline is met by the end of its last day) and those still open past it;
- erasures done in the month and still pending (people whose destruction
  date is set).

No personal data: references, intents, states and figures.

:func:`build_report` is pure; :func:`load_month` reads a month's requests
from the store and builds its report, for ``dsr-mailbot report`` and the
console's report page alike.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.intents.deadlines import working_days_between
from dsr_mailbot.store.database import erasures_between, pending_erasures, requests_received_between
from dsr_mailbot.store.models import FINAL_STATES, Request, RequestKind, RequestState


@dataclass(frozen=True)
class MonthReport:
    month: str  # YYYY-MM
    by_intent_state: dict[str, dict[str, int]]
    answered: int
    median_working_days: float | None
    worst_working_days: int | None
    answered_late: list[int]  # request ids
    open_overdue: list[int]
    erasures_done: int
    erasures_pending: int

    def as_json(self) -> dict[str, object]:
        return {
            "month": self.month,
            "by_intent_state": self.by_intent_state,
            "answered": self.answered,
            "median_working_days_to_answer": self.median_working_days,
            "worst_working_days_to_answer": self.worst_working_days,
            "answered_late": self.answered_late,
            "open_overdue": self.open_overdue,
            "erasures_done": self.erasures_done,
            "erasures_pending": self.erasures_pending,
        }


FIRST_YEAR, LAST_YEAR = 1970, 9998  # a month outside these cannot hold a request, nor be turned into UTC


def month_bounds(month: str) -> tuple[date, date]:
    """The first day of ``YYYY-MM`` and the first day of the month after; ValueError for anything else."""
    if len(month) != 7 or month[4] != "-" or not (month[:4] + month[5:]).isascii() or \
            not (month[:4] + month[5:]).isdigit():
        raise ValueError(f"expected YYYY-MM, got {month[:20]!r}")
    year, number = int(month[:4]), int(month[5:])
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"the year must be from {FIRST_YEAR} to {LAST_YEAR}")
    first = date(year, number, 1)
    return first, date(year + number // 12, number % 12 + 1, 1)


def build_report(month: str, requests: Sequence[Request], now: datetime, erasures_done: int,
                 erasures_pending: int, country: str, timezone: str) -> MonthReport:
    """The report of ``month`` from the requests received in it (the caller selects them)."""
    asked = [r for r in requests if r.kind != RequestKind.CONFIRM]
    counts: dict[str, Counter[str]] = {}
    for request in asked:
        counts.setdefault(request.kind, Counter())[request.state] += 1
    answered = [r for r in asked if r.state in FINAL_STATES and r.state != RequestState.IGNORED and r.completed_at]
    days = [working_days_between(r.received_at, r.completed_at, country, timezone)
            for r in answered if r.completed_at is not None]
    return MonthReport(
        month=month,
        by_intent_state={kind: dict(sorted(states.items())) for kind, states in sorted(counts.items())},
        answered=len(answered),
        median_working_days=statistics.median(days) if days else None,
        worst_working_days=max(days) if days else None,
        answered_late=sorted(r.id for r in answered
                             if r.id is not None and r.completed_at is not None
                             and _day(r.completed_at, timezone) > _day(r.due_at, timezone)),
        open_overdue=sorted(r.id for r in asked
                            if r.id is not None and r.state not in FINAL_STATES and r.due_at < now),
        erasures_done=erasures_done,
        erasures_pending=erasures_pending,
    )


def _day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def report_lines(report: MonthReport) -> list[str]:
    """The report as plain lines for a terminal or a mail."""
    lines = [f"DSR report {report.month}"]
    for kind, states in report.by_intent_state.items():
        lines.append(f"  {kind:<9} " + ", ".join(f"{n} {state}" for state, n in states.items()))
    median = "-" if report.median_working_days is None else f"{report.median_working_days:g}"
    worst = "-" if report.worst_working_days is None else str(report.worst_working_days)
    lines += [
        f"answered: {report.answered}; working days to answer: median {median}, worst {worst}",
        f"answered late: {len(report.answered_late)}" + (
            f" (#{', #'.join(map(str, report.answered_late))})" if report.answered_late else ""),
        f"open and overdue: {len(report.open_overdue)}" + (
            f" (#{', #'.join(map(str, report.open_overdue))})" if report.open_overdue else ""),
        f"erasures: {report.erasures_done} done, {report.erasures_pending} pending",
    ]
    return lines


@dataclass(frozen=True)
class LoadedMonth:
    first: date  # the month's first day
    after: date  # the next month's first day
    received: Sequence[Request]  # the requests received in it, local time
    report: MonthReport


def load_month(session: Session, month: str, now: datetime, policy: PolicyConfig) -> LoadedMonth:
    """``month`` (YYYY-MM, in ``[policy] timezone``) from the store, and its report; ValueError for a bad month."""
    zone = ZoneInfo(policy.timezone)
    first, after = month_bounds(month)
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(after, datetime.min.time(), zone)
    received = requests_received_between(session, start, end)
    report = build_report(month, received, now, erasures_between(session, start, end), pending_erasures(session),
                          policy.calendar, policy.timezone)
    return LoadedMonth(first, after, received, report)
