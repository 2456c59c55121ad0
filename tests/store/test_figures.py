"""What monitoring and reports count, on every backend: destructions past their date, wherever they are to be done."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dsr_mailbot.store.database import Store
from dsr_mailbot.store.figures import erasures_due_by, month_erasures, store_figures
from dsr_mailbot.store.models import ActionState, Request, SystemAction, User

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def withdrawal(session: object, n: int, user_id: int | None, received: datetime,
               intents: tuple[str, ...] = ("withdraw",)) -> Request:
    request = Request(message_ref=f"m{n}", source="imap", uidvalidity=1, uid=n, kind=intents[0],
                      intents=list(intents), state="completed", language="ru", received_at=received,
                      due_at=received, user_id=user_id, subject_ref=f"ref{n}")
    session.add(request)  # type: ignore[attr-defined]
    session.flush()  # type: ignore[attr-defined]
    return request


def erase(request: Request, system: str, state: ActionState, due: datetime) -> SystemAction:
    assert request.id is not None
    return SystemAction(request_id=request.id, system=system, action="erase", state=state, due_at=due,
                        next_try_at=due, payload={}, result={})


def test_destructions_past_their_date_are_found_in_the_store_and_in_every_system(store: Store) -> None:
    with store.transaction() as session:
        late_user = User(email="late@example.ru", erasure_due_at=NOW - timedelta(days=1))
        soon_user = User(email="soon@example.ru", erasure_due_at=NOW + timedelta(days=1))
        session.add_all([late_user, soon_user])
        session.flush()
        # The same person's update, then withdrawal, in one letter: the withdrawal is named.
        mixed = withdrawal(session, 1, late_user.id, NOW - timedelta(days=31), ("update", "withdraw"))
        other = withdrawal(session, 2, None, NOW - timedelta(days=31))
        session.add_all([erase(other, "Shop", ActionState.FAILED, NOW - timedelta(hours=2)),
                         erase(other, "Mailer", ActionState.DONE, NOW - timedelta(hours=2)),  # done: not late
                         erase(other, "CRM", ActionState.REPORTED, NOW - timedelta(hours=2))])
    with store.transaction() as session:
        late = erasures_due_by(session, NOW, "bot", strictly=True)
        soon = erasures_due_by(session, NOW + timedelta(days=2), "bot")
        figures = store_figures(session, NOW)
    assert [(e.request_id, e.where) for e in late] == [(mixed.id, "bot"), (other.id, "Shop")]
    assert [(e.request_id, e.where) for e in soon] == [(mixed.id, "bot"), (other.id, "Shop"), (None, "bot")]
    assert figures.erasures_overdue == 2


def test_a_months_report_counts_only_the_destructions_of_that_months_withdrawals(store: Store) -> None:
    with store.transaction() as session:
        person = User(email="p@example.ru", erasure_due_at=NOW + timedelta(days=3))
        session.add(person)
        session.flush()
        this_month = withdrawal(session, 1, person.id, NOW - timedelta(days=27))
        system_only = withdrawal(session, 2, None, NOW - timedelta(days=40))
        last_month = withdrawal(session, 3, None, NOW - timedelta(days=70))
        session.add_all([erase(system_only, "Shop", ActionState.PENDING, NOW - timedelta(days=10)),
                         erase(last_month, "Shop", ActionState.PENDING, NOW - timedelta(days=40))])
    with store.transaction() as session:
        assert month_erasures(session, [this_month, system_only], NOW) == (2, 1)
        assert month_erasures(session, [this_month], NOW) == (1, 0)
        assert month_erasures(session, [], NOW) == (0, 0)
