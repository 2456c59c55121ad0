"""``check``: the whole deployment tried before the first run (dsr_mailbot/deployment/)."""

from __future__ import annotations

from collections import Counter

import click

from dsr_mailbot.cli.base import CliState, cli, pass_state


@cli.command("check")
@pass_state
def check(state: CliState) -> int:
    """Try every part as a run would, changing nothing: the mailbox, SMTP (no message sent), the store, the
    systems, the templates, the acts directory, the domains' MX, SPF, DMARC and DKIM.  A line for each; exit 0
    when nothing failed (warnings allowed), 78 when something must be changed, 75 when a server was unreachable."""
    from dsr_mailbot.deployment.checks import check_deployment
    from dsr_mailbot.deployment.findings import exit_code

    findings = check_deployment(state.config)
    for finding in findings:
        click.echo(finding.line())
    counts = Counter(finding.status.value for finding in findings)
    code = exit_code(findings)
    click.echo(", ".join(f"{counts[name]} {name}" for name in ("pass", "warn", "fail", "unreachable", "skipped"))
               + f": exit {code}")
    return code
