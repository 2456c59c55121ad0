"""``auth login``: the mailbox owner's first OAuth2 consent, written to the token file (credentials/consent.py)."""

from __future__ import annotations

import click

from dsr_mailbot.cli.base import EX_OK, CliState, cli, pass_state
from dsr_mailbot.config.mailboxes import section_of
from dsr_mailbot.errors import ConfigError


@cli.group()
def auth() -> None:
    """OAuth2 for the mail servers ([imap] / [smtp] auth = "oauth2")."""


@auth.command("login")
@click.option("--mailbox", "mailbox_name", help="Which of [[mailboxes]] (by name); the only one when omitted.")
@click.option("--smtp", "for_smtp", is_flag=True, help="The [smtp] login's token instead of a mailbox's.")
@pass_state
def auth_login(state: CliState, mailbox_name: str | None, for_smtp: bool) -> int:
    """Ask the mailbox owner's consent and store the refresh token: a device code for Microsoft, a browser on
    127.0.0.1 for the others (prints what to open; see README, "OAuth2")."""
    from dsr_mailbot.credentials.consent import login

    config = state.config
    if for_smtp:
        if mailbox_name is not None:
            raise click.UsageError("--smtp and --mailbox: the SMTP login is one for every mailbox")
        oauth2, section = (config.smtp.oauth2 if config.smtp is not None else None), "smtp"
    else:
        mailboxes = config.mailbox_list
        names = [mailbox.name for mailbox in mailboxes]
        if mailbox_name is None and len(mailboxes) > 1:
            raise click.UsageError(f"--mailbox NAME: one of {', '.join(names)}")
        chosen = next((m for m in mailboxes if mailbox_name in (None, m.name)), None)
        if chosen is None:
            raise click.UsageError(f"--mailbox {mailbox_name}: not in the configuration ({', '.join(names)})")
        source = chosen.imap or chosen.maildir
        assert source is not None  # a mailbox is one or the other
        oauth2 = chosen.imap.oauth2 if chosen.imap is not None else None
        section = section_of(source)
    if oauth2 is None:
        raise ConfigError(f'[{section}] auth = "oauth2" and its oauth2 table are needed for auth login')
    login(oauth2, "smtp" if for_smtp else "imap", section, say=lambda line: click.echo(line, err=True))
    click.echo(f"dsr-mailbot: the refresh token is in {oauth2.token_file} (mode 0600)", err=True)
    return EX_OK
