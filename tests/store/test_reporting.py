"""The monthly report streamed from the store gives the figures the former load-everything report gave.

The oracle below is the report as it was computed before it streamed (issue
21): every request of the month loaded as an ORM row, their closing replies
looked up by a list of ids, the erasures by :func:`month_erasures` over the
same list, and the former ``build_report`` and weekly chart, kept here word
for word.  The store holds what could tell them apart: the month's edges in
local time, mixed letters, confirmations, ignored mail, a question's
acknowledgement before its answer, an answer still unsent, replies sent late,
challenges (which answer nothing), withdrawals with a destruction pending in
the store, in a system, done, or failed, erasures just inside and outside
the month; and a page size of 3 rows, so that a request's replies straddle
the cursor's pages.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.intents.deadlines import WorkCalendar, due_at, working_days_between
from dsr_mailbot.replies.report import (
    Closing,
    MonthReport,
    MonthTally,
    load_month,
    month_bounds,
    report_lines,
)
from dsr_mailbot.store import reporting
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import Store, erasures_between
from dsr_mailbot.store.figures import ERASURE_NOT_DONE, erasures_still_due
from dsr_mailbot.store.models import (
    FINAL_STATES,
    ActionState,
    OutboxMessage,
    Request,
    RequestKind,
    RequestState,
    SystemAction,
    User,
)
from dsr_mailbot.web.pages import weekly_chart, weekly_chart_of

ALMATY = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 4, 2, 7, 0, tzinfo=UTC)


def local(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ALMATY).astimezone(UTC)


# The former report, as it was.


def old_answered_at(request: Request, closing: Mapping[int, Closing]) -> datetime | None:
    if request.state not in FINAL_STATES or request.state == RequestState.IGNORED:
        return None
    reply = closing.get(request.id) if request.id is not None else None
    if reply is not None and reply.written:
        return reply.sent_at
    return request.completed_at


def old_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


def old_build_report(month: str, requests: Sequence[Request], now: datetime, erasures_done: int,
                     erasures_pending: int, country: str | WorkCalendar, timezone: str,
                     closing: Mapping[int, Closing] | None = None, erasures_overdue: int = 0) -> MonthReport:
    asked = [r for r in requests if r.kind != RequestKind.CONFIRM]
    counts: dict[str, Counter[str]] = {}
    for request in asked:
        counts.setdefault(request.kind, Counter())[request.state] += 1
    when = {r.id: old_answered_at(r, closing or {}) for r in asked}
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
                             and old_day(sent, timezone) > old_day(r.due_at, timezone)),
        open_overdue=sorted(r.id for r in asked
                            if r.id is not None and when[r.id] is None and r.state != RequestState.IGNORED
                            and r.due_at < now),
        erasures_done=erasures_done,
        erasures_pending=erasures_pending,
        erasures_overdue=erasures_overdue,
        calendar=country.country if isinstance(country, WorkCalendar) else country,
    )


def old_month_erasures(session: Session, received: Sequence[Request], now: datetime) -> tuple[int, int]:
    withdrawals = {r.id: r.user_id for r in received if r.id is not None and RequestKind.WITHDRAW in r.intents}
    if not withdrawals:
        return 0, 0
    due: dict[int, list[datetime]] = {}
    users = {u: d for u, d in session.execute(
        select(col(User.id), col(User.erasure_due_at)).where(
            col(User.id).in_([u for u in withdrawals.values() if u is not None]),
            col(User.erasure_due_at).is_not(None)))}
    for request_id, user_id in withdrawals.items():
        if user_id in users and users[user_id] is not None:
            due.setdefault(request_id, []).append(users[user_id])
    for request_id, when in session.execute(
            select(col(SystemAction.request_id), col(SystemAction.due_at)).where(
                col(SystemAction.request_id).in_(list(withdrawals)), col(SystemAction.action) == "erase",
                col(SystemAction.state).in_(ERASURE_NOT_DONE))):
        due.setdefault(request_id, []).append(when)
    return len(due), sum(1 for dates in due.values() if min(dates) < now)


def old_load_month(session: Session, month: str, now: datetime, policy: PolicyConfig) -> tuple[MonthReport,
                                                                                                list[Request]]:
    zone = ZoneInfo(policy.timezone)
    first, after = month_bounds(month)
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(after, datetime.min.time(), zone)
    received = list(session.exec(select(Request).where(Request.received_at >= start, Request.received_at < end)
                                 .order_by(col(Request.id))).all())
    closing: dict[int, Closing] = {}
    for request_id, sent_at in session.exec(select(OutboxMessage.request_id, OutboxMessage.sent_at).where(
            col(OutboxMessage.request_id).in_([r.id for r in received]),
            col(OutboxMessage.purpose).in_(("reply", "answer"))).order_by(col(OutboxMessage.id))).all():
        if request_id is not None:
            closing[request_id] = Closing(True, sent_at)
    pending, overdue = old_month_erasures(session, received, now)
    report = old_build_report(month, received, now, erasures_between(session, start, end), pending,
                              policy.clock.work_calendar(policy.clock.main_calendar), policy.timezone, closing,
                              overdue)
    return report, received


# The store.


class Month:
    """Requests, replies, actions and events written through the ORM, as the bot writes them."""

    def __init__(self, session: Session) -> None:
        self.session, self.n = session, 0

    def user(self, erasure_due_at: datetime | None = None) -> int:
        self.n += 1
        user = User(email=f"person{self.n}@example.kz", erasure_due_at=erasure_due_at)
        self.session.add(user)
        self.session.flush()
        assert user.id is not None
        return user.id

    def request(self, kind: str, state: str, received: datetime, answered_after: timedelta | None = None,
                intents: Sequence[str] | None = None, user_id: int | None = None) -> int:
        self.n += 1
        final = state in FINAL_STATES
        request = Request(
            message_ref=f"m{self.n}", source="imap", uidvalidity=1, uid=self.n, kind=kind,
            intents=list(intents if intents is not None else ([] if kind == "confirm" else [kind])), state=state,
            language="ru", received_at=received, due_at=due_at(kind, received),
            completed_at=received + (answered_after or timedelta(minutes=1)) if final else None,
            user_id=user_id, subject_ref=f"ref{self.n}")
        self.session.add(request)
        self.session.flush()
        assert request.id is not None
        return request.id

    def reply(self, request_id: int, purpose: str, sent_at: datetime | None) -> None:
        self.n += 1
        self.session.add(OutboxMessage(request_id=request_id, purpose=purpose, message_id=f"<r{self.n}@x>",
                                       recipient="erased", data=b"", state="sent" if sent_at else "queued",
                                       sent_at=sent_at))

    def erase(self, request_id: int, system: str, state: ActionState, due: datetime) -> None:
        self.session.add(SystemAction(request_id=request_id, system=system, action="erase", state=state,
                                      due_at=due, next_try_at=due, payload={}, result={}))


def fill(session: Session) -> None:
    m = Month(session)
    march = [date(2026, 3, day) for day in range(1, 32)]
    # The month's edges in local time: 1 March 00:30 in Almaty is 28 February in UTC; 1 April 00:10 is out.
    edge_in = m.request("update", "completed", local(date(2026, 3, 1), 0, 30))
    m.reply(edge_in, "reply", local(date(2026, 3, 1), 0, 31))
    m.request("optout", "completed", local(date(2026, 3, 31), 23, 30), timedelta(hours=2))
    m.reply(m.request("update", "completed", local(date(2026, 4, 1), 0, 10)), "reply", local(date(2026, 4, 1), 1))
    m.reply(m.request("access", "completed", local(date(2026, 2, 28), 23, 50), timedelta(days=20)), "reply",
            local(date(2026, 3, 20)))
    for n, day in enumerate(march):
        received = local(day, 9 + n % 8)
        # An update (every third a mixed letter), answered the same day or, now and then, sent days late.
        update = m.request("update", "completed", received, timedelta(minutes=5),
                           intents=["update", "optout"] if n % 3 == 0 else None)
        m.reply(update, "reply", received + (timedelta(days=4 + n % 5) if n % 7 == 0 else timedelta(minutes=6)))
        # A question: its acknowledgement first, then its answer (unsent on some days: not answered at all).
        question = m.request("question", "completed" if n % 4 else "review", received, timedelta(days=n % 12))
        m.reply(question, "reply", received + timedelta(seconds=5))
        if n % 4:
            m.reply(question, "answer", None if n % 5 == 0 else received + timedelta(days=n % 12, seconds=30))
        # An opt-out closed without a reply of its own, answered when it closed.
        m.request("optout", "completed", received, timedelta(seconds=n))
        # A withdrawal: challenged, confirmed, applied; its destruction pending in the store or a system, done,
        # or failed; some still waiting for their confirmation, some expired.
        person = m.user(erasure_due_at=received + timedelta(days=30) if n % 2 else None)
        state = ("completed", "awaiting_confirmation", "expired", "completed")[n % 4]
        withdrawal = m.request("withdraw", state, received, timedelta(hours=n % 30), user_id=person)
        m.reply(withdrawal, "challenge_o", received + timedelta(seconds=2))
        if state == "completed":
            m.request("confirm", "completed", received + timedelta(hours=1))
            m.reply(withdrawal, "reply", received + timedelta(hours=n % 30, minutes=1))
            m.erase(withdrawal, "Shop", (ActionState.PENDING, ActionState.DONE, ActionState.FAILED)[n % 3],
                    received + timedelta(days=30 - n))
        # Ignored mail, a rejected update, an access request in review.
        if n % 5 == 0:
            m.request("update", "ignored", received)
            m.reply(m.request("update", "rejected", received, user_id=None), "reply", received + timedelta(minutes=1))
            m.request("access", "review", received)
    # The same person's second withdrawal: their date counts for both.
    twice = m.user(erasure_due_at=local(date(2026, 4, 20)))
    m.request("withdraw", "completed", local(date(2026, 3, 10)), user_id=twice)
    m.request("withdraw", "completed", local(date(2026, 3, 12)), user_id=twice)
    # Erasures done: two in March (one at its first local minute), one the evening before in UTC, one in April.
    for at in (local(date(2026, 3, 1), 0, 0), local(date(2026, 3, 15)), local(date(2026, 2, 28), 23, 59),
               local(date(2026, 4, 1), 0, 0)):
        record_event(session, "user_erased", subject_ref="gone", at=at, reason="consent_withdrawn")
    record_event(session, "reply_sent", request_id=edge_in, at=local(date(2026, 3, 2)), purpose="reply")


@pytest.fixture
def filled(db_url: str) -> Store:
    store = Store(db_url)
    store.init_schema()
    with store.transaction() as session:
        fill(session)
    return store


@pytest.mark.parametrize("page", [3, reporting.PAGE])
def test_the_streamed_report_gives_the_former_reports_figures(filled: Store, page: int,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reporting, "PAGE", page)
    policy = PolicyConfig()
    with filled.transaction() as session:
        old, received = old_load_month(session, "2026-03", NOW, policy)
        new = load_month(session, "2026-03", NOW, policy)
    filled.dispose()

    assert new.report == old and report_lines(new.report) == report_lines(old)
    assert weekly_chart_of(new.received, new.first, new.after) == weekly_chart(received, policy.timezone,
                                                                                 new.first, new.after)
    # The store held what tells them apart (not a report of nothing equal to a report of nothing).
    assert old.answered > 60 and old.answered_late and old.open_overdue and old.erasures_done == 2
    assert old.erasures_pending and old.erasures_overdue and old.median_working_days is not None


def test_a_months_erasures_are_those_of_its_withdrawals_whatever_the_month_and_the_day(filled: Store) -> None:
    policy = PolicyConfig()
    zone = ZoneInfo(policy.timezone)
    with filled.transaction() as session:
        for first, after in (month_bounds("2026-02"), month_bounds("2026-03"), month_bounds("2026-04")):
            start = datetime.combine(first, time.min, zone)
            end = datetime.combine(after, time.min, zone)
            received = session.exec(select(Request).where(Request.received_at >= start,
                                                          Request.received_at < end)).all()
            tally = MonthTally(NOW, "RU", policy.timezone)
            for request in reporting.month_requests(session, start, end):
                tally.add(request)
            for now in (NOW - timedelta(days=40), NOW, NOW + timedelta(days=40)):
                assert erasures_still_due(session, tally.withdrawals, now) == old_month_erasures(session, received,
                                                                                                 now)
    filled.dispose()


def test_a_months_requests_come_once_each_with_their_last_answer(filled: Store,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reporting, "PAGE", 2)
    start, end = local(date(2026, 3, 2), 0, 0), local(date(2026, 3, 3), 0, 0)
    with filled.transaction() as session:
        rows = list(reporting.month_requests(session, start, end))
        question = session.exec(select(Request).where(Request.kind == "question", Request.received_at >= start,
                                                      Request.received_at < end)).one()
        answers = session.exec(select(OutboxMessage).where(OutboxMessage.request_id == question.id)
                               .order_by(col(OutboxMessage.id))).all()
    filled.dispose()
    assert [r.id or 0 for r in rows] == sorted({r.id or 0 for r in rows}) and len(rows) >= 4
    [asked] = [r for r in rows if r.id == question.id]
    assert [a.purpose for a in answers] == ["reply", "answer"]  # the acknowledgement, then the answer
    assert asked.closing == Closing(True, answers[-1].sent_at)
    challenged = [r for r in rows if r.kind == "withdraw" and r.state == "awaiting_confirmation"]
    assert challenged and all(r.closing is None for r in challenged)  # a challenge answers nothing
