"""The command line's common ground: the exit codes, the state every command gets, the group, logging."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import click

from dsr_mailbot.config import Config, load_config
from dsr_mailbot.store.database import Store

# 1 is an answer, never an error: `requests overdue` (something is late), `audit verify` (the chain is broken),
# `suppressions check` (not on the list).  Unexpected errors exit 70, as sysexits(3) says.
EX_OK, EX_SOFTWARE, EX_USAGE, EX_DATAERR, EX_TEMPFAIL, EX_CONFIG = 0, 70, 64, 65, 75, 78


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
# Libraries whose INFO lines would repeat addresses or URLs (httpx2 logs every request's URL, which may carry a token).
QUIET_LIBRARIES = ("imapclient", "mailparser", "sqlalchemy", "aiosmtpd", "charset_normalizer", "alembic", "httpx2",
                   "httpcore2", "httpx", "httpcore")


def configure_logging(verbosity: int) -> None:
    """Log to stderr; -v info, -vv debug for dsr-mailbot's own (personal-data-free) messages only."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
    # APScheduler reports every job run at INFO; its warnings (a skipped or late run) matter.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def actor() -> str:
    """Who ran the command: the login behind sudo if there is one, else the current user."""
    import getpass

    try:
        return f"cli:{os.environ.get('SUDO_USER') or getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"
