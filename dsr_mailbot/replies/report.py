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

:func:`build_report` is pure; :func:`load_month` reads a month's requests
from the store and builds its report, for ``dsr-mailbot report`` and the
console's report page alike.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.intents.deadlines import WorkCalendar, working_days_between
from dsr_mailbot.store.database import erasures_between, requests_received_between
from dsr_mailbot.store.figures import month_erasures
from dsr_mailbot.store.models import FINAL_STATES, OutboxMessage, Request, RequestKind, RequestState


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


@dataclass(frozen=True)
class Closing:
    """The reply that closes a request (its answer): whether one was written, and when it was sent."""

    written: bool
    sent_at: datetime | None


def answered_at(request: Request, closing: Mapping[int, Closing]) -> datetime | None:
    """When the request was answered: its closing reply's sending, or its closing when it has no reply."""
    if request.state not in FINAL_STATES or request.state == RequestState.IGNORED:
        return None
    reply = closing.get(request.id) if request.id is not None else None
    if reply is not None and reply.written:
        return reply.sent_at
    return request.completed_at


def build_report(month: str, requests: Sequence[Request], now: datetime, erasures_done: int,
                 erasures_pending: int, country: str | WorkCalendar, timezone: str,
                 closing: Mapping[int, Closing] | None = None, erasures_overdue: int = 0) -> MonthReport:
    """The report of ``month`` from the requests received in it and their closing replies (the caller selects
    them; without ``closing``, every request was answered when it closed)."""
    asked = [r for r in requests if r.kind != RequestKind.CONFIRM]
    counts: dict[str, Counter[str]] = {}
    for request in asked:
        counts.setdefault(request.kind, Counter())[request.state] += 1
    when = {r.id: answered_at(r, closing or {}) for r in asked}
    answered = [r for r in asked if when[r.id] is not None]
    days = [working_days_between(r.received_at, sent, country, timezone)
            for r in answered if (sent := when[r.id]) is not None]
    return MonthReport(
        month=month,
        by_intent_state={kind: dict(sorted(states.items())) for kind, states in sorted(counts.items())},
        answered=len(answered),
        median_working_days=statistics.median(days) if days else None,
        worst_working_days=max(days) if days else None,
        answered_late=sorted(r.id for r in answered
                             if r.id is not None and (sent := when[r.id]) is not None
                             and _day(sent, timezone) > _day(r.due_at, timezone)),
        open_overdue=sorted(r.id for r in asked
                            if r.id is not None and when[r.id] is None and r.state != RequestState.IGNORED
                            and r.due_at < now),
        erasures_done=erasures_done,
        erasures_pending=erasures_pending,
        erasures_overdue=erasures_overdue,
        calendar=country.country if isinstance(country, WorkCalendar) else country,
    )


CLOSING_PURPOSES = ("reply", "answer")  # the outbox purposes of a request's answer (not challenges, not notices)


def closing_replies(session: Session, requests: Sequence[Request]) -> dict[int, Closing]:
    """Each request's closing reply, from the outbox: its last reply or answer (a question's acknowledgement comes
    before its answer), and when the SMTP server accepted it (None while unsent)."""
    ids = [r.id for r in requests if r.id is not None]
    closing: dict[int, Closing] = {}
    for request_id, sent_at in session.exec(select(OutboxMessage.request_id, OutboxMessage.sent_at).where(
            col(OutboxMessage.request_id).in_(ids), col(OutboxMessage.purpose).in_(CLOSING_PURPOSES))
            .order_by(col(OutboxMessage.id))).all():
        if request_id is not None:
            closing[request_id] = Closing(True, sent_at)
    return closing


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
    received: Sequence[Request]  # the requests received in it, local time
    report: MonthReport


def load_month(session: Session, month: str, now: datetime, policy: PolicyConfig) -> LoadedMonth:
    """``month`` (YYYY-MM, in ``[policy] timezone``) from the store, and its report; ValueError for a bad month."""
    zone = ZoneInfo(policy.timezone)
    first, after = month_bounds(month)
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(after, datetime.min.time(), zone)
    received = requests_received_between(session, start, end)
    pending, overdue = month_erasures(session, received, now)
    report = build_report(month, received, now, erasures_between(session, start, end), pending,
                          policy.clock.work_calendar(policy.clock.main_calendar), policy.timezone,
                          closing_replies(session, received), overdue)
    return LoadedMonth(first, after, received, report)
