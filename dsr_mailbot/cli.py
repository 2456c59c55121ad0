"""The ``dsr-mailbot`` command line.

Command names and options are a contract: scripts outside the repository
call them.  Exit codes follow sysexits(3), so that cron and systemd can act:

====  ==========================================================
0     done
1     anything else went wrong (the line on stderr says what)
64    the command line was wrong (EX_USAGE)
65    the input file was refused (EX_DATAERR; ``users import``)
75    a server was unreachable; the work is retried next run (EX_TEMPFAIL)
78    the configuration is wrong (EX_CONFIG)
====  ==========================================================

Every failure prints exactly one line on stderr, without personal data
(``users import`` adds one line per bad row, naming line and column only).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from zoneinfo import ZoneInfo

import click
from sqlmodel import select

from dsr_mailbot.config import Config, load_config
from dsr_mailbot.errors import ConfigError, DsrMailbotError, where_raised
from dsr_mailbot.store.database import Store, all_requests
from dsr_mailbot.store.models import AuditEvent, Request, RequestState

if TYPE_CHECKING:
    from dsr_mailbot.service.review import ReviewAction

EX_OK, EX_SOFTWARE, EX_USAGE, EX_DATAERR, EX_TEMPFAIL, EX_CONFIG = 0, 1, 64, 65, 75, 78
log = logging.getLogger("dsr_mailbot")


@dataclass
class CliState:
    config_path: Path
    _config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def store(self) -> Store:
        return self.config.open_store()


pass_state = click.make_pass_decorator(CliState)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c", "--config", "config_path", type=click.Path(path_type=Path), envvar="DSR_MAILBOT_CONFIG",
    default="dsr-mailbot.toml", show_default=True, help="Configuration file (TOML).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.pass_context
def cli(ctx: click.Context, config_path: Path, verbose: int) -> None:
    """Answer data-subject requests that arrive in the support mailbox."""
    configure_logging(verbose)
    ctx.obj = CliState(config_path)


# Libraries whose debug output quotes mail, addresses or SQL parameters.
QUIET_LIBRARIES = ("imapclient", "mailparser", "sqlalchemy", "aiosmtpd", "charset_normalizer", "alembic")


def configure_logging(verbosity: int) -> None:
    """Log to stderr; -v info, -vv debug for dsr-mailbot's own (personal-data-free) messages only."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    # APScheduler reports every job run at INFO; its warnings (a skipped or late run) matter.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@cli.group()
def db() -> None:
    """The database."""


@db.command("init")
@pass_state
def db_init(state: CliState) -> int:
    """Create the tables, or upgrade them to this version (safe to run again)."""
    return _upgrade(state)


@db.command("upgrade")
@pass_state
def db_upgrade(state: CliState) -> int:
    """Upgrade the schema to this version's newest migration (creating it when empty)."""
    return _upgrade(state)


def _upgrade(state: CliState) -> int:
    from dsr_mailbot.store.keys import keyring_for

    config = state.config
    revision = state.store().init_schema(keyring_for(config.secret_key, config.key_file))
    click.echo(f"database ready (schema revision {revision})")
    return EX_OK


@db.command("current")
@pass_state
def db_current(state: CliState) -> int:
    """Print the schema's revision and the newest one this version knows."""
    from dsr_mailbot.store.schema import schema_state

    found = schema_state(state.store().engine)
    revision = found.revision or ("first release (no revision recorded)" if found.tables else "empty")
    click.echo(f"current: {revision}\nhead: {found.head}")
    return EX_OK


@cli.command()
@click.option("--month", help="YYYY-MM, in [policy] timezone (default: this month).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_state
def report(state: CliState, month: str | None, fmt: str) -> int:
    """A month's requests: counts by intent and state, working days to answer, late answers, erasures."""
    from dsr_mailbot.replies.report import load_month, month_bounds, report_lines
    from dsr_mailbot.store.models import utcnow

    policy = state.config.policy
    now = utcnow()
    month = month or now.astimezone(ZoneInfo(policy.timezone)).strftime("%Y-%m")
    try:
        month_bounds(month)
    except ValueError as exc:
        raise click.UsageError(f"--month: expected YYYY-MM, got {month!r}") from exc
    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        result = load_month(session, month, now, policy).report
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo("\n".join(report_lines(result)))
    return EX_OK


@cli.command()
@click.option("--template", "template_name", type=click.Choice(["policy-change"]), required=True,
              help="The notice to send.")
@click.option("--campaign", required=True, help="Names this sending: the same campaign reaches each user once.")
@click.option("--dry-run", is_flag=True, help="Count who would receive it; queue and send nothing.")
@pass_state
def notify(state: CliState, template_name: str, campaign: str, dry_run: bool) -> int:
    """Notify every user who has not withdrawn consent (policy 7.2), exactly once per campaign, throttled."""
    import sys
    import time

    from rich.progress import Progress

    from dsr_mailbot.replies.notices import NOTICE_TEMPLATES, check_campaign, waiting
    from dsr_mailbot.replies.send import drain_outbox
    from dsr_mailbot.service.app import build_services
    from dsr_mailbot.service.campaign import queue_campaign
    from dsr_mailbot.service.locks import run_lock_for

    config = state.config
    check_campaign(campaign)
    template = NOTICE_TEMPLATES[template_name]
    services = build_services(config, carrying_out=False)
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
                left = waiting(session, campaign)
            sending = progress.add_task("sending", total=left)
            while left:
                drained = drain_outbox(services.store, services.transport, config.reply_from,
                                       notices_per_minute=config.notices_per_minute,
                                       notice_check=services.notice_check)
                if drained.unavailable:
                    click.echo(f"dsr-mailbot: notices stay queued, sent by the next run: {drained.unavailable}",
                               err=True)
                    return EX_TEMPFAIL
                with services.store.transaction() as session:
                    now_left = waiting(session, campaign)
                progress.advance(sending, left - now_left)
                if now_left == left:
                    time.sleep(1)  # this minute's notices are sent: wait for the throttle
                left = now_left
        finally:
            if lock is not None:
                lock.release()
    click.echo(f"campaign {campaign}: {counted.recipients} user(s); {counted.queued} queued now; every notice sent")
    return EX_OK


@cli.group()
def audit() -> None:
    """The audit trail: what was done, when, why and by whom, without personal data."""


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl"]), default="jsonl", show_default=True)
@click.option("--since", type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
              help="Only events from this date or time on ([policy] timezone unless an offset is given).")
@pass_state
def audit_export(state: CliState, fmt: str, since: datetime | None) -> int:
    """Every audit event, oldest first, one JSON object per line (the fields are in the README)."""
    from dsr_mailbot.store.database import audit_events_page

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=ZoneInfo(state.config.policy.timezone))
    store = state.store()
    store.check_schema()
    last_id = 0
    while True:
        with store.transaction() as session:
            page = audit_events_page(session, last_id, since)
        if not page:
            return EX_OK
        for event, request_subject_ref in page:
            assert event.id is not None
            last_id = event.id
            click.echo(json.dumps({
                "id": event.id,
                "at": event.at.isoformat(),
                "event": event.event,
                "request_id": event.request_id,
                "subject_ref": event.subject_ref or request_subject_ref,
                "actor": event.actor,
                "detail": event.detail,
            }, ensure_ascii=False, sort_keys=True))


@cli.group()
def users() -> None:
    """The user store: import and export."""


@users.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def users_import(state: CliState, file: Path) -> int:
    """Add users from a CSV file (all rows or none)."""
    from dsr_mailbot.store.users import CsvImportError, import_users, read_users_csv

    if not any(system.kind == "builtin" for system in state.config.data_map):
        click.echo("dsr-mailbot: users import: the data map ([[systems]]) has no builtin system; people are found "
                   "in the systems it lists, and nothing is imported", err=True)
        return EX_USAGE

    try:
        rows = read_users_csv(file.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        click.echo(f"dsr-mailbot: {file}: not UTF-8 text; nothing imported", err=True)
        return EX_DATAERR
    except CsvImportError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        click.echo(f"dsr-mailbot: {exc}", err=True)
        return EX_DATAERR
    store = state.store()
    store.check_schema()
    result = import_users(store, rows, actor=_actor())
    click.echo(f"imported {result.created} user(s); {result.already_present} already present, left unchanged")
    return EX_OK


@users.command("export")
@click.option("--format", "fmt", type=click.Choice(["json"]), default="json", show_default=True)
@pass_state
def users_export(state: CliState, fmt: str) -> int:
    """Print every user with their consent state (contains personal data)."""
    from dsr_mailbot.store.users import export_users

    store = state.store()
    store.check_schema()
    click.echo(json.dumps(export_users(store), ensure_ascii=False, indent=2))
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
        connector = connect(config, system)
        try:
            checks = connector.check()
        except ConfigError as exc:
            click.echo(f"{connector.name} ({system.kind}): wrong mapping: {exc}", err=True)
            worst = EX_CONFIG
            continue
        except DsrMailbotError as exc:
            if not exc.temporary:
                raise
            click.echo(f"{connector.name} ({system.kind}): cannot be reached: {exc}", err=True)
            worst = max(worst, EX_TEMPFAIL) if worst != EX_CONFIG else worst
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
        report = run_once_from_config(config, store)
    finally:
        lock.release()
    if report.temporary_failure:
        click.echo(f"dsr-mailbot: will retry next run: {report.temporary_failure}", err=True)
        return EX_TEMPFAIL
    if not quiet:
        click.echo(report.summary())
    return EX_OK


@cli.group("requests")
def requests_group() -> None:
    """Requests seen so far."""


@requests_group.command("list")
@click.option("--state", "wanted", type=click.Choice([s.value for s in RequestState]), help="Only this state.")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table", show_default=True)
@pass_state
def requests_list(state: CliState, wanted: str | None, fmt: str) -> int:
    """Every request: id, message_id, kind (and every intent), state, received, due, language."""
    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        rows = [_request_dict(r) for r in all_requests(session) if wanted is None or r.state == wanted]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return EX_OK
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "kind", "state", "received_at", "due_at", "language", "outcome / reason", "message_id")
    for row in rows:
        table.add_row(str(row["id"]), "+".join(row["intents"]) or row["kind"], row["state"],
                      row["received_at"][:19], row["due_at"][:19],
                      row["language"], row["outcome"] or row["reason"] or "", row["message_id"])
    Console().print(table)
    return EX_OK


@requests_group.command("overdue")
@click.option("--within", type=click.IntRange(min=0), default=2, show_default=True,
              help="Also list what falls due within this many working days.")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table", show_default=True)
@pass_state
def requests_overdue(state: CliState, within: int, fmt: str) -> int:
    """Open requests that are late or soon due; exit 1 when one is late (for monitoring)."""
    from dsr_mailbot.intents.deadlines import soon_horizon
    from dsr_mailbot.replies.digest import overdue_line
    from dsr_mailbot.store.database import open_requests_due_by
    from dsr_mailbot.store.models import utcnow

    policy = state.config.policy
    now = utcnow()
    store = state.store()
    store.check_schema()
    zone = ZoneInfo(policy.timezone)
    with store.transaction() as session:
        found = list(open_requests_due_by(session, soon_horizon(now, within, policy.calendar, policy.timezone)))
    late = sum(1 for r in found if r.due_at < now)
    if fmt == "json":
        rows = [{"id": r.id, "kind": r.kind, "intents": list(r.intents), "state": r.state,
                 "received_at": r.received_at.astimezone(zone).isoformat(),
                 "due_at": r.due_at.astimezone(zone).isoformat(), "late": r.due_at < now, "reason": r.reason}
                for r in found]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for request in found:
            click.echo(overdue_line(request, now, zone))
        click.echo(f"{late} late, {len(found) - late} due within {within} working day(s)")
    return 1 if late else EX_OK


def _request_dict(request: Request) -> dict[str, Any]:
    return {
        "id": request.id,
        # Once the person is erased only the keyed hash is left (the Message-ID often holds their address).
        "message_id": request.message_id or f"erased (ref {request.message_ref[:12]})",
        "kind": request.kind,  # the primary intent, the subject's
        "intents": list(request.intents),  # every intent of the letter
        "state": request.state,
        "outcome": request.outcome,
        "reason": request.reason,
        "received_at": request.received_at.isoformat(),
        "due_at": request.due_at.isoformat(),
        "language": request.language,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@requests_group.command("show")
@click.argument("request_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["json", "text"]), default="text", show_default=True)
@pass_state
def requests_show(state: CliState, request_id: int, fmt: str) -> int:
    """One request with its events: what a review decision needs, and no more personal data than that."""
    from dsr_mailbot.replies.outbox import mask_address

    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        request = session.get(Request, request_id)
        if request is None:
            raise click.ClickException(f"no request {request_id}")
        events = session.exec(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.id)  # type: ignore[arg-type]
        ).all()
        intent = request.intent or {}
        shown = {
            **_request_dict(request),
            "completed_at": _iso(request.completed_at),
            "mailbox_uid": f"{request.source} {request.uidvalidity}/{request.uid}",  # where the message was found
            "authenticated": request.authenticated,
            "awaiting": {"o": "address on file", "n": "new address"}.get(request.awaiting or ""),
            "confirm_expires_at": _iso(request.confirm_expires_at),
            "related_request_id": request.related_request_id,
            "sender": mask_address(request.reply_address) if request.reply_address else None,
            "fields_asked": sorted(intent.get("changes", {})),
            "problems": [f"{f}:{c}" for f, c in intent.get("problems", [])],
            "events": [
                {"at": e.at.isoformat(), "event": e.event, "actor": e.actor, "detail": e.detail} for e in events
            ],
        }
    if fmt == "json":
        click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
        return EX_OK
    for key, value in shown.items():
        if key != "events":
            click.echo(f"{key:>19}: {value if value is not None else '-'}")
    click.echo("             events:")
    for event in shown["events"]:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items() if v not in (None, [], ""))
        click.echo(f"  {event['at'][:19]}  {event['event']:<24} {event['actor']:<16} {detail}")
    return EX_OK


def _decide(state: CliState, request_id: int, action: ReviewAction) -> int:
    """One decision through the path the console uses too (:mod:`~dsr_mailbot.service.review`)."""
    from dsr_mailbot.lifecycle import DecisionError
    from dsr_mailbot.service.app import build_services
    from dsr_mailbot.service.review import UnknownRequest, decide_request

    services = build_services(state.config)
    try:
        done = decide_request(services, request_id, action, _actor())
    except (UnknownRequest, DecisionError) as exc:
        raise click.ClickException(str(exc)) from exc
    result = f"request {request_id}: {done.state}" + (f" ({done.outcome})" if done.outcome else "")
    if done.due_at is not None:
        result += f", due {done.due_at.astimezone(ZoneInfo(state.config.policy.timezone)).isoformat()}"
    click.echo(result + f"; {done.sent} reply(ies) sent")
    if done.queued_because:
        click.echo(f"dsr-mailbot: reply queued: {done.queued_because}", err=True)
        if done.smtp_unavailable:
            return EX_TEMPFAIL
    return EX_OK


@requests_group.command("approve")
@click.argument("request_id", type=int)
@pass_state
def requests_approve(state: CliState, request_id: int) -> int:
    """Apply a request in review (or waiting for confirmation) and answer it, as the automatic path would."""
    from dsr_mailbot.service.review import Approve

    return _decide(state, request_id, Approve())


@requests_group.command("answer")
@click.argument("request_id", type=int)
@click.option("--file", "answer_file", type=click.File("r", encoding="utf-8"), required=True,
              help="The answer's text (- for standard input), in the person's language.")
@pass_state
def requests_answer(state: CliState, request_id: int, answer_file: Any) -> int:
    """Answer a question (policy 7.1): sent threaded to it, from the operator address; the request is closed."""
    from dsr_mailbot.service.review import Answer

    text = answer_file.read()
    if not text.strip():
        raise click.UsageError("the answer is empty")
    return _decide(state, request_id, Answer(text))


@requests_group.command("extend")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Told to the person in the notice (write it in their language).")
@pass_state
def requests_extend(state: CliState, request_id: int, reason: str) -> int:
    """Extend an open request's deadline once, where the deadline profiles allow it, with a reasoned notice."""
    from dsr_mailbot.service.review import Extend

    if not reason.strip():
        raise click.UsageError("--reason must not be empty")
    return _decide(state, request_id, Extend(reason.strip()))


@requests_group.command("act")
@click.argument("request_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@pass_state
def requests_act(state: CliState, request_id: int, fmt: str) -> int:
    """The act of destruction (RKN Order 179) made when the data of this withdrawal's subject were destroyed."""
    from dsr_mailbot.store.acts import read_act

    act = read_act(state.config.policy.acts_dir, str(request_id))
    if act is None:
        raise click.ClickException(f"no act of destruction for request {request_id} in {state.config.policy.acts_dir}")
    click.echo(json.dumps(act.as_json(), ensure_ascii=False, indent=2) if fmt == "json" else act.as_text(), nl=False)
    if fmt == "json":
        click.echo()
    return EX_OK


@cli.group()
def acts() -> None:
    """Acts of destruction (RKN Order 179), kept apart from the store in [policy] acts_dir."""


@acts.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_state
def acts_list(state: CliState, fmt: str) -> int:
    """Every act kept: its number, when it was made, the request, the categories and the notice's fate."""
    from dsr_mailbot.store.acts import list_acts

    found = list_acts(state.config.policy.acts_dir)
    if fmt == "json":
        click.echo(json.dumps([a.as_json() for a in found], ensure_ascii=False, indent=2))
        return EX_OK
    for act in found:
        click.echo(f"act {act.act_id:<8} made {act.made_at}  request {act.request_id}  "
                   f"{', '.join(act.categories)}  notice {act.notice}")
    click.echo(f"{len(found)} act(s) in {state.config.policy.acts_dir}")
    return EX_OK


@requests_group.command("reject")
@click.argument("request_id", type=int)
@click.option("--reason", required=True, help="Told to the sender, in the reply (write it in their language).")
@pass_state
def requests_reject(state: CliState, request_id: int, reason: str) -> int:
    """Close a request unapplied and tell the sender why."""
    from dsr_mailbot.service.review import Reject

    if not reason.strip():
        raise click.UsageError("--reason must not be empty")
    return _decide(state, request_id, Reject(reason.strip()))


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dsr-demo"), show_default=True, help="Where to build the demo.")
def demo(directory: Path) -> int:
    """Build a demo (SQLite, local Maildir, sample users and mail), run once, show what happened."""
    from dsr_mailbot.demo import run_demo

    run_demo(directory)
    return EX_OK


@cli.group(invoke_without_command=True)
@click.pass_context
def web(ctx: click.Context) -> int:
    """Serve the operator console on [web] listen (put a TLS proxy in front; see the README)."""
    if ctx.invoked_subcommand is not None:
        return EX_OK

    import uvicorn

    from dsr_mailbot.service.app import build_services
    from dsr_mailbot.web.app import create_app, server_config

    state = ctx.find_object(CliState)
    assert state is not None
    config = state.config
    if not config.web.operators:
        raise ConfigError("[[web.operators]]: nobody may log in; add one (dsr-mailbot web hash-password)")
    app = create_app(build_services(config))
    if logging.getLogger().level > logging.INFO:
        configure_logging(1)  # like the daemon: sign-ins, decisions and outages go to the journal
    log.info("console on http://%s:%s/", config.web.host, config.web.port)
    uvicorn.Server(server_config(app, config.web.host, config.web.port)).run()
    return EX_OK


@web.command("hash-password")
def web_hash_password() -> int:
    """Read a password on stdin; print its Argon2id hash for a [[web.operators]] password_hash."""
    import sys

    from argon2 import PasswordHasher

    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise click.UsageError("no password on stdin (one line, not empty)")
    click.echo(PasswordHasher().hash(password))  # argon2-cffi's defaults: RFC 9106's second recommendation
    return EX_OK


def _actor() -> str:
    """Who ran the command: the login behind sudo if there is one, else the current user."""
    import getpass
    import os

    try:
        return f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def main(argv: list[str] | None = None) -> NoReturn:
    # Every file the bot creates holds personal data or a secret (the store and its WAL, replies written to
    # files, acts, the key): private to its owner, whatever umask cron or a shell gives.
    os.umask(0o077)
    try:
        code = cli.main(args=argv, prog_name="dsr-mailbot", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EX_USAGE)
    except click.Abort:
        click.echo("dsr-mailbot: aborted", err=True)
        sys.exit(EX_SOFTWARE)
    except ConfigError as exc:
        click.echo(f"dsr-mailbot: configuration: {exc}", err=True)
        sys.exit(EX_CONFIG)
    except DsrMailbotError as exc:
        click.echo(f"dsr-mailbot: {exc}", err=True)
        sys.exit(EX_TEMPFAIL if exc.temporary else EX_SOFTWARE)
    except Exception as exc:
        click.echo(f"dsr-mailbot: internal error ({where_raised(exc)})", err=True)
        sys.exit(EX_SOFTWARE)
    sys.exit(code if isinstance(code, int) else EX_OK)
