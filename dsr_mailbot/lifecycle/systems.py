"""A decided request's part in the data map's other systems: its actions written with the decision, its reply held.

The decision's transaction writes one :class:`~dsr_mailbot.store.models.SystemAction`
row per system and action (the intents' ``in_systems``, read in order), the way
it queues a reply; ``pipeline/actions.py`` carries them out afterwards.  When
any action must be done before the person is answered, the request waits in
``carrying_out`` with what its reply will say (:class:`Finish`), and
``pipeline/release.py`` sends that reply once every system has done its part:
an access answer then lists what each system holds.  An erasure is due at its
date and holds no reply.

A person only the shop's systems know has no row in the bot's ``users``
table: :func:`transient_person` stands in for them while the request is open,
rebuilt from the request's reply address (the address every system was asked
about), and never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from dsr_mailbot.intents.registry import spec_for
from dsr_mailbot.lifecycle.base import Context, reply, transition
from dsr_mailbot.replies.outbox import mask_address
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.store.database import pending_actions
from dsr_mailbot.store.models import ActionState, Request, RequestState, SystemAction, User, new_action_key
from dsr_mailbot.systems.protocol import HeldRecord

IN_SYSTEMS = "in_systems"  # request.intent: the person is known to the data map's systems, not to the builtin
HELD_REPLY = "held_reply"  # request.intent: what completing it sends, once every system has done its part
DEFERRED = "deferred_facts"  # request.intent: the facts of a decision that waits for a lookup


def transient_person(email: str) -> User:
    """Someone only the shop's systems know: the record the handlers work on, never added to a session."""
    return User(email=email, processing_consent=True, marketing_consent=True)


def person_of(session: Session, request: Request) -> User | None:
    """The person a request is about: the builtin's user, or a stand-in when only other systems know them."""
    if request.user_id is not None:
        return session.get(User, request.user_id)
    if (request.intent or {}).get(IN_SYSTEMS) and request.reply_address:
        return transient_person(request.reply_address)
    return None


def write_actions(ctx: Context, session: Session, request: Request, kinds: Sequence[str], email: str,
                  changes: dict[str, str], erasure_due_at: datetime | None, *,
                  only_kinds: frozenset[str] | None = None) -> bool:
    """Write the actions these intents ask of every system; True when the person's answer must wait for one.

    Writing again is harmless: an action already done stays done, one still
    pending stays as it is (an opt-out carried out on receipt), and one that
    failed — its request went to review, and an operator approved it — is
    tried afresh.  ``only_kinds``: the kinds of system to write to (an opt-out
    from an address nobody knows still goes to HTTP systems).
    """
    assert request.id is not None
    waits = False
    for system in ctx.config.external_systems:
        if only_kinds is not None and system.kind not in only_kinds:
            continue
        for kind in kinds:
            for action in spec_for(kind).in_systems:
                if (system.read_only and action != "access") or (action == "update" and not changes):
                    continue
                # An erasure already due (no erasure delay) comes after the withdrawal: never before it in the queue.
                due = max(erasure_due_at, ctx.now) if action == "erase" and erasure_due_at else ctx.now
                if action == "erase" and erasure_due_at is None:
                    continue
                payload: dict[str, Any] = {"email": email, **({"changes": changes} if action == "update" else {})}
                if not _write(session, request.id, system.name, action, due, payload) and action != "erase":
                    waits = True
    return waits


def _write(session: Session, request_id: int, system: str, action: str, due: datetime,
           payload: dict[str, Any]) -> bool:
    """Write (or renew) one action; True when it is done already."""
    row = session.exec(select(SystemAction).where(SystemAction.request_id == request_id,
                                                  SystemAction.system == system,
                                                  SystemAction.action == action)).first()
    if row is None and action == "erase" and any(
            earlier.due_at <= due for earlier in pending_actions(session, "erase", payload["email"], system)):
        return False  # an earlier withdrawal's erasure, due no later, covers it (never cancelled): one act
    if row is None:
        session.add(SystemAction(request_id=request_id, system=system, action=action, due_at=due, next_try_at=due,
                                 payload=payload))
        return False
    if row.state == ActionState.FAILED:
        row.payload = payload
        _renew(session, row, due)
    return row.state == ActionState.DONE


def _renew(session: Session, row: SystemAction, due: datetime) -> None:
    """A failed action tried again on an operator's new decision: from its first attempt, under a fresh idempotency
    key (its body may differ from the refused one's)."""
    row.state, row.attempts, row.due_at, row.next_try_at = ActionState.PENDING, 0, due, due
    row.result, row.last_error, row.done_at, row.key = {}, None, None, new_action_key()
    session.add(row)


def retry_failed(ctx: Context, session: Session, request: Request, actor: str) -> None:
    """An operator approved a request whose system failed: its failed actions again, each as it was, under a
    fresh idempotency key; the request waits for them in ``carrying_out``."""
    for row in session.exec(select(SystemAction).where(SystemAction.request_id == request.id,
                                                       SystemAction.state == ActionState.FAILED)).all():
        _renew(session, row, ctx.now)
    transition(ctx, session, request, RequestState.CARRYING_OUT, reason="carrying_out", actor=actor)


def readdress(session: Session, system: str, old: str, new: str, now: datetime) -> None:
    """A system now knows the person by a new address (its update is done): the actions still to do there under
    the old one follow it — an erasure waiting for its date, a failed action an operator may approve."""
    rows = session.exec(select(SystemAction).where(SystemAction.system == system, col(SystemAction.state).in_(
        [ActionState.PENDING, ActionState.FAILED]), SystemAction.action != "lookup")).all()
    for row in rows:  # a lookup asks about the letter's sender, whatever address the person has now
        if row.payload.get("email") == old:
            # The old address and until when it was theirs: the act's step forgets their letters under it, and
            # not those of whoever has the address later.
            formerly = [*row.payload.get("formerly", []), [old, now.isoformat()]]
            row.payload = {**row.payload, "email": new, "formerly": formerly}
            session.add(row)


def write_lookups(ctx: Context, session: Session, request: Request, systems: Sequence[str], email: str) -> None:
    assert request.id is not None
    for name in systems:
        _write(session, request.id, name, "lookup", ctx.now, {"email": email})


@dataclass(frozen=True)
class Finish:
    """What completing a request sends and records: at once, or once its systems have done their part."""

    template: str | None
    content: ReplyContent
    recipient: str
    state: RequestState
    reason: str | None
    actor: str
    verified: bool
    old_address: str | None = None  # an e-mail change: the old address gets a notice
    audit: dict[str, list[str]] = field(default_factory=dict)  # changed, unchanged, problems: names only

    def as_json(self) -> dict[str, Any]:
        c = self.content
        return {"template": self.template, "recipient": self.recipient, "state": self.state.value,
                "reason": self.reason, "actor": self.actor, "verified": self.verified,
                "old_address": self.old_address, "audit": self.audit,
                "content": {"kinds": list(c.kinds), "parts": list(c.parts), "changes": c.changes,
                            "unchanged": list(c.unchanged), "problems": [list(p) for p in c.problems],
                            "erasure_due_at": c.erasure_due_at.isoformat() if c.erasure_due_at else None,
                            "held": c.held, "consents": c.consents,
                            "hold_ground": c.hold_ground, "hold_kind": c.hold_kind,
                            "consent_source": c.consent_source,
                            "consent_at": c.consent_at.isoformat() if c.consent_at else None}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Finish:
        c = data["content"]
        content = ReplyContent(kinds=tuple(c["kinds"]), parts=tuple(c["parts"]), changes=dict(c["changes"]),
                               unchanged=tuple(c["unchanged"]), problems=tuple((f, p) for f, p in c["problems"]),
                               erasure_due_at=datetime.fromisoformat(c["erasure_due_at"])
                               if c["erasure_due_at"] else None,
                               held=dict(c["held"]), consents=dict(c["consents"]),
                               hold_ground=c.get("hold_ground", ""), hold_kind=c.get("hold_kind", ""),
                               consent_source=c.get("consent_source", ""),
                               consent_at=datetime.fromisoformat(c["consent_at"]) if c.get("consent_at") else None)
        return cls(data["template"], content, data["recipient"], RequestState(data["state"]), data["reason"],
                   data["actor"], data["verified"], data["old_address"], dict(data["audit"]))


def finish(ctx: Context, session: Session, request: Request, done: Finish) -> None:
    """Queue the reply (and the old address's notice), then close the request."""
    if done.template:
        reply(ctx, session, request, done.template, "reply", done.recipient, done.content, verified=done.verified)
    if done.old_address is not None:
        reply(ctx, session, request, "email_changed_notice", "notice_old_address", done.old_address,
              ReplyContent(new_address=mask_address(done.recipient)), verified=done.verified)
    # Replies first: closing the request forgets the thread they answer in.
    transition(ctx, session, request, done.state, outcome=done.template, reason=done.reason, actor=done.actor,
               **{k: list(v) for k, v in done.audit.items()})


def hold(ctx: Context, session: Session, request: Request, done: Finish) -> None:
    """Wait for the systems: the reply is kept (the request's own data, forgotten when it closes)."""
    request.intent = {**(request.intent or {}), HELD_REPLY: done.as_json()}
    session.add(request)
    transition(ctx, session, request, RequestState.CARRYING_OUT, reason="carrying_out", actor=done.actor)


# An access answer longer than this (about a megabyte of mail once encoded) goes to a person, not into an e-mail.
MAX_ACCESS_ANSWER_CHARS = 300_000


def release(ctx: Context, session: Session, request: Request, actions: Sequence[SystemAction]) -> None:
    """Every system has done its part: send the held reply, an access answer with what each system holds."""
    done = Finish.from_json(request.intent[HELD_REPLY])
    if "access" in done.content.kinds:
        size = sum(len(str(a.result.get("records", ""))) for a in actions if a.action == "access")
        if size > MAX_ACCESS_ANSWER_CHARS:
            transition(ctx, session, request, RequestState.REVIEW, reason="access_answer_too_large")
            return
        order = {s.name: n for n, s in enumerate(ctx.config.data_map)}
        held = sorted((a for a in actions if a.action == "access" and a.state == ActionState.DONE),
                      key=lambda a: order.get(a.system, len(order)))
        systems = tuple((a.system, tuple(HeldRecord(str(r["label"]), {str(k): str(v) for k, v in r["fields"].items()})
                                         for r in a.result.get("records", []))) for a in held)
        own = ctx.config.builtin_label
        asked = (*([own] if own else []), *(a.system for a in held))
        done = replace(done, content=replace(done.content, systems=systems, asked=asked))
    finish(ctx, session, request, done)
    for action in actions:  # what was sent is not kept
        if "records" in action.result:
            action.result = {k: v for k, v in action.result.items() if k != "records"}
            session.add(action)
