"""Erasure at its date: the person's messages expunged, the act of destruction written, the store's copies destroyed."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import select

from dsr_mailbot.config import PolicyConfig
from dsr_mailbot.errors import DsrMailbotError
from dsr_mailbot.lifecycle.base import KEPT_ON_CLOSE
from dsr_mailbot.mailbox.source import Expunging
from dsr_mailbot.pipeline.retention import expire_closed_requests
from dsr_mailbot.pipeline.services import RunReport, Services
from dsr_mailbot.replies.outbox import queue_reply
from dsr_mailbot.replies.reply import ReplyContent
from dsr_mailbot.store.acts import Act, ActOperator, ActSigner, delete_expired_acts, keep_act, read_act, record_notice
from dsr_mailbot.store.audit import record_event
from dsr_mailbot.store.erasure import due_user_ids, erase_user, plan_erasure, purge_outbox_row
from dsr_mailbot.store.models import (
    OutboxMessage,
    OutboxState,
    Request,
    SystemAction,
    User,
)

log = logging.getLogger("dsr_mailbot")


# The outbox purpose of the last message to an erased person (purged once sent, see finish_destruction_notices).
DESTRUCTION_NOTICE = "destroyed"


def erase_due(services: Services, report: RunReport) -> None:
    """Destroy the data of everyone whose erasure date has come, one person at a time, each isolated.

    For each person: read what erasing needs (a short transaction); expunge
    their request messages from ``processed_folder`` and count their ordinary
    mail left in the inbox (the mailbox, outside any transaction); write the
    act of destruction; then, in one transaction, queue the notice of
    destruction and destroy the store's copies.  Every step can run again:
    a crash before the commit leaves the person due, and the next run expunges
    nothing more, writes the same act and erases.  Afterwards the database
    files are made to forget (:meth:`Store.reclaim_erased`), notices sent or
    too old are purged after sending (:func:`finish_erasure`), and expired
    acts deleted.
    """
    now = services.clock()
    with services.store.transaction() as session:
        due = due_user_ids(session, now)
    mailbox = services.mailbox() if services.mailbox is not None and due else None
    try:
        if mailbox is not None:
            mailbox.open()  # one connection for the whole pass; unreachable, the pass waits for the next
        erased = 0
        for user_id in due:
            try:
                erased += _erase_one(services, user_id, mailbox)
            except Exception as exc:  # one person's failure must not keep the others' data
                if isinstance(exc, DsrMailbotError) and exc.temporary:
                    raise
                log.warning("erasure of user %s failed: %s", user_id, type(exc).__name__)
    finally:
        if mailbox is not None:
            mailbox.close()
    report.erased += erased
    if erased:
        services.store.reclaim_erased()
    policy = services.config.policy
    delete_expired_acts(policy.acts_dir, now, policy.act_retention_days)
    expire_closed_requests(services)


def finish_erasure(services: Services) -> None:
    """After sending: purge the notices of destruction that went out (or are too old), then reclaim the space."""
    if finish_destruction_notices(services):
        services.store.reclaim_erased()


def _erase_one(services: Services, user_id: int, mailbox: Expunging | None) -> int:
    cfg, store, keyring = services.config, services.store, services.keyring
    with store.transaction() as session:
        user = session.get(User, user_id)
        if user is None:
            return 0
        plan = plan_erasure(session, keyring, user)
    if plan.waiting_for_systems:
        return 0  # their withdrawal's answer (or another) waits for a system: they hear of it before the erasure
    # The transport's copies (file delivery's .eml files) go before the store's: a crash between the two
    # leaves the person due, and the next run forgets again; whatever is written meanwhile goes after the commit.
    services.transport.forget(plan.reply_ids)
    expunged = left_in_inbox = 0
    if mailbox is not None:
        if cfg.policy.expunge_processed_mail:
            expunged = mailbox.expunge_processed(plan.message_ids)
        left_in_inbox = mailbox.count_from(plan.email)
    withdrawal = plan.withdrawal
    ctx = services.context()
    with store.transaction() as session:
        user = session.exec(select(User).where(User.id == user_id).with_for_update(skip_locked=True)).first()
        if user is None or user.erasure_due_at is None or user.erasure_due_at > ctx.now:
            return 0  # erased by another worker meanwhile (which wrote the act), or no longer due
        # The data map's other systems erase at the same date; the notice waits for them (systems_erasure.py).
        in_systems = withdrawal is not None and session.exec(select(SystemAction.id).where(
            SystemAction.request_id == withdrawal.id, SystemAction.action == "erase")).first() is not None
        act = Act(
            act_id=str(withdrawal.id) if withdrawal is not None else f"u{plan.user_id}",
            made_at=ctx.now.isoformat(),
            system_name=cfg.builtin_label or cfg.policy.system_name,
            subject_full_name=plan.full_name,
            subject_ref=plan.subject_ref,
            categories=plan.categories,
            reason="withdrawal of consent to the processing of personal data (152-FZ Art. 21 ч.5)",
            request_id=withdrawal.id if withdrawal is not None else None,
            request_received_at=withdrawal.received_at.isoformat() if withdrawal is not None else None,
            method=store.erasure_method + ("; request messages expunged from the mailbox's processed folder"
                                           if cfg.policy.expunge_processed_mail else ""),
            processed_messages_expunged=expunged,
            ordinary_messages_left_in_inbox=left_in_inbox,
            notice="queued" if withdrawal is not None and not in_systems else "after the systems' erasure"
            if in_systems else "none",
            operator=act_operator(cfg.policy),
        )
        # Written while this worker holds the person's row, before the commit: a crash between the two leaves
        # them due and the next run writes the same act; another worker finds them gone and writes nothing.
        rewritten = read_act(cfg.policy.acts_dir, act.act_id) is not None
        keep_act(session, cfg.policy.acts_dir, act, "rewritten" if rewritten else "made")
        kept: list[str] = []
        target = session.get(Request, withdrawal.id) if withdrawal is not None and not in_systems else None
        if target is not None:
            # The last message to them: queued before their address goes, purged once sent.
            kept.append(queue_reply(session, config=cfg, keyring=keyring, renderer=services.renderer,
                                    request=target, template="data_destroyed", purpose=DESTRUCTION_NOTICE,
                                    recipient=user.email, content=ReplyContent(
                                        expunged=expunged > 0, left_in_inbox=left_in_inbox),
                                    now=ctx.now, for_verified=True))
            session.flush()  # erase_user looks for every reply of theirs, this one included
        scrubbed = erase_user(session, keyring, user, now=ctx.now, actions_kept=KEPT_ON_CLOSE, keep_outbox=kept,
                              act=act.act_id, expunged=expunged, left_in_inbox=left_in_inbox)
    services.transport.forget(scrubbed)
    return 1


def act_operator(policy: PolicyConfig) -> ActOperator:
    """The operator's part of an act, from ``[policy]``."""
    person = policy.responsible_person
    return ActOperator(name=policy.operator_name, address=policy.operator_address, bin=policy.operator_bin,
                       responsible_name=person.name if person else "", responsible_email=person.email if person else "",
                       signers=tuple(ActSigner(s.name, s.position) for s in policy.destruction_signers))


def finish_destruction_notices(services: Services) -> int:
    """Purge the notices of destruction that were sent, or that could not be sent in time; say so in the act.

    The notice is the one copy of the person's address left; it stays only
    until sent, and at most ``confirm_expiry_days`` (then it is dropped).
    """
    now = services.clock()
    limit = timedelta(days=services.config.trust.confirm_expiry_days)
    acts_dir = services.config.policy.acts_dir
    done: list[str] = []
    with services.store.transaction() as session:
        for row in session.exec(select(OutboxMessage).where(OutboxMessage.purpose == DESTRUCTION_NOTICE,
                                                            OutboxMessage.recipient != "erased")).all():
            if row.state == OutboxState.SENT:
                outcome, at = "sent", row.sent_at or now
                purge_outbox_row(row, OutboxState.SENT)
            elif row.state == OutboxState.FAILED or row.created_at + limit <= now:
                outcome, at = "dropped", now
                purge_outbox_row(row, OutboxState.FAILED, "notice of destruction dropped: not sent in time")
            else:
                continue
            record_event(session, f"destruction_notice_{outcome}", request_id=row.request_id, at=now)
            record_notice(session, acts_dir, str(row.request_id), outcome, at)
            done.append(row.message_id)
    services.transport.forget(done)  # with file delivery, the file was the delivery: it goes with the row
    return len(done)
