"""The ``dsr-mailbot`` command line.

Command names and options are a contract: scripts outside the repository
call them.  Exit codes follow sysexits(3), so that cron and systemd can act:

====  ==========================================================
0     done
1     an answer, never an error: something is late (``requests overdue``), the audit chain is broken
      (``audit verify``), the address is not suppressed (``suppressions check``)
70    anything else went wrong (the line on stderr says what; EX_SOFTWARE)
64    the command line was wrong (EX_USAGE)
65    the input file was refused (EX_DATAERR; ``users import``)
75    a server was unreachable; the work is retried next run (EX_TEMPFAIL)
78    the configuration is wrong (EX_CONFIG)
====  ==========================================================

Every failure prints exactly one line on stderr, without personal data
(``users import`` adds one line per bad row, naming line and column only).
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

# Each module registers its commands on the group.
import dsr_mailbot.cli.auth
import dsr_mailbot.cli.deployment
import dsr_mailbot.cli.holds
import dsr_mailbot.cli.requests
import dsr_mailbot.cli.running
import dsr_mailbot.cli.store
import dsr_mailbot.cli.suppressions
import dsr_mailbot.cli.web  # noqa: F401
from dsr_mailbot.cli.base import EX_CONFIG, EX_OK, EX_SOFTWARE, EX_TEMPFAIL, EX_USAGE, cli, configure_logging
from dsr_mailbot.errors import ConfigError, DsrMailbotError, where_raised

__all__ = ["cli", "configure_logging", "main"]


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
