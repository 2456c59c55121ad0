"""Recording a message before any work on it: received, ignored by the loop rules, or set aside."""

from __future__ import annotations

from sqlmodel import Session

from dsr_mailbot.lifecycle.base import Arrival, Context, new_request, transition
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.models import (
    Request,
    RequestState,
)


def record_ignored(ctx: Context, session: Session, arrival: Arrival, headers: Headers, kind: str, language: str,
                   reason: str) -> Request:
    """Mail that looks like a request or a confirmation but must never be answered."""
    request = new_request(ctx, arrival, headers, kind, language)
    session.add(request)
    session.flush()
    transition(ctx, session, request, RequestState.IGNORED, reason=reason)
    return request


def record_received(ctx: Context, session: Session, arrival: Arrival, headers: Headers, kind: str,
                    language: str) -> Request:
    """The first transition: the message is ours to handle.  Committed before any work on it.

    Work on it follows at once, so its first attempt is counted here (see ``pipeline.MAX_ATTEMPTS``).
    """
    request = new_request(ctx, arrival, headers, kind, language)
    request.attempts = 1
    session.add(request)
    session.flush()
    record_event(session, "request_received", request_id=request.id, subject_ref=request.subject_ref, at=ctx.now,
                 kind=kind)
    return request


def set_aside(ctx: Context, session: Session, request: Request, reason: str) -> None:
    """A message the bot failed on: to review, unanswered, with the failing stage as the reason."""
    transition(ctx, session, request, RequestState.REVIEW, reason=reason[:500])
