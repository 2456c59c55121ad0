"""``users hold``, ``users release``, ``users holds``: blocking instead of destruction (store/holds.py)."""

from __future__ import annotations

import json
from datetime import datetime, time
from zoneinfo import ZoneInfo

import click

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.cli.base import EX_OK, EX_USAGE, CliState, actor, pass_state
from dsr_mailbot.cli.store import users
from dsr_mailbot.store.models import HoldKind


def _address(value: str) -> str:
    address = normalise_address(value.strip())
    if address is None:
        raise click.BadParameter("not an e-mail address", param_hint="ADDRESS")  # not echoed: personal data
    return address


@users.command("hold")
@click.argument("address")
@click.option("--ground", required=True, help="The legal ground the data are kept on (shown to the person).")
@click.option("--until", "until_day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="The hold's last day, in [policy] timezone (required for --kind retain).")
@click.option("--kind", type=click.Choice([k.value for k in HoldKind]), default=HoldKind.BLOCK.value,
              show_default=True, help="block: destruction impossible within the term (at most [policy] "
                                      "max_block_days after the withdrawal); retain: another legal ground.")
@pass_state
def users_hold(state: CliState, address: str, ground: str, until_day: datetime | None, kind: str) -> int:
    """Keep ADDRESS's data after a withdrawal, blocked or on another ground, until the hold ends."""
    from dsr_mailbot.store.holds import place_hold
    from dsr_mailbot.store.keys import keyring_for
    from dsr_mailbot.store.models import utcnow

    email, policy = _address(address), state.config.policy
    ground = " ".join(ground.split())
    if not ground or len(ground) > 500:
        raise click.BadParameter("give the ground in 1 to 500 characters", param_hint="--ground")
    if kind == HoldKind.RETAIN and until_day is None:
        click.echo("dsr-mailbot: users hold: --kind retain needs --until, the day its ground ends", err=True)
        return EX_USAGE
    zone = ZoneInfo(policy.timezone)
    until = datetime.combine(until_day.date(), time(23, 59, 59), zone) if until_day else None
    keyring = keyring_for(state.config.secret_key, state.config.key_file)
    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        moved = place_hold(session, email, kind=HoldKind(kind), ground=ground, until=until, actor=actor(),
                           now=utcnow(), subject_ref=keyring.subject_ref(email), max_block_days=policy.max_block_days)
    when = f"; their withdrawal's erasure moved to {moved.astimezone(zone).date()}" if moved else ""
    click.echo(f"held ({kind}){when}")
    return EX_OK


@users.command("release")
@click.argument("address")
@pass_state
def users_release(state: CliState, address: str) -> int:
    """End ADDRESS's hold: data a withdrawal left under it are destroyed by the next erasure pass."""
    from dsr_mailbot.store.holds import release_hold
    from dsr_mailbot.store.keys import keyring_for
    from dsr_mailbot.store.models import utcnow

    email = _address(address)
    keyring = keyring_for(state.config.secret_key, state.config.key_file)
    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        released = release_hold(session, email, actor=actor(), now=utcnow(), subject_ref=keyring.subject_ref(email))
    if not released:
        click.echo("dsr-mailbot: users release: no hold for that address", err=True)
        return EX_USAGE
    click.echo("released")
    return EX_OK


@users.command("holds")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@pass_state
def users_holds(state: CliState, fmt: str) -> int:
    """Every hold: address, kind, ground, until, and the erasure date once the person withdrew."""
    from dsr_mailbot.store.holds import held_people

    store = state.store()
    store.check_schema()
    zone = ZoneInfo(state.config.policy.timezone)
    with store.transaction() as session:
        found = held_people(session)

    def day(value: datetime | None) -> str | None:
        return value.astimezone(zone).date().isoformat() if value else None

    rows = [{"address": p.hold.email, "kind": p.hold.kind, "ground": p.hold.ground, "until": day(p.hold.until),
             "erasure_due": day(p.erasure_due_at)} for p in found]
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return EX_OK
    for row in rows:
        click.echo(f"{row['address']}  {row['kind']:<6} until {row['until'] or '-':<10}  erasure "
                   f"{row['erasure_due'] or '(no withdrawal)'}  {row['ground']}")
    click.echo(f"{len(rows)} hold(s)")
    return EX_OK
