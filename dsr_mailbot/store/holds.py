"""Holds: the operator keeps a person's data after a withdrawal, blocked or on another legal ground, until a date.

152-FZ Art. 21 ч.5–6 and Art. 9 ч.2, and KZ 94-V Art. 8 p.2, allow it: an
unfinished order, accounting duties.  A hold is placed with ``users hold``
before or after the withdrawal: a withdrawal under it stops marketing and
every processing the hold does not cover, and the person's data (in the
store and in every system of the data map) are destroyed at the hold's end
(``block``: at most ``[policy] max_block_days`` after the withdrawal).  A
hold placed or released after the withdrawal moves the erasure already
scheduled.  The hold itself names the person, so it goes with their erasure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.intents.apply import HoldFacts
from dsr_mailbot.intents.deadlines import held_erasure_due_at
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import pending_actions
from dsr_mailbot.store.models import Hold, HoldKind, User
from dsr_mailbot.systems.protocol import SystemHold


@dataclass(frozen=True)
class HeldPerson:
    """A hold as the console and ``users holds`` show it: whose, on what ground, and when the data go."""

    hold: Hold
    erasure_due_at: datetime | None  # set once they withdrew


def hold_of(session: Session, email: str) -> HoldFacts | None:
    address = normalise_address(email) or email
    row = session.exec(select(Hold).where(Hold.email == address)).first()
    return HoldFacts(row.kind, row.ground, row.until) if row is not None else None


def place_hold(session: Session, email: str, *, kind: HoldKind, ground: str, until: datetime | None, actor: str,
               now: datetime, subject_ref: str, max_block_days: int) -> datetime | None:
    """Place (or replace) the hold; move an erasure already scheduled; return the erasure date it sets, if any."""
    if kind == HoldKind.RETAIN and until is None:
        raise ValueError("a retain hold needs --until: the date its ground ends")
    row = session.exec(select(Hold).where(Hold.email == email)).first() or Hold(email=email, ground=ground,
                                                                                actor=actor)
    row.kind, row.ground, row.until, row.actor, row.created_at = kind, ground, until, actor, now
    session.add(row)
    user = session.exec(select(User).where(User.email == email)).first()
    moved = None
    if user is not None and user.erasure_due_at is not None and user.consent_withdrawn_at is not None:
        moved = held_erasure_due_at(kind, until, user.consent_withdrawn_at, max_block_days)
        user.erasure_due_at = moved
        session.add(user)
    for action in pending_actions(session, "erase", email):
        # The systems' erasure follows: from the withdrawal's receipt, like the store's.
        action.due_at = action.next_try_at = moved or held_erasure_due_at(kind, until, action.created_at,
                                                                          max_block_days)
        session.add(action)
    record_event(session, "hold_placed", subject_ref=subject_ref, actor=actor, at=now, kind=str(kind),
                 until=until.isoformat() if until else None, erasure_moved=moved is not None)
    return moved


def place_system_hold(session: Session, email: str, system: str, hold: SystemHold, *, now: datetime,
                      subject_ref: str, max_block_days: int, timezone: str) -> None:
    """A system's lookup answered with a hold: placed as the operator's would be, unless the operator placed one."""
    until = hold.until
    if isinstance(until, date) and not isinstance(until, datetime):
        until = datetime.combine(until, time(23, 59, 59), ZoneInfo(timezone))
    row = session.exec(select(Hold).where(Hold.email == email)).first()
    if row is not None and not row.actor.startswith("system:"):
        return  # the operator's own hold stands
    actor = f"system:{system}"
    if row is not None and (row.kind, row.ground, row.until, row.actor) == (hold.kind, hold.ground, until, actor):
        return  # the same hold, told again with each letter
    place_hold(session, email, kind=HoldKind(hold.kind), ground=hold.ground, until=until, actor=actor, now=now,
               subject_ref=subject_ref, max_block_days=max_block_days)


def release_hold(session: Session, email: str, *, actor: str, now: datetime, subject_ref: str) -> bool:
    """End the hold: data a withdrawal left under it are due for destruction now.  False when none was held."""
    row = session.exec(select(Hold).where(Hold.email == email)).first()
    if row is None:
        return False
    session.delete(row)
    user = session.exec(select(User).where(User.email == email)).first()
    if user is not None and user.erasure_due_at is not None and user.erasure_due_at > now:
        user.erasure_due_at = now
        session.add(user)
    for action in pending_actions(session, "erase", email):
        if action.due_at > now:
            action.due_at = action.next_try_at = now
            session.add(action)
    record_event(session, "hold_released", subject_ref=subject_ref, actor=actor, at=now)
    return True


def move_hold(session: Session, old: str, new: str) -> None:
    """The person's address changed (an update): their hold follows it."""
    row = session.exec(select(Hold).where(Hold.email == old)).first()
    if row is not None and session.exec(select(Hold).where(Hold.email == new)).first() is None:
        row.email = new
        session.add(row)


def forget_ended_holds(session: Session, now: datetime) -> int:
    """Holds past their end whose person has no erasure waiting (never withdrew): nothing left to hold; they go,
    as they name the person."""
    ended = session.exec(select(Hold).where(col(Hold.until).is_not(None), col(Hold.until) < now)).all()
    waiting = {email for (email,) in session.execute(select(col(User.email)).where(
        col(User.email).in_([h.email for h in ended]), col(User.erasure_due_at).is_not(None))).all()
    } if ended else set()
    gone = [h for h in ended if h.email not in waiting]
    for hold in gone:
        session.delete(hold)
    return len(gone)


def forget_hold(session: Session, email: str) -> None:
    """The person's data are destroyed: their hold goes with them."""
    row = session.exec(select(Hold).where(Hold.email == email)).first()
    if row is not None:
        session.delete(row)


def held_people(session: Session) -> list[HeldPerson]:
    holds = session.exec(select(Hold).order_by(col(Hold.id))).all()
    dates = dict(session.execute(select(col(User.email), col(User.erasure_due_at)).where(
        col(User.email).in_([h.email for h in holds]))).all()) if holds else {}
    return [HeldPerson(h, dates.get(h.email)) for h in holds]
