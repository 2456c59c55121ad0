"""``web``: the operator console (serve it, make a password hash)."""

from __future__ import annotations

import logging
import sys

import click

from dsr_mailbot.cli.base import (
    EX_OK,
    CliState,
    cli,
    configure_logging,
    log,
)
from dsr_mailbot.errors import ConfigError


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

    from argon2 import PasswordHasher

    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        raise click.UsageError("no password on stdin (one line, not empty)")
    click.echo(PasswordHasher().hash(password))  # argon2-cffi's defaults: RFC 9106's second recommendation
    return EX_OK
