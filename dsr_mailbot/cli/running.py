"""Commands that run the bot or reach out: ``run``, ``notify``, ``systems check``, ``demo``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from dsr_mailbot.cli.base import (
    EX_CONFIG,
    EX_OK,
    EX_TEMPFAIL,
    CliState,
    cli,
    configure_logging,
    pass_state,
)
from dsr_mailbot.cli.progress import progress_on_stderr
from dsr_mailbot.errors import ConfigError, DsrMailbotError


@cli.command()
@click.option("--template", "template_name", type=click.Choice(["policy-change"]), required=True,
              help="The notice to send.")
@click.option("--campaign", required=True, help="Names this sending: the same campaign reaches each user once.")
@click.option("--dry-run", is_flag=True, help="Count who would receive it; queue and send nothing.")
@pass_state
def notify(state: CliState, template_name: str, campaign: str, dry_run: bool) -> int:
    """Notify every user who has not withdrawn consent (policy 7.2), exactly once per campaign, throttled."""
    import time

    from rich.progress import Progress

    from dsr_mailbot.replies.notices import NOTICE_TEMPLATES, check_campaign
    from dsr_mailbot.replies.send import drain_outbox
    from dsr_mailbot.service.app import build_services
    from dsr_mailbot.service.campaign import queue_campaign
    from dsr_mailbot.service.locks import run_lock_for
    from dsr_mailbot.store.notices import notices_waiting

    config = state.config
    check_campaign(campaign)
    template = NOTICE_TEMPLATES[template_name]
    services = build_services(config)
    if dry_run:
        counted = queue_campaign(services, campaign, template, dry_run=True)
        click.echo(f"campaign {campaign}: {counted.recipients} user(s) would receive {template_name}; "
                   f"{counted.recipients - counted.queued} already have it queued or sent; nothing queued, "
                   "nothing sent")
        return EX_OK
    with Progress(disable=not sys.stdout.isatty()) as progress:
        queueing = progress.add_task("queueing", total=None)
        counted = queue_campaign(services, campaign, template, advance=lambda n: progress.advance(queueing, n))
        # SQLite serves one sending process: send only without a running bot (it would send them itself).
        lock = run_lock_for(services.store, config.source_name) if not services.store.serves_many_workers else None
        if lock is not None and not lock.try_acquire():
            click.echo(f"campaign {campaign}: {counted.queued} notice(s) queued; the running bot sends them, "
                       f"at most {config.notices_per_minute or 'any number'} a minute")
            return EX_OK
        try:
            with services.store.transaction() as session:
                left = notices_waiting(session, campaign)
            sending = progress.add_task("sending", total=left)
            sent = 0
            while left:
                drained = drain_outbox(services.store, services.transport, config.reply_from,
                                       notices_per_minute=config.notices_per_minute,
                                       notice_check=services.notice_check)
                sent += drained.notices_sent
                if drained.unavailable:
                    click.echo(f"dsr-mailbot: notices stay queued, sent by the next run: {drained.unavailable}",
                               err=True)
                    return EX_TEMPFAIL
                with services.store.transaction() as session:
                    now_left = notices_waiting(session, campaign)
                progress.advance(sending, left - now_left)
                if now_left == left:
                    time.sleep(1)  # this minute's notices are sent: wait for the throttle
                left = now_left
        finally:
            if lock is not None:
                lock.release()
    click.echo(f"campaign {campaign}: {counted.recipients} user(s); {counted.queued} queued now; {sent} sent now; "
               "every notice sent")
    return EX_OK


@cli.group("systems")
def systems_group() -> None:
    """The data map: the systems where the person's data live ([[systems]])."""


@systems_group.command("check")
@pass_state
def systems_check(state: CliState) -> int:
    """Connect to each system and compare its mapping with what is there (0 fine, 75 unreachable, 78 wrong)."""
    from dsr_mailbot.systems import connect

    config, worst = state.config, EX_OK
    for system in config.data_map:
        try:
            connector = connect(config, system)
        except ConfigError as exc:  # a URL that names no database
            click.echo(f"{config.system_label(system)} ({system.kind}): wrong mapping: {exc}", err=True)
            worst = EX_CONFIG
            continue
        try:
            checks = connector.check()
        except ConfigError as exc:
            click.echo(f"{connector.name} ({system.kind}): wrong mapping: {exc}", err=True)
            worst = EX_CONFIG
            continue
        except DsrMailbotError as exc:
            if exc.temporary:
                click.echo(f"{connector.name} ({system.kind}): cannot be reached: {exc}", err=True)
                worst = max(worst, EX_TEMPFAIL) if worst != EX_CONFIG else worst
            else:  # it answered, and refused: a wrong secret or URL, a receiver that does not speak the protocol
                click.echo(f"{connector.name} ({system.kind}): refused the check: {exc}", err=True)
                worst = EX_CONFIG
            continue
        finally:
            connector.close()
        click.echo(f"{connector.name} ({system.kind}): reachable")
        for check in checks:
            index = {True: "indexed", False: "NOT indexed", None: "-"}[check.match_indexed]
            rows = "?" if check.rows is None else f"{'~' if check.estimated else ''}{check.rows:,}"
            click.echo(f"  {check.table}: found; match column {index}; {rows} rows; "
                       f"columns: {', '.join(check.columns)}")
            for warning in check.warnings:
                click.echo(f"  warning: {check.table}: {warning}")
    return worst


@cli.command()
@click.option("--once", is_flag=True, help="One pass, then exit (for cron); without it, run as a daemon.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing when all went well.")
@pass_state
def run(state: CliState, once: bool, quiet: bool) -> int:
    """Process new mail in the support mailbox and send the replies."""
    from dsr_mailbot.service.app import run_once_from_config
    from dsr_mailbot.service.locks import run_lock_for

    config = state.config
    if not once:
        from dsr_mailbot.service.daemon import run_daemon

        if logging.getLogger().level > logging.INFO:
            configure_logging(1)  # a daemon reports outages and recoveries; cron runs stay quiet
        return run_daemon(state.config_path, config)
    store = config.open_store()
    lock = run_lock_for(store, config.source_name)
    if not lock.try_acquire():
        click.echo(f"dsr-mailbot: another run holds the mailbox ({lock.description}); nothing done", err=True)
        return EX_OK
    try:
        with progress_on_stderr("messages scanned") as advance:
            report = run_once_from_config(config, store, on_scanned=advance)
    finally:
        lock.release()
    if report.refused:  # several mailboxes, and one's login refused for good: the others were done
        click.echo(report.summary(), err=quiet)
        for refused in report.refused:
            click.echo(f"dsr-mailbot: configuration: {refused}", err=True)
        return EX_CONFIG
    if report.temporary_failure:
        click.echo(f"dsr-mailbot: will retry next run: {report.temporary_failure}", err=True)
        return EX_TEMPFAIL
    if not quiet:
        click.echo(report.summary())
    return EX_OK


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dsr-demo"), show_default=True, help="Where to build the demo.")
def demo(directory: Path) -> int:
    """Build a demo (SQLite, local Maildir, sample users and mail), run once, show what happened."""
    from dsr_mailbot.demo import run_demo

    run_demo(directory)
    return EX_OK
