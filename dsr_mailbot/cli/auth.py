"""``auth login``: the mailbox owner's first OAuth2 consent, written to the token file (credentials/consent.py)."""

from __future__ import annotations

import click

from dsr_mailbot.cli.base import EX_OK, CliState, cli, pass_state
from dsr_mailbot.errors import ConfigError


@cli.group()
def auth() -> None:
    """OAuth2 for the mail servers ([imap] / [smtp] auth = "oauth2")."""


@auth.command("login")
@click.option("--smtp", "for_smtp", is_flag=True, help="The [smtp] login's token instead of the [imap] one.")
@pass_state
def auth_login(state: CliState, for_smtp: bool) -> int:
    """Ask the mailbox owner's consent and store the refresh token: a device code for Microsoft, a browser on
    127.0.0.1 for the others (prints what to open; see README, "OAuth2")."""
    from dsr_mailbot.credentials.consent import login

    config = state.config
    section = config.smtp if for_smtp else config.imap
    name = "smtp" if for_smtp else "imap"
    if section is None or section.oauth2 is None:
        raise ConfigError(f'[{name}] auth = "oauth2" and an [{name}.oauth2] table are needed for auth login')
    login(section.oauth2, "smtp" if for_smtp else "imap", name, say=lambda line: click.echo(line, err=True))
    click.echo(f"dsr-mailbot: the refresh token is in {section.oauth2.token_file} (mode 0600)", err=True)
    return EX_OK
