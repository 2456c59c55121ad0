"""Notices to every user (policy 7.2: the operator tells users of changes to the policy), exactly once each.

``notify --template policy-change --campaign ID`` queues one notice per user
who has not withdrawn consent.  It is a legal notice, not marketing, so the
marketing flag does not matter.  Each notice is in the user's language (that
of their last request, else ``default_language``) and its text is the same
for everyone: it names nobody, so it is rendered once per language.

Queued as references, written at sending: the queue holds a row per
recipient (:mod:`~dsr_mailbot.store.notices`: one ``INSERT … SELECT`` for
the bot's own users), and the outbox's drain writes a page of them into
messages when their turn comes (:func:`write_notices`), no more than the
minute's allowance.  Memory and queueing time do not grow with the number
of customers in Python, and a person erased or withdrawn meanwhile is
checked against what is true at sending.

Exactly once: the notice's Message-ID is derived from the campaign and the
user's ``ref`` (random, never reused: SQLite reuses an erased user's row
id, and a user imported later must still get the campaign) under the bot's
key; the queue holds one row per campaign and recipient, writing a row's
message marks it written in the same transaction, and the outbox refuses a
second row with the same Message-ID.  Sending goes through the outbox like
every reply (a row is sent once, and marked sent in its own transaction).
A campaign an earlier version queued in the outbox is finished without
sending twice: a notice whose Message-ID (or, from the oldest versions, the
row-id form to the same address) is in the outbox already is not written
again.  The outbox sends a campaign's notices at most ``[smtp]
max_per_minute`` a minute, and checks each user's consent again just before
sending (:func:`notice_refusal`): a notice queued before a withdrawal is
not sent.

The Message-ID (``<dsr.n.<tag>@…>``) does not follow the replies'
``<dsr.<request>…>`` form: a notice belongs to no request, so an answer to
it is ordinary support mail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from dsr_mailbot.config import Config
from dsr_mailbot.errors import ConfigError
from dsr_mailbot.replies.render import Rendered, Renderer
from dsr_mailbot.replies.reply import ReplyContent, build_message
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.database import find_user_by_email
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.store.models import (
    CampaignNotice,
    NoticeState,
    OutboxMessage,
    Request,
    RequestKind,
    RequestState,
    User,
    utcnow,
)
from dsr_mailbot.store.notices import (
    OWN_USER,
    SYSTEM_RECIPIENT,
    SystemAddress,
    claim_queued_notices,
    purpose_of,
    system_recipient_key,
)

# Command-line name → template; a notice template names no one (it is rendered once per language).
NOTICE_TEMPLATES = {"policy-change": "policy_change"}
log = logging.getLogger("dsr_mailbot")
_CAMPAIGN = re.compile(r"[A-Za-z0-9._-]{1,40}")


def check_campaign(campaign: str) -> str:
    if not _CAMPAIGN.fullmatch(campaign):
        raise ConfigError(f"--campaign: 1 to 40 letters, digits, '.', '_' or '-', got {campaign!r}")
    return campaign


def notice_message_id(keyring: Keyring, campaign: str, user_ref: str, domain: str) -> str:
    """The same for the same campaign and user, whoever queues it, whenever: the key of exactly once."""
    return f"<dsr.n.{keyring.digest('notice', f'{campaign}:ref:{user_ref}')[:16]}@{domain}>"


def legacy_notice_message_id(keyring: Keyring, campaign: str, user_id: int, domain: str) -> str:
    """The Message-ID a notice had before notices were keyed by ``users.ref`` (by the reusable row id)."""
    tag = keyring.digest("notice", f"{campaign}:{user_id}")[:20]
    return f"<dsr-notice.{campaign}.{tag}@{domain}>"


@dataclass(frozen=True)
class NoticeWriter:
    """What writing a queued notice into a message needs."""

    config: Config
    keyring: Keyring
    renderer: Renderer


@dataclass(frozen=True)
class NoticeCheck:
    """What the last check before a notice goes needs beyond the bot's own users: the data map."""

    keyring: Keyring
    # The data map lists systems besides the bot's own store: a recipient need not be one of its users.
    people_elsewhere: bool
    # How queued notices become messages; without it, only notices already in the outbox are sent.
    writer: NoticeWriter | None = None


def notice_refusal(session: Session, recipient: str, check: NoticeCheck | None = None) -> str | None:
    """Why a queued notice must not go now (checked just before sending), or None.

    A user of the bot's own store is checked by their consent.  Anyone else
    came from a system of the data map: checked by the bot's own record, a
    withdrawal they made by e-mail (the system itself is not asked again at
    sending time).  Without other systems, someone not in the store was erased.
    """
    user = find_user_by_email(session, recipient)
    if user is not None:
        return None if user.processing_consent else "consent withdrawn"
    if check is None or not check.people_elsewhere:
        return "recipient no longer on file"
    return "consent withdrawn" if withdrew(session, check.keyring.subject_ref(recipient)) else None


def withdrew(session: Session, subject_ref: str) -> bool:
    """Did the person with this subject reference withdraw consent by e-mail (a completed withdrawal)?"""
    asked = session.exec(select(Request.intents).where(Request.subject_ref == subject_ref,
                                                       Request.state == RequestState.COMPLETED)).all()
    return any(RequestKind.WITHDRAW in (intents or []) for intents in asked)


def system_recipient(keyring: Keyring, address: str) -> SystemAddress:
    """A recipient found in a system of the data map: keyed by their address under the bot's key."""
    return SystemAddress(address, system_recipient_key(keyring, address))


@dataclass(frozen=True)
class WrittenNotices:
    consumed: int  # queued notices taken from the queue (written, found written already, or dropped)
    written: int  # messages added to the outbox


@dataclass(frozen=True)
class _Target:
    address: str
    message_id: str
    # The Message-IDs the same notice to the same address may have had: from the oldest versions (by row id), or
    # as a shop's customer before the address became a user of the bot.
    other_ids: tuple[str, ...]


def _targets(session: Session, writer: NoticeWriter, notices: Sequence[CampaignNotice]) -> dict[int, _Target | str]:
    """Each notice's recipient as they are now, or why there is none."""
    keyring, domain = writer.keyring, writer.config.reply_domain
    refs = [n.recipient_key[len(OWN_USER):] for n in notices if n.recipient_key.startswith(OWN_USER)]
    users = {u.ref: u for u in session.exec(select(User).where(col(User.ref).in_(refs)))} if refs else {}
    targets: dict[int, _Target | str] = {}
    for notice in notices:
        assert notice.id is not None
        key, campaign = notice.recipient_key, notice.campaign
        if key.startswith(OWN_USER):
            user = users.get(key[len(OWN_USER):])
            if user is None or user.id is None:
                targets[notice.id] = "recipient no longer on file"
            elif not user.processing_consent:
                targets[notice.id] = "consent withdrawn"
            else:
                as_customer = system_recipient_key(keyring, user.email)[len(SYSTEM_RECIPIENT):]
                targets[notice.id] = _Target(user.email, notice_message_id(keyring, campaign, user.ref, domain), (
                    legacy_notice_message_id(keyring, campaign, user.id, domain),
                    notice_message_id(keyring, campaign, as_customer, domain)))
        elif notice.address is not None:
            targets[notice.id] = _Target(notice.address, notice_message_id(
                keyring, campaign, key[len(SYSTEM_RECIPIENT):], domain), ())
        else:
            targets[notice.id] = "recipient no longer on file"
    return targets


def write_notices(session: Session, writer: NoticeWriter, limit: int, *, lock: bool) -> WrittenNotices:
    """Write up to ``limit`` queued notices into the outbox as messages, in this transaction.

    Each recipient is taken as they are now: a user gone or withdrawn since
    queueing is dropped (audited, nothing written); the language is that of
    their last request.  A notice whose message an earlier version or run put
    in the outbox, to the same address, is marked written without a second
    copy.  A notice that cannot be written (its template fails) is marked
    failed and audited, and the others go on.
    """
    config, now = writer.config, utcnow()
    notices = claim_queued_notices(session, limit, lock)
    if not notices:
        return WrittenNotices(0, 0)
    targets = _targets(session, writer, notices)
    found = [t for t in targets.values() if isinstance(t, _Target)]
    in_outbox = dict(session.exec(select(OutboxMessage.message_id, OutboxMessage.recipient).where(
        col(OutboxMessage.message_id).in_([i for t in found for i in (t.message_id, *t.other_ids)])
    )).all())
    languages = _languages(session, writer.keyring, [t.address for t in found], config.policy.default_language)
    texts: dict[tuple[str, str], Rendered] = {}
    written = 0
    for notice in notices:
        assert notice.id is not None
        target = targets[notice.id]
        notice.address = None
        session.add(notice)
        if isinstance(target, str):
            notice.state = NoticeState.DROPPED
            record_event(session, "reply_failed", purpose=purpose_of(notice.campaign), error=target)
            continue
        notice.state = NoticeState.WRITTEN
        if target.message_id in in_outbox or any(in_outbox.get(i) == target.address for i in target.other_ids):
            continue
        language = languages.get(target.address, config.policy.default_language)
        try:
            data = _message(writer, texts, notice.template, language, target, now)
        except Exception as exc:  # this notice only (a template broken since start-up): the others go on
            notice.state = NoticeState.FAILED
            record_event(session, "reply_failed", purpose=purpose_of(notice.campaign),
                         error=f"the notice could not be written ({type(exc).__name__})")
            log.error("a notice of campaign %s could not be written: %s", notice.campaign, type(exc).__name__)
            continue
        in_outbox[target.message_id] = target.address  # the same recipient twice in a page: written once
        session.add(OutboxMessage(request_id=None, purpose=purpose_of(notice.campaign), message_id=target.message_id,
                                  recipient=target.address, data=data, created_at=now, for_verified=True))
        written += 1
    return WrittenNotices(len(notices), written)


def _message(writer: NoticeWriter, texts: dict[tuple[str, str], Rendered], template: str, language: str,
             target: _Target, now: datetime) -> bytes:
    config = writer.config
    if template not in NOTICE_TEMPLATES.values():
        raise ConfigError(f"no notice template {template!r}")
    if (template, language) not in texts:
        context = ReplyContent().as_context(language, config.policy.timezone, now)
        texts[template, language] = writer.renderer.render(template, language, context)
    text = texts[template, language]
    return build_message(
        from_address=config.reply_from, from_name=config.policy.operator_name, to_address=target.address,
        subject=text.subject, body=text.body, message_id=target.message_id, language=language,
        in_reply_to=None, references=(), auto_submitted="auto-generated", now=now,
    )


def _languages(session: Session, keyring: Keyring, addresses: Sequence[str], default: str) -> dict[str, str]:
    """Each address's language: that of the person's last request (found by their subject reference)."""
    by_ref = {keyring.subject_ref(address): address for address in addresses}
    found: dict[str, str] = {}
    for subject_ref, language in session.exec(
        select(Request.subject_ref, Request.language)
        .where(col(Request.subject_ref).in_(by_ref), Request.kind != RequestKind.CONFIRM).order_by(col(Request.id))
    ).all():
        found[by_ref[subject_ref]] = language  # the last one wins
    return found
