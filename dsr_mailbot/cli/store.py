"""Commands on the store: ``db`` (schema), ``users`` (import, export), ``audit export``, ``report``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from dsr_mailbot.cli.base import (
    EX_DATAERR,
    EX_OK,
    EX_USAGE,
    CliState,
    actor,
    cli,
    pass_state,
)
from dsr_mailbot.cli.progress import counted, progress_on_stderr


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
    found = state.store().schema_state()
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
    from dsr_mailbot.store.audit import audit_events_page, export_line, first_event_since

    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=ZoneInfo(state.config.policy.timezone))
    store = state.store()
    store.check_schema()
    last_id = 0
    if since is not None:
        with store.transaction() as session:
            start = first_event_since(session, since)
        if start is None:
            return EX_OK
        last_id = start
    with progress_on_stderr("exporting events") as advance:
        while True:
            # A page at a time, each its own short transaction, written as it comes: memory holds one page.
            with store.transaction() as session:
                page = audit_events_page(session, last_id, since, limit=EXPORT_PAGE)
            if not page:
                return EX_OK
            click.echo("".join(export_line(event, request_subject_ref) + "\n"
                               for event, request_subject_ref in page), nl=False)
            advance(len(page))
            last_id = page[-1][0].id


EXPORT_PAGE = 5_000  # events per page of ``audit export``: one short transaction and one write each


@audit.command("verify")
@pass_state
def audit_verify(state: CliState) -> int:
    """Follow the hash chain over every event: exit 0 when it holds, 1 naming the first event that does not follow."""
    from collections.abc import Iterator

    from dsr_mailbot.store.audit import chain_head, chained_events
    from dsr_mailbot.store.chain import ChainedEvent, verify

    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        last_id, head = chain_head(session)  # events appended while this runs are left for the next run
    counted = 0

    def events() -> Iterator[ChainedEvent]:
        nonlocal counted
        after = 0
        while True:
            with store.transaction() as session:  # a page at a time, a short transaction each
                page = list(chained_events(session, after, last_id))
            if not page:
                return
            counted += len(page)
            yield from page
            after = page[-1].id

    broken = verify(events(), head)
    if broken is None:
        click.echo(f"audit trail: {counted} events, the chain holds up to event #{last_id} ({head[:16]}…)")
        return EX_OK
    where = f"event #{broken.event_id}" if broken.event_id is not None else "the end"
    after = f" (the last event that follows: #{broken.after})" if broken.after is not None else ""
    click.echo(f"audit trail broken at {where}{after}: {broken.reason}", err=True)
    return 1


@cli.group()
def users() -> None:
    """The user store: import and export."""


@users.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def users_import(state: CliState, file: Path) -> int:
    """Add users from a CSV file (all rows or none)."""
    from dsr_mailbot.store.users import CsvImportError, checked_users_csv, import_users

    if not any(system.kind == "builtin" for system in state.config.data_map):
        click.echo("dsr-mailbot: users import: the data map ([[systems]]) has no builtin system; people are found "
                   "in the systems it lists, and nothing is imported", err=True)
        return EX_USAGE

    try:
        # Read a line at a time, never whole: the rows are checked first, and only then is the store touched.
        with file.open(encoding="utf-8-sig", newline="") as lines, \
                progress_on_stderr("checking rows") as checking, \
                checked_users_csv(counted(lines, checking)) as checked, \
                progress_on_stderr("importing users") as importing:
            store = state.store()
            store.check_schema()
            result = import_users(store, counted(checked.rows(), importing), actor=actor())
    except UnicodeDecodeError:
        click.echo(f"dsr-mailbot: {file}: not UTF-8 text; nothing imported", err=True)
        return EX_DATAERR
    except CsvImportError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        if exc.count > len(exc.problems):
            click.echo(f"{file}: and {exc.count - len(exc.problems)} more problem(s), not listed", err=True)
        click.echo(f"dsr-mailbot: {exc}", err=True)
        return EX_DATAERR
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
