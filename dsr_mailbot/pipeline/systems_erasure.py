"""An erasure across the data map: once every system has done its part, the act of destruction and the notice.

Each system's erasure is an action (``pipeline/actions.py``) due at the
erasure date; it records what it did, table by table, before the system
commits.  Once no erasure of the request is pending, this writes the act —
one per withdrawal, the built-in store's part and each system's side by
side, from the counts recorded when each ran, so that a re-run after a
crash keeps the first counts — then, in one transaction, queues the notice
of destruction naming the systems, forgets the bot's own copies of someone
only the shop's systems knew, and marks the actions reported (their last
copy of the address goes).  Every step can run again: the act is rewritten
the same, and the notice is queued once.

The built-in store goes first: while the person is still in the bot's own
``users`` table and due, the act waits for that erasure (``erasure.py``),
which writes its part and leaves the notice to this one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from sqlmodel import Session, col, select

from dsr_mailbot.config import Config
from dsr_mailbot.config.datamap import SqlSystem
from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.lifecycle.base import KEPT_ON_CLOSE
from dsr_mailbot.lifecycle.systems import transient_person
from dsr_mailbot.pipeline.erasure import DESTRUCTION_NOTICE, act_operator
from dsr_mailbot.pipeline.services import Services
from dsr_mailbot.replies.outbox import queue_reply
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.store.acts import Act, ActSystem, ActTable, keep_act, read_act
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import find_user_by_email
from dsr_mailbot.store.erasure import erase_user
from dsr_mailbot.store.models import ActionState, OutboxMessage, OutboxState, Request, RequestState, SystemAction

log = logging.getLogger("dsr_mailbot")

NO_NAME = "(not held by the bot's own store; see the systems below)"


def report_erasures(services: Services) -> int:
    """Write the act (and queue the notice) of every request whose erasure every system has done or failed."""
    with services.store.transaction() as session:
        request_ids = sorted(set(session.exec(select(SystemAction.request_id).where(
            SystemAction.action == "erase",
            col(SystemAction.state).in_([ActionState.DONE, ActionState.FAILED]))).all()))
    reported = 0
    for request_id in request_ids:
        try:
            reported += _report(services, request_id)
        except Exception as exc:  # one person's act must not hold up the others'
            if isinstance(exc, DsrMailbotError) and exc.temporary:
                raise
            log.warning("the act of request %s could not be written: %s", request_id, type(exc).__name__)
    return reported


def _report(services: Services, request_id: int) -> int:
    now = services.clock()
    with services.store.transaction() as session:
        rows = session.exec(select(SystemAction).where(SystemAction.request_id == request_id,
                                                       SystemAction.action == "erase")
                            .order_by(col(SystemAction.id))).all()
        if any(r.state == ActionState.PENDING for r in rows):
            return 0  # a system has not done its part yet
        finished = [r for r in rows if r.state in (ActionState.DONE, ActionState.FAILED)]
        email = next((str(r.payload["email"]) for r in finished if r.payload.get("email")), None)
        if not finished:
            return 0
        if email is not None:
            user = find_user_by_email(session, email)
            if user is not None and user.erasure_due_at is not None and user.erasure_due_at <= now:
                return 0  # the built-in store's erasure goes first and writes its part of the act
            if session.exec(select(OutboxMessage.id).where(OutboxMessage.recipient == email,
                                                           OutboxMessage.state == OutboxState.QUEUED)).first():
                return 0  # a reply to them is still queued (no erasure delay: the withdrawal's answer): sent first
        request = session.get(Request, request_id)
        if request is None or request.state == RequestState.CARRYING_OUT:
            return 0  # its answer waits for another system: the person hears of the withdrawal first
    return _write_and_notify(services, request_id, email)


def _write_and_notify(services: Services, request_id: int, email: str | None) -> int:
    """The act, the notice and the scrub, in one transaction holding the request's erasure rows (so that a second
    worker, which finds them taken or reported, writes nothing: the act is never rewritten with other figures)."""
    cfg, ctx = services.config, services.context()
    scrubbed: list[str] = []
    with services.store.transaction() as session:
        rows = session.exec(select(SystemAction).where(
            SystemAction.request_id == request_id, SystemAction.action == "erase",
            col(SystemAction.state).in_([ActionState.DONE, ActionState.FAILED]))
            .order_by(col(SystemAction.id)).with_for_update(skip_locked=True)).all()
        request = session.get(Request, request_id)
        if not rows or request is None:
            return 0  # reported by another worker meanwhile
        parts = tuple(_part(r) for r in rows)
        # A system that did not erase: the act says so, and the person is not told their data are gone.
        everywhere = all(r.state == ActionState.DONE for r in rows) and email is not None
        act = read_act(cfg.policy.acts_dir, str(request_id))
        # The bot's own erasure wrote its part first; an act of ours alone is this step's own, from a crash.
        in_builtin = act is not None and act.subject_full_name != NO_NAME
        if act is None:
            act = Act(act_id=str(request_id), made_at=ctx.now.isoformat(),
                      system_name=", ".join(p.name for p in parts),
                      subject_full_name=NO_NAME, subject_ref=request.subject_ref, categories=_categories(cfg, parts),
                      reason="withdrawal of consent to the processing of personal data (152-FZ Art. 21 ч.5)",
                      request_id=request_id, request_received_at=request.received_at.isoformat(),
                      method="each system's own erasure, as its data map entry says (rows deleted, or columns "
                             "overwritten)", processed_messages_expunged=0, ordinary_messages_left_in_inbox=0,
                      notice="queued", operator=act_operator(cfg.policy))
        # Written before the commit: a crash between the two leaves the rows unreported, and the next run writes
        # the same act again.
        why = "systems" if in_builtin else "rewritten" if act.systems else "made"
        keep_act(session, cfg.policy.acts_dir, replace(act, systems=parts, notice="queued" if everywhere else "none"),
                 why)
        queued = session.exec(select(OutboxMessage.message_id).where(
            OutboxMessage.request_id == request_id, OutboxMessage.purpose == DESTRUCTION_NOTICE)).first()
        kept = [queued] if queued else []
        if not queued and everywhere and email is not None:
            own = cfg.builtin_label if in_builtin else None
            destroyed_in = (*([own] if own else []), *(p.name for p in parts))
            kept.append(queue_reply(
                session, config=cfg, keyring=services.keyring, renderer=services.renderer, request=request,
                template="data_destroyed", purpose=DESTRUCTION_NOTICE, recipient=email,
                content=ReplyContent(destroyed_in=destroyed_in,
                                     expunged=in_builtin and act.processed_messages_expunged > 0,
                                     left_in_inbox=act.ordinary_messages_left_in_inbox if in_builtin else 0),
                now=ctx.now, for_verified=True))
            session.flush()
        if not in_builtin and email is not None:
            scrubbed = _forget_copies(services, session, rows, email, kept, request_id)
        for row in rows:
            row.state, row.payload = ActionState.REPORTED, {}
            session.add(row)
        record_event(session, "erasure_reported", request_id=request_id, subject_ref=request.subject_ref,
                     at=ctx.now, systems=[p.name for p in parts], outcomes=[p.outcome for p in parts])
    services.transport.forget(scrubbed)
    if not everywhere:
        log.error("request %s: a system failed its erasure; the act names it, and no notice was sent", request_id)
    return 1


def _forget_copies(services: Services, session: Session, rows: Sequence[SystemAction], email: str,
                   kept: list[str], request_id: int) -> list[str]:
    """Someone only the shop's systems knew: the bot's own copies of their letters and answers go too, under every
    address they had, each up to the time it stopped being theirs; every notice of destruction to them stays
    until sent (another withdrawal's, queued before this one)."""
    addresses: dict[str, datetime | None] = {email: None}
    for old, until in (pair for r in rows for pair in r.payload.get("formerly", [])):
        addresses.setdefault(str(old), datetime.fromisoformat(str(until)))
    for address in addresses:
        kept += session.exec(select(OutboxMessage.message_id).where(
            OutboxMessage.recipient == address, OutboxMessage.purpose == DESTRUCTION_NOTICE)).all()
    scrubbed: list[str] = []
    for address, until in addresses.items():
        scrubbed += erase_user(session, services.keyring, transient_person(address), now=services.clock(),
                               actions_kept=KEPT_ON_CLOSE, keep_outbox=kept, act=str(request_id),
                               received_before=until)
    return scrubbed


def _part(row: SystemAction) -> ActSystem:
    result = row.result or {}
    tables = tuple(ActTable(str(t["table"]), int(t.get("deleted", 0)), int(t.get("updated", 0)),
                            tuple(str(c) for c in t.get("cleared", ()))) for t in result.get("tables", ()))
    return ActSystem(row.system, "done" if row.state == ActionState.DONE else "failed",
                     int(result.get("deleted", 0)), int(result.get("updated", 0)), tables)


def _categories(config: Config, parts: tuple[ActSystem, ...]) -> tuple[str, ...]:
    """The categories the systems actually held and destroyed: the bot's fields mapped by the tables where rows
    were deleted or cleared (an HTTP system reports no tables: "as each system reports")."""
    touched = {(p.name, t.table) for p in parts if p.outcome == "done" for t in p.tables if t.deleted or t.updated}
    fields = {str(name) for s in config.data_map if isinstance(s, SqlSystem)
              for t in s.tables if t.erase is not None and (config.system_label(s), t.table) in touched
              for name in t.fields if not name.endswith("_consent")}
    order = ("email", "phone", "surname", "first_name", "patronymic")
    return tuple(f for f in order if f in fields) or ("as each system reports",)
