"""The monthly report for the operator and the regulator: what was asked, how fast it was answered (pure).

For the requests received in a month (in ``[policy] timezone``; confirmations
are part of their request, not requests):

- counts by intent (the primary one, the subject's) and state;
- the time to answer, in working days of the first profile's calendar (named): from the
  day of receipt to the day the answer was sent — the SMTP server accepted
  the reply that closed the request, not when it was queued; a request closed
  without a reply was answered when it closed — (0 = the same day, 1 = the
  next working day, as the deadlines count), its median and its worst;
- the requests answered late (sent on a later local day than their due
  date: an "at once" deadline is met on the day of receipt, as a day-count
  deadline is met by the end of its last day) and those not yet answered past
  it (still open, or closed with their reply still unsent);
- erasures done in the month; of the month's withdrawals, the destructions
  still to do (in the bot's store or a system of the data map) and how many
  of those are past their date.

No personal data: references, intents, states and figures.

:class:`MonthTally` counts the figures one request at a time (pure), so that
a month of 100,000 requests is never held in memory; :func:`build_report`
folds a list of requests through it; :func:`load_month` streams a month's
requests from the store through it (store/reporting.py), for ``dsr-mailbot
report`` and the console's report page alike.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.intents.deadlines import WorkCalendar, working_days_between
from dsr_mailbot.store.database import erasures_between
from dsr_mailbot.store.figures import erasures_still_due
from dsr_mailbot.store.models import FINAL_STATES, Request, RequestKind, RequestState
from dsr_mailbot.store.reporting import CLOSING_PURPOSES, Closing, ReportedRequest, month_requests

__all__ = ["CLOSING_PURPOSES", "Closing", "LoadedMonth", "MonthReport", "MonthTally", "answered_at", "build_report",
           "load_month", "month_bounds", "received_as", "report_lines"]


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
    erasures_pending: int  # of the month's withdrawals
    calendar: str = "KZ"  # whose working days the time to answer counts
    erasures_overdue: int = 0  # of those pending, past their date

    def as_json(self) -> dict[str, object]:
        return {
            "month": self.month,
            "by_intent_state": self.by_intent_state,
            "answered": self.answered,
            "working_days_calendar": self.calendar,
            "median_working_days_to_answer": self.median_working_days,
            "worst_working_days_to_answer": self.worst_working_days,
            "answered_late": self.answered_late,
            "open_overdue": self.open_overdue,
            "erasures_done": self.erasures_done,
            "erasures_pending": self.erasures_pending,
            "erasures_overdue": self.erasures_overdue,
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


def answered_at(state: str, completed_at: datetime | None, closing: Closing | None) -> datetime | None:
    """When a request was answered: its closing reply's sending, or its closing when it has no reply."""
    if state not in FINAL_STATES or state == RequestState.IGNORED:
        return None
    if closing is not None and closing.written:
        return closing.sent_at
    return completed_at


def received_as(kind: str, intents: Sequence[str], day: date) -> list[tuple[date, str]]:
    """What a request received on local ``day`` counts as among the month's requests: (day, intent) for each
    of its intents (a mixed letter once per intent); nothing for a confirmation, which is part of its request."""
    if kind == RequestKind.CONFIRM:
        return []
    return [(day, intent) for intent in tuple(intents) or (kind,)]


@dataclass
class MonthTally:
    """The report's figures folded over a month's requests one at a time (pure): nothing holds the requests,
    only the figures, the answer times (one number each, for the median) and the withdrawals' references (for
    their erasures, counted afterwards by :func:`~dsr_mailbot.store.figures.erasures_still_due`).

    The time to answer depends only on the two local days it spans, so each pair of days is counted on the
    calendar once; a month has a few hundred such pairs.
    """

    now: datetime
    country: str | WorkCalendar
    timezone: str
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    days: list[int] = field(default_factory=list)  # working days to answer, one per answered request
    late: list[int] = field(default_factory=list)
    overdue: list[int] = field(default_factory=list)
    withdrawals: dict[int, int | None] = field(default_factory=dict)  # request -> its person: their erasures
    _received: Counter[tuple[date, str, tuple[str, ...]]] = field(default_factory=Counter)  # (day, kind, intents)
    _spans: dict[tuple[date, date], int] = field(default_factory=dict)
    _zone: ZoneInfo = field(init=False)

    def __post_init__(self) -> None:
        self._zone = ZoneInfo(self.timezone)

    def add(self, request: ReportedRequest) -> None:
        request_id, kind, intents, state, received_at, due_at, completed_at, user_id, closing = request
        if request_id is not None and RequestKind.WITHDRAW in intents:
            self.withdrawals[request_id] = user_id
        if kind == RequestKind.CONFIRM:  # part of its request, not a request
            return
        states = self.counts.get(kind)
        if states is None:
            states = self.counts[kind] = Counter()
        states[state] += 1
        zone = self._zone
        received_day = received_at.astimezone(zone).date()
        self._received[(received_day, kind, tuple(intents))] += 1
        sent = answered_at(state, completed_at, closing)
        if sent is None:
            if request_id is not None and state != RequestState.IGNORED and due_at < self.now:
                self.overdue.append(request_id)
            return
        sent_day = sent.astimezone(zone).date()
        span = self._spans.get((received_day, sent_day))
        if span is None:
            span = self._spans[(received_day, sent_day)] = working_days_between(
                received_at, sent, self.country, self.timezone)
        self.days.append(span)
        if request_id is not None and sent_day > due_at.astimezone(zone).date():
            self.late.append(request_id)

    @property
    def received(self) -> Counter[tuple[date, str]]:
        """Requests received per local day, by intent (a mixed letter counts once per intent): the console's
        chart."""
        by_day: Counter[tuple[date, str]] = Counter()
        for (day, kind, intents), count in self._received.items():
            for key in received_as(kind, intents, day):
                by_day[key] += count
        return by_day

    def report(self, month: str, erasures_done: int, erasures_pending: int, erasures_overdue: int = 0) -> MonthReport:
        return MonthReport(
            month=month,
            by_intent_state={kind: dict(sorted(states.items())) for kind, states in sorted(self.counts.items())},
            answered=len(self.days),
            median_working_days=statistics.median(self.days) if self.days else None,
            worst_working_days=max(self.days) if self.days else None,
            answered_late=sorted(self.late),
            open_overdue=sorted(self.overdue),
            erasures_done=erasures_done,
            erasures_pending=erasures_pending,
            erasures_overdue=erasures_overdue,
            calendar=self.country.country if isinstance(self.country, WorkCalendar) else self.country,
        )


def build_report(month: str, requests: Iterable[Request], now: datetime, erasures_done: int,
                 erasures_pending: int, country: str | WorkCalendar, timezone: str,
                 closing: Mapping[int, Closing] | None = None, erasures_overdue: int = 0) -> MonthReport:
    """The report of ``month`` from the requests received in it and their closing replies (the caller selects
    them; without ``closing``, every request was answered when it closed)."""
    tally = MonthTally(now, country, timezone)
    for request in requests:
        tally.add(ReportedRequest.of(request, (closing or {}).get(request.id) if request.id is not None else None))
    return tally.report(month, erasures_done, erasures_pending, erasures_overdue)


def report_lines(report: MonthReport) -> list[str]:
    """The report as plain lines for a terminal or a mail."""
    lines = [f"DSR report {report.month}"]
    for kind, states in report.by_intent_state.items():
        lines.append(f"  {kind:<9} " + ", ".join(f"{n} {state}" for state, n in states.items()))
    median = "-" if report.median_working_days is None else f"{report.median_working_days:g}"
    worst = "-" if report.worst_working_days is None else str(report.worst_working_days)
    lines += [
        f"answered: {report.answered}; working days to answer ({report.calendar} calendar): median {median}, "
        f"worst {worst}",
        f"answered late: {len(report.answered_late)}" + (
            f" (#{', #'.join(map(str, report.answered_late))})" if report.answered_late else ""),
        f"open and overdue: {len(report.open_overdue)}" + (
            f" (#{', #'.join(map(str, report.open_overdue))})" if report.open_overdue else ""),
        f"erasures: {report.erasures_done} done, {report.erasures_pending} pending of the month's withdrawals "
        f"({report.erasures_overdue} past their date)",
    ]
    return lines


@dataclass(frozen=True)
class LoadedMonth:
    first: date  # the month's first day
    after: date  # the next month's first day
    received: Mapping[tuple[date, str], int]  # requests received per local day, by intent
    report: MonthReport


def load_month(session: Session, month: str, now: datetime, policy: PolicyConfig) -> LoadedMonth:
    """``month`` (YYYY-MM, in ``[policy] timezone``) from the store, and its report; ValueError for a bad month.

    The month's requests are streamed through the tally (store/reporting.py): memory holds the figures, not the
    requests.
    """
    zone = ZoneInfo(policy.timezone)
    first, after = month_bounds(month)
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(after, datetime.min.time(), zone)
    tally = MonthTally(now, policy.clock.work_calendar(policy.clock.main_calendar), policy.timezone)
    for request in month_requests(session, start, end):
        tally.add(request)
    pending, overdue = erasures_still_due(session, tally.withdrawals, now)
    report = tally.report(month, erasures_between(session, start, end), pending, overdue)
    return LoadedMonth(first, after, tally.received, report)
