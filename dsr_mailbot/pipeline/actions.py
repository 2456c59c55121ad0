"""Carrying out the data map's actions (``system_actions``): after the decision commits, retried until done.

Like the outbox.  Each due action is claimed in a short transaction (one
more attempt, and a lease: ``next_try_at`` moves :data:`LEASE` ahead, so no
other worker takes it meanwhile), carried out on its system outside any
transaction of the store, then recorded.  What it did is recorded *before*
the system commits (``before_commit``), so a crash between the system's
commit and the bot's record re-runs it harmlessly — it finds nothing left
to do — and the first counts stay.

- done: ``payload`` (the person's address and values) is cleared, ``result``
  keeps the counts, an audit event says which system did what;
- the system is down, times out or asks to wait: retried with backoff (at
  least its ``Retry-After``) until its ``give_up_after_hours`` after the action
  became due; then, like a refusal:
- refused for good (an HTTP 4xx, a constraint): the action fails, its payload
  is cleared, and its request goes to review naming the system;
- a wrong mapping (a table or column missing) stops the run: exit 78.

One system down never stops the others, nor the mailbox pass: each action
is isolated.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from threading import Event
from typing import Any

from sqlmodel import Session, col, select

from dsr_mailbot.config.datamap import HttpSystem, SqlSystem
from dsr_mailbot.errors import ConfigError, DsrMailbotError, SystemRefused, SystemUnavailable
from dsr_mailbot.faults import crash_point
from dsr_mailbot.lifecycle import set_aside
from dsr_mailbot.lifecycle.systems import readdress
from dsr_mailbot.pipeline.lookup import check_mappings
from dsr_mailbot.pipeline.services import Services
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.models import FINAL_STATES, ActionState, Request, RequestState, SystemAction
from dsr_mailbot.systems.protocol import Done

log = logging.getLogger("dsr_mailbot")
LEASE = timedelta(minutes=5)  # longer than any system's timeout: a claimed action is not claimed twice
RETRY_BASE_SECONDS, RETRY_CAP_SECONDS = 30.0, 3600.0
BATCH = 100


def retry_delay(attempts: int, retry_after: float | None, draw: float | None = None) -> timedelta:
    """Exponential backoff with jitter from 30 s to an hour, never sooner than the system's ``Retry-After``."""
    ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0))
    jittered = ceiling / 2 + (random.random() if draw is None else draw) * ceiling / 2
    return timedelta(seconds=max(jittered, retry_after or 0.0))


@dataclass
class ActionsRun:
    done: int = 0
    retried: int = 0
    failed: int = 0
    unavailable: set[str] = field(default_factory=set)  # the systems that could not be reached


@dataclass(frozen=True)
class _Claimed:
    id: int
    request_id: int
    system: str
    action: str
    key: str
    payload: dict[str, Any]
    due_at: datetime
    attempts: int


def run_actions(services: Services, stop: Event | None = None) -> ActionsRun:
    """Carry out every due action, each isolated; a wrong mapping stops the run (ConfigError, exit 78)."""
    run = ActionsRun()
    now = services.clock()
    with services.store.transaction() as session:
        due = session.exec(select(SystemAction.id).where(SystemAction.state == ActionState.PENDING,
                                                         col(SystemAction.next_try_at) <= now)
                           .order_by(col(SystemAction.next_try_at), col(SystemAction.id)).limit(BATCH)).all()
    unchecked = _check_mappings(services) if due else set()
    for action_id in due:
        if stop is not None and stop.is_set():
            break
        assert action_id is not None
        claimed = _claim(services, action_id)
        if claimed is not None:
            _carry_out(services, claimed, run, unchecked)
    return run


def _check_mappings(services: Services) -> set[str]:
    """Before the first action changes anything anywhere: every pending action's system is in the data map, and
    every SQL system's tables are read again (the shop may have changed them since the last run).

    A wrong mapping raises (exit 78), leaving every action as it is.  Returns the systems that could not be
    reached to be checked: their actions wait for a run that can check them first.
    """
    names = {s.name for s in services.config.external_systems}
    with services.store.transaction() as session:
        pending = set(session.exec(select(SystemAction.system).where(SystemAction.state == ActionState.PENDING)
                                   .distinct()).all())
    if missing := sorted(pending - names):
        raise ConfigError(f"[[systems]]: actions wait for {', '.join(repr(m) for m in missing)}, which the data "
                          "map no longer lists; put the system back (or its old name) to let them finish")
    return check_mappings(services)


def _claim(services: Services, action_id: int) -> _Claimed | None:
    now = services.clock()
    with services.store.transaction() as session:
        row = session.exec(select(SystemAction).where(SystemAction.id == action_id)
                           .with_for_update(skip_locked=True)).first()
        if row is None or row.state != ActionState.PENDING or row.next_try_at > now:
            return None  # another worker has it, or did it
        row.attempts += 1
        row.next_try_at = now + LEASE
        session.add(row)
        assert row.id is not None
        return _Claimed(row.id, row.request_id, row.system, row.action, row.key, dict(row.payload), row.due_at,
                        row.attempts)


def _carry_out(services: Services, claimed: _Claimed, run: ActionsRun, unchecked: set[str]) -> None:
    system = next((s for s in services.config.external_systems if s.name == claimed.system), None)
    try:
        if system is None:
            raise SystemRefused(f'system "{claimed.system}" is no longer in the data map')
        if system.name in unchecked:
            raise SystemUnavailable(f'system "{system.name}": its tables could not be checked this run')
        if not claimed.payload.get("email"):
            raise SystemRefused(f'system "{system.name}": an action without an address')
        done, answer = _perform(services, system, claimed)
        crash_point("after_system_action", claimed.key)  # the system committed; the bot has not recorded it
    except SystemUnavailable as exc:
        give_up = timedelta(hours=system.give_up_after_hours if system is not None else 0)
        if services.clock() - claimed.due_at < give_up:
            _retry(services, claimed, exc)
            run.retried += 1
            run.unavailable.add(claimed.system)
            return
        _fail(services, claimed, "unavailable", f"system_unavailable:{claimed.system}", exc)
        run.failed += 1
        return
    except SystemRefused as exc:
        _fail(services, claimed, "refused", f"system_refused:{claimed.system}", exc)
        run.failed += 1
        return
    except (ConfigError, KeyboardInterrupt):
        raise  # a wrong mapping: the bot stops with exit 78 before it changes anything else
    except DsrMailbotError as exc:
        if exc.temporary:
            raise  # the store itself is down: the pass stops, the lease runs out, the action is taken again
        _fail(services, claimed, "error", f"system_error:{claimed.system}", exc)
        run.failed += 1
        return
    except Exception as exc:  # a bug or a library surprise with one action: it fails, the others go on
        _fail(services, claimed, "error", f"system_error:{claimed.system}", exc)
        run.failed += 1
        return
    _done(services, claimed, done, answer)
    run.done += 1


def _perform(services: Services, system: SqlSystem | HttpSystem, claimed: _Claimed) -> tuple[Done, dict[str, Any]]:
    """Do the action; what it did, and what a lookup or an access found (kept until the reply is queued)."""
    connector = services.connector(system)
    email = str(claimed.payload.get("email", ""))

    def record_first(done: Done) -> None:  # inside the system's transaction, before it commits
        with services.store.transaction() as session:
            row = session.get(SystemAction, claimed.id)
            # The first counts, or those of an attempt that did something (an earlier one may have rolled back).
            if row is not None and (not row.result or done.deleted or done.updated):
                row.result = {**_counts(done), "prepared": True}
                session.add(row)

    match claimed.action:
        case "lookup":
            return Done(), {"found": bool(connector.lookup(email))}
        case "access":
            return Done(), {"records": [{"label": r.label, "fields": r.fields} for r in connector.access(email)]}
        case "update":
            return connector.update(email, dict(claimed.payload.get("changes", {})), claimed.key, record_first), {}
        case "optout":
            return connector.optout(email, claimed.key, record_first), {}
        case "withdraw":
            return connector.withdraw(email, claimed.key, record_first), {}
        case "erase":
            return connector.erase(email, claimed.key, record_first), {}
        case _:
            raise SystemRefused(f'system "{claimed.system}": no such action {claimed.action!r}')


def _counts(done: Done) -> dict[str, Any]:
    return {"deleted": done.deleted, "updated": done.updated,
            "tables": [{"table": t.table, "deleted": t.deleted, "updated": t.updated, "cleared": list(t.cleared)}
                       for t in done.tables]}


def _done(services: Services, claimed: _Claimed, done: Done, answer: dict[str, Any]) -> None:
    now = services.clock()
    with services.store.transaction() as session:
        row = _held(session, claimed)
        if row is None:
            return
        first = row.result if row.result.get("prepared") else None
        # A re-run after a crash finds nothing left to do: the counts recorded before the first commit stand.
        kept = first if first is not None and not (done.deleted or done.updated) else _counts(done)
        row.result = {**{k: v for k, v in kept.items() if k != "prepared"}, **answer}
        # An erasure keeps the address its notice of destruction goes to, until the act is written
        # (systems_erasure.py); anything else forgets its values once done.
        if claimed.action != "erase":
            row.payload = {}
        row.state, row.done_at, row.last_error = ActionState.DONE, now, None
        session.add(row)
        old, new = claimed.payload.get("email"), dict(claimed.payload.get("changes") or {}).get("email")
        if claimed.action == "update" and isinstance(old, str) and isinstance(new, str) and new != old:
            readdress(session, claimed.system, old, new, now)  # this system knows the person by the new address now
        request = session.get(Request, claimed.request_id)
        record_event(session, "system_action_done", request_id=claimed.request_id,
                     subject_ref=request.subject_ref if request else None, at=now, system=claimed.system,
                     action=claimed.action, deleted=row.result["deleted"], updated=row.result["updated"],
                     attempts=claimed.attempts)


def _retry(services: Services, claimed: _Claimed, exc: SystemUnavailable) -> None:
    now = services.clock()
    with services.store.transaction() as session:
        row = _held(session, claimed)
        if row is None:
            return
        row.next_try_at = now + retry_delay(claimed.attempts, exc.retry_after)
        row.last_error = _error_class(exc)
        session.add(row)
    log.info("system %s unavailable for action %s (%s); retried at %s", claimed.system, claimed.id,
             _error_class(exc), row.next_try_at.isoformat(timespec="seconds"))


def _fail(services: Services, claimed: _Claimed, kind: str, reason: str, exc: BaseException) -> None:
    now = services.clock()
    with services.store.transaction() as session:
        row = _held(session, claimed)
        if row is None:
            return
        request = session.get(Request, claimed.request_id)
        row.state, row.done_at, row.last_error = ActionState.FAILED, now, _error_class(exc)
        if (request is None or request.state in FINAL_STATES) and claimed.action != "erase":
            # Nobody will retry it; an open request keeps it for an operator's approval, and an erasure its
            # address until the act is written (systems_erasure.py), which names the system failed.
            row.payload = {}
        session.add(row)
        record_event(session, "system_action_failed", request_id=claimed.request_id,
                     subject_ref=request.subject_ref if request else None, at=now, system=claimed.system,
                     action=claimed.action, failure=kind, error=_error_class(exc), attempts=claimed.attempts)
        _to_review(services, session, request, reason)
    log.warning("action %s on system %s failed (%s, %s); its request goes to review", claimed.id, claimed.system,
                kind, _error_class(exc))


def _held(session: Session, claimed: _Claimed) -> SystemAction | None:
    """The action, if it is still pending under this worker's claim.  A slow action whose lease ran out was
    claimed again (one more attempt): the later claim records it, never both."""
    row = session.get(SystemAction, claimed.id)
    return row if row is not None and row.state == ActionState.PENDING and row.attempts == claimed.attempts else None


def _to_review(services: Services, session: Session, request: Request | None, reason: str) -> None:
    """An open request waits for a person; a closed one keeps its outcome (the failure is in the audit trail).

    One that waits for its owner's yes (an opt-out carried out on receipt failed) goes on waiting: the yes
    writes the failed action afresh, and a second failure sends it to review then.
    """
    if request is not None and request.state not in (*FINAL_STATES, RequestState.REVIEW,
                                                       RequestState.AWAITING_CONFIRMATION):
        set_aside(services.context(), session, request, reason)


def _error_class(exc: BaseException) -> str:
    """What the record may say of an error: its class, and the HTTP status a system answered with."""
    status = getattr(exc, "status", None)
    return f"{type(exc).__name__}{f' {status}' if status else ''}"[:100]
