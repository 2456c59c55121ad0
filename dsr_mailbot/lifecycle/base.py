"""What every state change shares: the context, the request row made from a message, a transition, a reply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from dsr_mailbot.config import Config
from dsr_mailbot.intents.registry import REGISTRY
from dsr_mailbot.reading.extract import Problem, UpdateIntent
from dsr_mailbot.reading.parse import Headers
from dsr_mailbot.replies.outbox import queue_reply
from dsr_mailbot.replies.render import Renderer
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import find_user_by_email
from dsr_mailbot.store.erasure import close_actions
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import (
    FINAL_STATES,
    Request,
    RequestKind,
    RequestState,
    User,
    close_request,
)
from dsr_mailbot.trust.verify import Confirmation


@dataclass(frozen=True)
class Context:
    config: Config
    keyring: Keyring
    renderer: Renderer
    now: datetime


@dataclass(frozen=True)
class Arrival:
    """Where a message was found: enough to record it and to move it later."""

    source: str
    uidvalidity: int
    uid: int
    received_at: datetime


def new_request(ctx: Context, arrival: Arrival, headers: Headers, kind: str, language: str) -> Request:
    policy = ctx.config.policy
    return Request(
        message_ref=ctx.keyring.message_ref(headers.message_id),
        message_id=headers.message_id,
        source=arrival.source,
        uidvalidity=arrival.uidvalidity,
        uid=arrival.uid,
        kind=kind,
        intents=[] if kind == RequestKind.CONFIRM else [kind],
        state=RequestState.RECEIVED,
        language=language,
        received_at=arrival.received_at,
        due_at=policy.clock.due_at(kind, arrival.received_at),
        subject_ref=ctx.keyring.subject_ref(headers.sender) if headers.sender else "-",
        reply_address=headers.sender,
        thread=" ".join(headers.references) or None,
    )


def transition(ctx: Context, session: Session, request: Request, state: RequestState, *, outcome: str | None = None,
           reason: str | None = None, actor: str = "bot", **detail: object) -> None:
    request.state = state
    request.outcome = outcome
    request.reason = reason
    if state in FINAL_STATES:
        # A closed request needs none of the person's data: the reply, if any, carries its own recipient.
        close_request(request, ctx.now)
        assert request.id is not None
        close_actions(session, [request.id], None if state is RequestState.COMPLETED else KEPT_ON_CLOSE)
    record_event(session, f"request_{state}", request_id=request.id, subject_ref=request.subject_ref,
                 actor=actor, at=ctx.now, outcome=outcome, reason=reason, **detail)


# A request's ``intent`` key: found by the letter's own words, without a subject marker (reading/unmarked.py).
UNMARKED = "unmarked"

# What stays due when a request closes unapplied (store.erasure.close_actions): an opt-out, carried out on receipt
# because it is harmless if forged and due at once by law, is honoured whatever becomes of the rest of the letter;
# and an erasure, which only a withdrawal carried out writes (such a request is never rejected: operator.reject).
KEPT_ON_CLOSE = frozenset({"erase"} | {action for spec in REGISTRY.values()
                                       if spec.confirmation is Confirmation.NEVER for action in spec.in_systems})


def reply(ctx: Context, session: Session, request: Request, template: str, purpose: str, recipient: str,
           content: ReplyContent | None = None, *, verified: bool) -> None:
    """Queue a reply; ``verified``: it answers mail whose sender was authenticated or confirmed."""
    queue_reply(session, config=ctx.config, keyring=ctx.keyring, renderer=ctx.renderer, request=request,
                template=template, purpose=purpose, recipient=recipient, content=content or ReplyContent(),
                now=ctx.now, for_verified=verified)


def intent_of(request: Request) -> UpdateIntent:
    stored = request.intent or {}
    return UpdateIntent(
        changes=dict(stored.get("changes", {})),
        problems=tuple(Problem(f, c) for f, c in stored.get("problems", [])),
    )


def due(ctx: Context, request: Request, kinds: Sequence[str], *, extended: bool = False) -> datetime:
    """The strictest due date of these intents, counted from the request's receipt (``extended``: once extended)."""
    policy = ctx.config.policy
    return min((policy.clock.due_at(kind, request.received_at, extended=extended) for kind in kinds),
               default=request.due_at)


def pending_intents(request: Request) -> list[str]:
    """The intents whose deadline the request's due date is: all but those carried out on receipt."""
    early = (request.intent or {}).get("on_receipt", [])
    return [kind for kind in request.intents or [request.kind] if kind not in early]


def someone_elses(session: Session, address: str, user: User | None) -> bool:
    """Is ``address`` the stored address of a user other than ``user``?"""
    other = find_user_by_email(session, address)
    return other is not None and (user is None or other.id != user.id)
