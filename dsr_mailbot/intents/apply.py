"""Stage 5: carry out a verified request on the user's record.

The functions change the :class:`~dsr_mailbot.store.models.User` they are given
(the caller's transaction persists it) and return an :class:`Outcome` that
says which reply to send and what to record.  They do no IO of their own:
the one question that needs the store ("is this e-mail address someone
else's?") is passed in as a function.

- update: each understood field that differs from the stored value is set;
  a new address that belongs to another user is not taken (and the reply
  does not say whose it is);
- withdrawal (policy §6.3): processing consent off, marketing off, erasure
  scheduled ``erasure_delay_days`` after receipt; a repeated withdrawal
  keeps the first, earlier date;
- opt-out (policy §4.1): marketing off;
- access (policy §7.1, 152-FZ Art. 14): nothing changes; the answer lists
  every field held and the consents.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dsr_mailbot.intents.deadlines import erasure_due_at, held_erasure_due_at
from dsr_mailbot.reading.extract import FIELDS, Problem, UpdateIntent
from dsr_mailbot.store.models import RequestState, User


@dataclass(frozen=True)
class HoldFacts:
    """An operator's hold on the person's data (``users hold``, or a system's lookup): the ground, until when."""

    kind: str  # block | retain
    ground: str
    until: datetime | None


@dataclass(frozen=True)
class Outcome:
    """What happened to a request: its final state, the reply to send, what to audit."""

    state: RequestState
    template: str | None
    reason: str | None = None
    changed_fields: tuple[str, ...] = ()
    unchanged_fields: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    # What the reply reports, typed: the values set, the erasure date, and (access) what is held.
    changes: dict[str, str] = field(default_factory=dict)
    erasure_due_at: datetime | None = None
    held: dict[str, str] = field(default_factory=dict)
    consents: dict[str, bool] = field(default_factory=dict)
    parts: tuple[str, ...] = ()  # several intents: the template of each one's outcome, for one reply
    hold: HoldFacts | None = None  # a withdrawal under a hold: blocked or kept, destroyed at erasure_due_at
    consent_source: str = ""  # access: where the consent was given, when the operator imported it
    consent_at: datetime | None = None


def combined(outcomes: Sequence[Outcome]) -> Outcome:
    """The outcome of a letter's intents together: one reply with a part per intent.

    Completed when any intent was carried out (the reply says which were
    not, and why); otherwise the first intent's state and reason.
    """
    if len(outcomes) == 1:
        return outcomes[0]
    done = [o for o in outcomes if o.state is RequestState.COMPLETED]
    first = done[0] if done else outcomes[0]
    parts = tuple(o.template for o in outcomes if o.template)
    return Outcome(
        state=first.state,
        template="several_applied" if parts else None,
        reason=first.reason if not done else None,
        changed_fields=tuple(f for o in outcomes for f in o.changed_fields),
        unchanged_fields=tuple(f for o in outcomes for f in o.unchanged_fields),
        problems=tuple(p for o in outcomes for p in o.problems),
        changes={k: v for o in outcomes for k, v in o.changes.items()},
        erasure_due_at=next((o.erasure_due_at for o in outcomes if o.erasure_due_at), None),
        held={k: v for o in outcomes for k, v in o.held.items()},
        consents={k: v for o in outcomes for k, v in o.consents.items()},
        parts=parts,
        hold=next((o.hold for o in outcomes if o.hold), None),
        consent_source=next((o.consent_source for o in outcomes if o.consent_source), ""),
        consent_at=next((o.consent_at for o in outcomes if o.consent_at), None),
    )


def apply_update(
    user: User,
    intent: UpdateIntent,
    email_taken: Callable[[str], bool],
    now: datetime,
) -> Outcome:
    problems = list(intent.problems)
    if not intent.understood:
        return Outcome(
            RequestState.REJECTED,
            "update_not_understood",
            reason="no_valid_field",
            problems=tuple(problems),
        )
    changed: dict[str, str] = {}
    unchanged: list[str] = []
    for name in FIELDS:
        if name not in intent.changes:
            continue
        value = intent.changes[name]
        if getattr(user, name) == value:
            unchanged.append(name)
            continue
        if name == "email" and email_taken(value):
            problems.append(Problem("email", "unavailable"))
            continue
        changed[name] = value
    for name, value in changed.items():
        setattr(user, name, value)
    if changed:
        user.updated_at = now
    if not changed and not unchanged:
        return Outcome(
            RequestState.REJECTED,
            "update_not_understood",
            reason="no_applicable_field",
            problems=tuple(problems),
        )
    return Outcome(
        RequestState.COMPLETED,
        "update_applied",
        changed_fields=tuple(changed),
        unchanged_fields=tuple(unchanged),
        problems=tuple(problems),
        changes=changed,
    )


def apply_withdrawal(user: User, received_at: datetime, erasure_delay_days: int, now: datetime,
                     hold: HoldFacts | None = None, max_block_days: int = 183) -> Outcome:
    """Consent off, marketing off, erasure scheduled; under a hold, the data are kept (blocked, or on the hold's
    ground) and destroyed when the hold says, whatever date an earlier withdrawal set."""
    changed: list[str] = []
    if user.processing_consent:
        user.processing_consent = False
        user.consent_withdrawn_at = received_at
        changed.append("processing_consent")
    if user.marketing_consent:
        user.marketing_consent = False
        user.marketing_opted_out_at = received_at
        changed.append("marketing_consent")
    if hold is not None:
        # The six months of a block run from the first withdrawal: a second letter does not start them again.
        first = min(user.consent_withdrawn_at or received_at, received_at)
        scheduled = held_erasure_due_at(hold.kind, hold.until, first, max_block_days)
        moved = user.erasure_due_at != scheduled
    else:
        scheduled = erasure_due_at(received_at, erasure_delay_days)
        moved = user.erasure_due_at is None or scheduled < user.erasure_due_at
    if moved:
        user.erasure_due_at = scheduled
        changed.append("erasure_due_at")
    user.updated_at = now
    return Outcome(
        RequestState.COMPLETED,
        "withdrawal_blocked" if hold is not None else "withdrawal_applied",
        changed_fields=tuple(changed),
        erasure_due_at=user.erasure_due_at,
        hold=hold,
    )


def apply_optout(user: User, received_at: datetime, now: datetime) -> Outcome:
    changed: tuple[str, ...] = ()
    if user.marketing_consent:
        user.marketing_consent = False
        user.marketing_opted_out_at = received_at
        user.updated_at = now
        changed = ("marketing_consent",)
    return Outcome(RequestState.COMPLETED, "optout_applied", changed_fields=changed)


def apply_access(user: User) -> Outcome:
    """Policy 7.1 and 152-FZ Art. 14: every field held, and the consents, for the answer; nothing changes."""
    return Outcome(
        RequestState.COMPLETED,
        "access_answer",
        held={name: getattr(user, name) or "" for name in FIELDS},
        consents={"processing": user.processing_consent, "marketing": user.marketing_consent},
        consent_source=user.consent_source or "",
        consent_at=user.consent_at,
    )


def nothing_to_apply() -> Outcome:
    """A question changes nothing: a person answers it (``requests answer``); it waits in review until then."""
    return Outcome(RequestState.REVIEW, None, reason="awaiting_answer")


def unknown_sender() -> Outcome:
    return Outcome(RequestState.REJECTED, "unknown_sender", reason="no_such_user")
