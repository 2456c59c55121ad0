"""Requests that wait for the data map's systems: answered once every system has done its part.

A request waits in ``carrying_out`` for its actions (``lifecycle/systems.py``):
the lookups a decision waits for, or what the request asked of each system.
Once none is pending, its decision is made with what the lookups found, or
its held reply is queued — an access answer with what each system holds —
and it closes.  An action that failed for good has sent its request to
review already (``actions.py``); nothing is released then.  Each request in
a transaction of its own, each isolated: the store alone is read and written
here, so one failing request never holds up another.
"""

from __future__ import annotations

import logging

from sqlmodel import col, select

from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.lifecycle import set_aside
from dsr_mailbot.lifecycle.intake import decide_after_lookup
from dsr_mailbot.lifecycle.systems import DEFERRED, HELD_REPLY, release
from dsr_mailbot.pipeline.services import Services
from dsr_mailbot.store.models import ActionState, Request, RequestState, SystemAction

log = logging.getLogger("dsr_mailbot")


def release_waiting(services: Services) -> int:
    """Decide or answer every request whose systems have all done their part; how many moved on."""
    with services.store.transaction() as session:
        waiting = session.exec(select(Request.id).where(Request.state == RequestState.CARRYING_OUT)
                               .order_by(col(Request.id))).all()
    released = 0
    for request_id in waiting:
        assert request_id is not None
        try:
            released += _release(services, request_id)
        except Exception as exc:  # one request's failure must not hold up the others, nor hold it up for ever
            if isinstance(exc, DsrMailbotError) and exc.temporary:
                raise
            log.error("request %s could not be released (%s); set aside for review", request_id,
                      type(exc).__name__)
            _set_aside(services, request_id, f"release:{type(exc).__name__}")
    return released


def _set_aside(services: Services, request_id: int, reason: str) -> None:
    with services.store.transaction() as session:
        request = session.get(Request, request_id)
        if request is not None and request.state == RequestState.CARRYING_OUT:
            set_aside(services.context(), session, request, reason)


def _release(services: Services, request_id: int) -> int:
    ctx = services.context()
    with services.store.transaction() as session:
        request = session.exec(select(Request).where(Request.id == request_id)
                               .with_for_update(skip_locked=True)).first()
        if request is None or request.state != RequestState.CARRYING_OUT:
            return 0  # released by another worker meanwhile
        intent = request.intent or {}
        # What the answer waits for: not an erasure (due at its date), nor, once decided, the lookups (an operator
        # may have decided without one that failed).
        skipped = {"erase"} if DEFERRED in intent else {"erase", "lookup"}
        actions = session.exec(select(SystemAction).where(SystemAction.request_id == request_id,
                                                          col(SystemAction.action).not_in(skipped))).all()
        if any(a.state != ActionState.DONE for a in actions):
            return 0  # still pending (or failed: its request went to review)
        if DEFERRED in intent:
            found = any(a.action == "lookup" and a.result.get("found") for a in actions)
            decide_after_lookup(ctx, session, request, found)
        elif HELD_REPLY in intent:
            release(ctx, session, request, actions)
        else:
            return 0
        log.info("request %s: the systems have done their part; %s", request_id, request.state)
        return 1
