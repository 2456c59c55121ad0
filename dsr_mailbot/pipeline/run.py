"""One pass for cron, in order: expire, erase, the mailbox, the data map's actions, send, finish erasure."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from threading import Event

from dsr_mailbot.errors import ConfigError, DsrMailbotError, MappingError
from dsr_mailbot.lifecycle import (
    expire_overdue,
)
from dsr_mailbot.mailbox.source import MailSource
from dsr_mailbot.pipeline.actions import run_actions
from dsr_mailbot.pipeline.erasure import erase_due, finish_erasure
from dsr_mailbot.pipeline.release import release_waiting
from dsr_mailbot.pipeline.scan import process_mailbox
from dsr_mailbot.pipeline.services import RunReport, Services
from dsr_mailbot.pipeline.systems_erasure import report_erasures
from dsr_mailbot.replies.send import drain_outbox

log = logging.getLogger("dsr_mailbot")


def run_once(services: Services, passes: Sequence[tuple[Services, MailSource]]) -> RunReport:
    """One pass for cron: expire, erase, each mailbox's new mail (``passes``: a mailbox's services and its
    source, not yet opened), then the data map's actions and what is queued to send.

    A mailbox that is down does not keep the others: the run reports it (exit 75).  With several mailboxes, one
    whose login is refused for good (a revoked OAuth2 consent) is skipped and named in
    :attr:`RunReport.refused`, so that the run ends with exit 78 after the others; with one, it stops the run.
    """
    report = RunReport()
    try:
        expire_unconfirmed(services, report)
        erase_due(services, report)
    except DsrMailbotError as exc:
        _stopped_early(report, exc)
    for mailbox_services, source in passes:
        try:
            process_mailbox(mailbox_services, source, source.open(), report)
        except ConfigError as exc:
            if len(passes) == 1 or isinstance(exc, MappingError):
                raise
            log.error("mailbox %s stopped: %s", mailbox_services.config.mailbox_name, exc)
            report.refused.append(str(exc))
        except DsrMailbotError as exc:
            _stopped_early(report, exc)
        finally:
            source.close()
    carry_out_actions(services, report)
    send_queued(services, report)
    finish_erasure(services)
    return report


def _stopped_early(report: RunReport, exc: DsrMailbotError) -> None:
    if not exc.temporary:
        raise exc
    report.temporary_failure = report.temporary_failure or str(exc)
    log.info("pass stopped early: %s", exc)


def expire_unconfirmed(services: Services, report: RunReport) -> None:
    with services.store.transaction() as session:
        report.expired += expire_overdue(services.context(), session)


def carry_out_actions(services: Services, report: RunReport, stop: Event | None = None) -> None:
    """The data map's due actions (a mailbox that is down does not hold them up), then what waited for them:
    requests answered or decided, acts of destruction written."""
    try:
        # A decision that waited for a lookup may write actions of its own: their turn comes at once.
        for _round in range(2):
            run = run_actions(services, stop)
            report.actions_done += run.done
            report.actions_failed += run.failed
            released = release_waiting(services)
            report.released += released
            if not released:
                break
        report.erased_in_systems += report_erasures(services)
    except DsrMailbotError as exc:
        if not exc.temporary:
            raise
        report.temporary_failure = report.temporary_failure or str(exc)
        return
    if run.unavailable:
        log.info("actions wait for %s", ", ".join(sorted(run.unavailable)))


def send_queued(services: Services, report: RunReport, stop: Event | None = None) -> None:
    drained = drain_outbox(services.store, services.transport, services.config.reply_from, stop=stop,
                           notices_per_minute=services.config.notices_per_minute,
                           notice_check=services.notice_check)
    report.replies_sent += drained.sent
    report.replies_failed += drained.failed
    if drained.unavailable and not report.temporary_failure:
        report.temporary_failure = drained.unavailable
        log.info("replies stay queued: %s", drained.unavailable)
