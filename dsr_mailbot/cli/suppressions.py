"""``suppressions export`` and ``suppressions check``: the hashed list of addresses that must get no marketing."""

from __future__ import annotations

import click

from dsr_mailbot.cli.base import EX_OK, CliState, cli, pass_state

NOT_SUPPRESSED = 1  # `check`'s answer "no"; every error exits 70, 75 or 78, never 1


@cli.group()
def suppressions() -> None:
    """Addresses that opted out while no system knew them, as SHA-256 of the normal form (lower-case hex)."""


@suppressions.command("export")
@pass_state
def suppressions_export(state: CliState) -> int:
    """One hash per line, in hash order: the form mailing tools load as a hashed suppression list."""
    from dsr_mailbot.store.suppressions import suppressed_hashes

    store = state.store()
    store.check_schema()
    last = ""
    while True:
        with store.transaction() as session:  # a page at a time: a long export never holds SQLite's lock
            page = list(suppressed_hashes(session, after=last))
        if not page:
            return EX_OK
        click.echo("\n".join(page))
        last = page[-1]


@suppressions.command("check")
@click.argument("address")
@pass_state
def suppressions_check(state: CliState, address: str) -> int:
    """Exit 0 when ADDRESS is on the list, 1 when it is not (for scripts; nothing is printed)."""
    from dsr_mailbot.store.suppressions import address_hash, is_suppressed

    if address_hash(address) is None:
        raise click.BadParameter("not a bare e-mail address", param_hint="ADDRESS")  # not echoed: personal data
    store = state.store()
    store.check_schema()
    with store.transaction() as session:
        return EX_OK if is_suppressed(session, address) else NOT_SUPPRESSED
