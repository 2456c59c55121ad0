"""What each console page shows, as typed records: loaded from the store, decided and masked here (no HTTP).

Masking is the default: a page record holds the masked form of every
personal field, and the plain value only of the one field the operator
asked to reveal (:func:`request_page`'s ``revealed``), which the caller has
recorded in the audit trail (:func:`~dsr_mailbot.service.review.reveal_field`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.intents.registry import spec_for
from dsr_mailbot.lifecycle import pending_intents
from dsr_mailbot.lifecycle.operator import extension_refusal
from dsr_mailbot.reading.extract import FIELDS
from dsr_mailbot.replies.outbox import mask_address
from dsr_mailbot.replies.report import MonthReport, received_as
from dsr_mailbot.service.review import REVEALABLE
from dsr_mailbot.store.models import (
    FINAL_STATES,
    OPEN_STATES,
    AuditEvent,
    Request,
    RequestKind,
    RequestState,
    User,
)
from dsr_mailbot.store.paging import Key, Narrowed, count_open, open_page

WAITING = (RequestState.REVIEW, RequestState.AWAITING_CONFIRMATION)
# The queue shows what waits for the data map's systems too: staff see a request that a system holds up.
QUEUED = (*WAITING, RequestState.CARRYING_OUT)
SOON_WORKING_DAYS = 2
PAGE_SIZE = 50  # rows of the queue and of the deadlines on one page


def mask(field: str, value: str | None) -> str:
    """The masked form of a personal value (pure): enough to recognise it, not to learn it."""
    if value is None or value == "":
        return "—"
    name = field.rpartition(".")[2]
    if name in ("email", "sender"):
        return mask_address(value)
    if name == "phone":
        digits = [c for c in value if c.isdigit()]
        return "•••" + "".join(digits[-2:])
    if name in ("letter", "owner_reply", "subject"):
        return "•••"
    return value[:1] + "•••"


@dataclass(frozen=True)
class Deadline:
    due_at: datetime
    days_left: int  # working days after today up to the due day; 0 = due today; -1 = late
    overdue: bool


def deadline(due: datetime, now: datetime, policy: PolicyConfig) -> Deadline:
    if due < now:
        return Deadline(due, -1, True)
    return Deadline(due, policy.clock.working_days_between(now, due), False)


@dataclass(frozen=True)
class QueueRow:
    id: int
    received_at: datetime
    intents: tuple[str, ...]
    language: str
    state: str
    reason: str | None
    deadline: Deadline


def _intents(request: Request) -> tuple[str, ...]:
    return tuple(request.intents) or (request.kind,)


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]  # one page, oldest first
    waiting: int  # every request in the queue, counted by the database
    overdue: int  # of them, past their due date
    previous: str | None  # the link's token for the page before (?before=…), None on the first page
    next: str | None  # the link's token for the page after (?after=…), None on the last


@dataclass(frozen=True)
class QueueFilter:
    """What the operator narrowed the queue to; None (False): any.  ``intent`` is the letter's subject's."""

    intent: str | None = None
    state: str | None = None
    language: str | None = None
    overdue: bool = False

    @property
    def query(self) -> str:
        """As the page links carry it on (``&intent=…``), empty when nothing is chosen."""
        chosen = [("intent", self.intent), ("state", self.state), ("language", self.language),
                  ("overdue", "1" if self.overdue else None)]
        return "".join(f"&{name}={value}" for name, value in chosen if value)


def queue(session: Session, now: datetime, policy: PolicyConfig, *, after: Key | None = None,
          before: Key | None = None, size: int = PAGE_SIZE, chosen: QueueFilter = QueueFilter()) -> QueuePage:
    """Requests waiting for a person (review, a confirmation, the data map's systems): a page, oldest first."""
    states = (chosen.state,) if chosen.state else QUEUED
    narrowed = Narrowed(chosen.intent, chosen.language, now if chosen.overdue else None)
    page = open_page(session, states, "received_at", size, after=after, before=before, narrowed=narrowed)
    counted = count_open(session, states, now, narrowed=narrowed)
    rows = [QueueRow(r.id or 0, r.received_at, _intents(r), r.language, r.state, r.reason,
                     deadline(r.due_at, now, policy)) for r in page.rows]
    return QueuePage(rows, counted.total, counted.overdue, _token(page.previous), _token(page.next))


def _token(key: Key | None) -> str | None:
    return key.token if key else None


@dataclass(frozen=True)
class ShownField:
    key: str  # the name :data:`~dsr_mailbot.service.review.REVEALABLE` and the audit event use
    masked: str
    value: str | None  # the plain value, only when this field was revealed
    present: bool


@dataclass(frozen=True)
class EventRow:
    at: datetime
    event: str
    actor: str
    # (key, the codes table's category for its values or "", the values): names and flags only, no personal data
    detail: tuple[tuple[str, str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class RequestPage:
    id: int
    state: str
    outcome: str | None
    reason: str | None
    intents: tuple[str, ...]
    language: str
    received_at: datetime
    deadline: Deadline | None  # None once closed
    subject: ShownField
    sender: ShownField
    fields_asked: tuple[str, ...]
    asked_values: tuple[ShownField, ...]
    problems: tuple[tuple[str, str], ...]  # (field, problem code)
    user: tuple[ShownField, ...] | None  # None: no user on file
    letter: ShownField
    letter_chars: int
    owner_reply: ShownField  # a reply to the challenge that was neither a yes nor a no
    owner_reply_chars: int
    events: tuple[EventRow, ...]
    can_approve: bool
    can_reject: bool
    can_answer: bool
    can_extend: bool
    can_dismiss: bool = False  # not a data-subject request: closed without a reply


def _shown(key: str, request: Request, user: User | None, revealed: Mapping[str, str | None]) -> ShownField:
    value = REVEALABLE[key](request, user)
    return ShownField(key, mask(key, value), revealed.get(key) if key in revealed else None, value is not None)


def request_page(session: Session, request_id: int, now: datetime, policy: PolicyConfig,
                 revealed: Mapping[str, str | None] | None = None) -> RequestPage | None:
    request = session.get(Request, request_id)
    if request is None:
        return None
    shown = dict(revealed or {})
    user = session.get(User, request.user_id) if request.user_id is not None else None
    events = session.exec(select(AuditEvent).where(AuditEvent.request_id == request_id)
                          .order_by(col(AuditEvent.id))).all()
    intent = request.intent or {}
    changes: Mapping[str, object] = intent.get("changes", {})
    is_open = request.state not in FINAL_STATES and request.kind != RequestKind.CONFIRM
    by_person = spec_for(request.kind).answered_by_person if request.kind != RequestKind.CONFIRM else False
    return RequestPage(
        id=request_id,
        state=request.state,
        outcome=request.outcome,
        reason=request.reason,
        intents=_intents(request),
        language=request.language,
        received_at=request.received_at,
        deadline=deadline(request.due_at, now, policy) if is_open else None,
        subject=_shown("subject", request, user, shown),
        sender=_shown("sender", request, user, shown),
        # What the letter asked to change, the fields it got wrong included: their problems say why (never
        # "fields: none" beside "phone: conflict").
        fields_asked=tuple(sorted({*changes, *(str(f) for f, _c in intent.get("problems", []))})),
        asked_values=tuple(_shown(f"asked.{name}", request, user, shown) for name in FIELDS if name in changes),
        problems=tuple((str(f), str(c)) for f, c in intent.get("problems", [])),
        user=tuple(_shown(f"user.{name}", request, user, shown) for name in FIELDS) if user else None,
        letter=_shown("letter", request, user, shown),
        letter_chars=len(request.letter_text or ""),
        owner_reply=_shown("owner_reply", request, user, shown),
        owner_reply_chars=len(request.owner_reply or ""),
        events=tuple(EventRow(e.at, e.event, e.actor, _detail(e.detail)) for e in events),
        can_approve=is_open and request.state in WAITING and not by_person,
        can_reject=is_open,
        can_answer=is_open and request.state == RequestState.REVIEW and by_person,
        can_extend=is_open and extension_refusal(session, request, policy, now) is None,
        can_dismiss=is_open and request.state == RequestState.REVIEW and not intent.get("on_receipt")
        and "held_reply" not in intent,
    )


# An event's detail keys whose values are codes, and the codes table's category that names them in words.
DETAIL_CODES = {"reason": "reason", "outcome": "outcome", "fields": "field", "field": "field", "kind": "intent",
                "intents": "intent", "state": "state", "language": "language", "problems": "field:problem"}


def _detail(detail: Mapping[str, object]) -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    return tuple((key, DETAIL_CODES.get(key, ""), tuple(map(str, value)) if isinstance(value, list) else (str(value),))
                 for key, value in detail.items() if value not in (None, [], "", {}))


@dataclass(frozen=True)
class DeadlineRow:
    id: int
    intents: tuple[str, ...]
    state: str
    reason: str | None
    deadline: Deadline
    by_profile: tuple[tuple[str, datetime], ...]  # each profile's own date; the strictest is the deadline


@dataclass(frozen=True)
class DeadlinesPage:
    late: list[DeadlineRow]  # this page's late rows, the most overdue first
    soon: list[DeadlineRow]  # this page's rows due soon, after every late one
    late_count: int  # every late request, counted by the database
    soon_count: int
    previous: str | None
    next: str | None


def deadlines(session: Session, now: datetime, policy: PolicyConfig, within: int = SOON_WORKING_DAYS, *,
              after: Key | None = None, before: Key | None = None, size: int = PAGE_SIZE) -> DeadlinesPage:
    """Open requests that are late, then those due within ``within`` working days, each with its date per
    profile: one page of both in due order (the late ones come first), with the exact count of each."""
    horizon = policy.clock.soon_horizon(now, within)
    page = open_page(session, OPEN_STATES, "due_at", size, until=horizon, after=after, before=before)
    counted = count_open(session, OPEN_STATES, now, until=horizon)
    rows = []
    for r in page.rows:
        pending = pending_intents(r)
        per_profile = tuple(
            (name, min(policy.clock.due_at(k, r.received_at, profile_names=[name]) for k in pending))
            for name in policy.deadline_profile)
        rows.append(DeadlineRow(r.id or 0, _intents(r), r.state, r.reason, deadline(r.due_at, now, policy),
                                per_profile))
    return DeadlinesPage([r for r in rows if r.deadline.overdue], [r for r in rows if not r.deadline.overdue],
                         counted.overdue, counted.total - counted.overdue, _token(page.previous),
                         _token(page.next))


# The report's chart


@dataclass(frozen=True)
class Bar:
    x: int
    y: int
    width: int
    height: int
    intent: str
    count: int


@dataclass(frozen=True)
class WeeklyChart:
    weeks: tuple[date, ...]  # each week's Monday
    intents: tuple[str, ...]
    counts: Mapping[tuple[date, str], int]
    bars: tuple[Bar, ...]
    labels: tuple[tuple[int, date], ...]  # x of each week's label
    width: int
    height: int
    most: int  # the tallest week's total, the scale's top


CHART_HEIGHT, BAR_WIDTH, GAP, LABEL_ROOM = 160, 48, 24, 20


def weekly_chart(requests: Iterable[Request], timezone: str, first: date, after: date) -> WeeklyChart:
    """Stacked bars: requests received per week (Monday to Sunday, local time) by intent (pure).

    Every week that touches the month has its bar, empty or not; a mixed letter counts once per intent.
    """
    zone = ZoneInfo(timezone)
    return weekly_chart_of(Counter(key for r in requests
                                   for key in received_as(r.kind, r.intents, r.received_at.astimezone(zone).date())),
                           first, after)


def weekly_chart_of(received: Mapping[tuple[date, str], int], first: date, after: date) -> WeeklyChart:
    """:func:`weekly_chart` from the requests received per local day by intent (as the report's tally counts
    them)."""
    monday = first - timedelta(days=first.weekday())
    weeks: list[date] = []
    while monday < after:
        weeks.append(monday)
        monday += timedelta(days=7)
    counts: Counter[tuple[date, str]] = Counter()
    for (day, intent), count in received.items():
        counts[(day - timedelta(days=day.weekday()), intent)] += count
    intents = tuple(sorted({intent for _, intent in counts}))
    totals = [sum(counts[(w, i)] for i in intents) for w in weeks]
    most = max(totals, default=0)
    bars: list[Bar] = []
    for index, week in enumerate(weeks):
        x = GAP + index * (BAR_WIDTH + GAP)
        top = CHART_HEIGHT
        for intent in intents:
            count = counts[(week, intent)]
            if not count:
                continue
            height = max(1, round(CHART_HEIGHT * count / most))
            top -= height
            bars.append(Bar(x, top, BAR_WIDTH, height, intent, count))
    labels = tuple((GAP + i * (BAR_WIDTH + GAP), w) for i, w in enumerate(weeks))
    return WeeklyChart(tuple(weeks), intents, dict(counts), tuple(bars), labels,
                       GAP + len(weeks) * (BAR_WIDTH + GAP), CHART_HEIGHT + LABEL_ROOM, most)


@dataclass(frozen=True)
class ReportPage:
    month: str
    report: MonthReport
    chart: WeeklyChart


@dataclass(frozen=True)
class HeldRow:
    """A hold as the deadlines page lists it: the address masked, the ground, its end and the erasure date."""

    address: str
    kind: str
    ground: str
    until: datetime | None
    erasure_due_at: datetime | None


def holds(session: Session) -> list[HeldRow]:
    from dsr_mailbot.store.holds import held_people

    return [HeldRow(mask("email", p.hold.email), p.hold.kind, p.hold.ground, p.hold.until, p.erasure_due_at)
            for p in held_people(session)]
