"""The review queue on the command line: ``requests`` (list, overdue, show, decide) and ``acts``."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import click
from sqlmodel import select

from dsr_mailbot.cli.base import (
    EX_OK,
    EX_TEMPFAIL,
    CliState,
    actor,
    cli,
    pass_state,
)
from dsr_mailbot.shown import shown_time
from dsr_mailbot.store.database import all_requests
from dsr_mailbot.store.models import AuditEvent, Request, RequestState

if TYPE_CHECKING:
    from dsr_mailbot.service.review import ReviewAction
    from dsr_mailbot.store.acts import Act


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

    zone = state.config.policy.timezone
    table = Table("id", "kind", "state", "received", "due", "language", "outcome / reason", "message_id")
    for row in rows:
        table.add_row(str(row["id"]), "+".join(row["intents"]) or row["kind"], row["state"],
                      shown_time(row["received_at"], zone), shown_time(row["due_at"], zone),
                      row["language"], row["outcome"] or row["reason"] or "", row["message_id"])
    Console().print(table)
    return EX_OK


@requests_group.command("overdue")
@click.option("--within", type=click.IntRange(min=0), default=2, show_default=True,
              help="Also list what falls due within this many working days.")
@click.option("--format", "fmt", type=click.Choice(["json", "table"]), default="table", show_default=True)
@pass_state
def requests_overdue(state: CliState, within: int, fmt: str) -> int:
    """Open requests and destructions that are late or soon due; exit 1 when one is late (for monitoring)."""
    from dsr_mailbot.replies.digest import erasure_line, overdue_line
    from dsr_mailbot.store.database import open_requests_due_by
    from dsr_mailbot.store.figures import erasures_due_by
    from dsr_mailbot.store.models import utcnow

    policy = state.config.policy
    now = utcnow()
    store = state.store()
    store.check_schema()
    zone = ZoneInfo(policy.timezone)
    horizon = policy.clock.soon_horizon(now, within)
    with store.transaction() as session:
        found = list(open_requests_due_by(session, horizon))
        erasures = erasures_due_by(session, horizon, state.config.builtin_label or policy.system_name)
    late = sum(1 for r in found if r.due_at < now) + sum(1 for e in erasures if e.due_at < now)
    if fmt == "json":
        rows: list[dict[str, Any]] = [
            {"id": r.id, "kind": r.kind, "intents": list(r.intents), "state": r.state,
             "received_at": r.received_at.astimezone(zone).isoformat(),
             "due_at": r.due_at.astimezone(zone).isoformat(), "late": r.due_at < now, "reason": r.reason}
            for r in found]
        rows += [{"id": e.request_id, "kind": "erasure", "system": e.where,
                  "due_at": e.due_at.astimezone(zone).isoformat(), "late": e.due_at < now} for e in erasures]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for request in found:
            click.echo(overdue_line(request, now, zone))
        for erasure in erasures:
            click.echo(erasure_line(erasure, now, zone))
        click.echo(f"{late} late, {len(found) + len(erasures) - late} due within {within} working day(s)")
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
    zone = state.config.policy.timezone
    for key, value in shown.items():
        if key in ("received_at", "due_at", "completed_at", "confirm_expires_at"):
            value = shown_time(value, zone) if value else None
        if key != "events":
            click.echo(f"{key:>19}: {value if value is not None else '-'}")
    click.echo("             events:")
    for event in shown["events"]:
        detail = ", ".join(f"{k}={v}" for k, v in event["detail"].items() if v not in (None, [], ""))
        click.echo(f"  {shown_time(event['at'], zone)}  {event['event']:<24} {event['actor']:<16} {detail}")
    return EX_OK


def _decide(state: CliState, request_id: int, action: ReviewAction) -> int:
    """One decision through the path the console uses too (:mod:`~dsr_mailbot.service.review`)."""
    from dsr_mailbot.lifecycle import DecisionError
    from dsr_mailbot.service.app import build_services
    from dsr_mailbot.service.review import UnknownRequest, decide_request

    services = build_services(state.config)
    try:
        done = decide_request(services, request_id, action, actor())
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


@requests_group.command("dismiss")
@click.argument("request_id", type=int)
@pass_state
def requests_dismiss(state: CliState, request_id: int) -> int:
    """Close a request in review that is not a data-subject request (a letter for the staff), without a reply."""
    from dsr_mailbot.service.review import Dismiss

    return _decide(state, request_id, Dismiss())


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


DOCUMENT_OPTIONS = (
    click.option("--format", "fmt", type=click.Choice(["text", "json", "pdf"]), default="text", show_default=True),
    click.option("--language", type=click.Choice(["ru", "en"]), default=None,
                 help="The labels' language: ru (for the regulator; the default for pdf) or en (the default for "
                      "text)."),
    click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                 help="Write to this file (mode 0600: it names the person) instead of standard output."),
)


def document_options(command: Any) -> Any:
    for option in reversed(DOCUMENT_OPTIONS):
        command = option(command)
    return command


def read_act_or_fail(state: CliState, request_id: int) -> Act:
    from dsr_mailbot.store.acts import read_act

    act = read_act(state.config.policy.acts_dir, str(request_id))
    if act is None:
        raise click.ClickException(f"no act of destruction for request {request_id} in {state.config.policy.acts_dir}")
    return act


def emit_document(fmt: str, language: str | None, output: Path | None, title: str, data: dict[str, object],
                  lines: Callable[[str], list[str]]) -> None:
    """Text, JSON or PDF of an act or an extract, to standard output or a private file."""
    from dsr_mailbot.replies.documents import pdf

    if fmt == "pdf":
        content = pdf(title, lines(language or "ru"))
    elif fmt == "json":
        content = (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    else:
        content = ("\n".join(lines(language or "en")) + "\n").encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        output.chmod(0o600)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output} ({exc.strerror})") from exc


@requests_group.command("act")
@click.argument("request_id", type=int)
@document_options
@pass_state
def requests_act(state: CliState, request_id: int, fmt: str, language: str | None, output: Path | None) -> int:
    """The act of destruction (RKN Order 179) made when the data of this withdrawal's subject were destroyed."""
    act = read_act_or_fail(state, request_id)
    emit_document(fmt, language, output, f"Act of destruction No. {act.act_id}", act.as_json(), act.lines)
    return EX_OK


@cli.group()
def acts() -> None:
    """Acts of destruction (RKN Order 179), kept apart from the store in [policy] acts_dir."""


@acts.command("extract")
@click.argument("request_id", type=int)
@document_options
@pass_state
def acts_extract(state: CliState, request_id: int, fmt: str, language: str | None, output: Path | None) -> int:
    """The extract from the event log for this act (RKN Order 179): the act's facts and the person's events."""
    from dsr_mailbot.store.extract import load_extract

    act = read_act_or_fail(state, request_id)
    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        extract = load_extract(session, act)
    emit_document(fmt, language, output, f"Event log extract, act No. {act.act_id}", extract.as_json(),
                  extract.lines)
    return EX_OK


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
        click.echo(f"act {act.act_id:<8} made {shown_time(act.made_at, state.config.policy.timezone)}  "
                   f"request {act.request_id}  "
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
