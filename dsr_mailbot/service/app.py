"""Wiring: a :class:`~dsr_mailbot.pipeline.Services` from a configuration.

Preconditions are checked here, before any mail is touched: the database
schema exists, the key file can be read or created, every reply template
renders in every language.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dsr_mailbot.config import Config
from dsr_mailbot.mailbox.imap import ImapSource
from dsr_mailbot.mailbox.maildir import MaildirSource
from dsr_mailbot.mailbox.source import MailSource
from dsr_mailbot.pipeline import RunReport, Services, run_once
from dsr_mailbot.replies.reply import Renderer
from dsr_mailbot.replies.send import FileTransport, SmtpTransport, Transport
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.keys import keyring_for


def open_source(config: Config) -> MailSource:
    """The mailbox the configuration names (not yet opened)."""
    if config.imap is not None:
        return ImapSource(config.imap)
    assert config.maildir is not None
    return MaildirSource(config.maildir)


def make_transport(config: Config) -> Transport:
    if config.smtp is not None:
        return SmtpTransport(config.smtp)
    assert config.file_delivery is not None
    return FileTransport(config.file_delivery.directory)


def build_services(config: Config, store: Store | None = None) -> Services:
    store = store or config.open_store()
    store.check_schema()
    renderer = Renderer(config.templates_dir, operator_name=config.policy.operator_name)
    renderer.check()
    return Services(
        config=config,
        store=store,
        keyring=keyring_for(config.secret_key, config.key_file),
        renderer=renderer,
        transport=make_transport(config),
    )


def run_once_from_config(
    config: Config, store: Store | None = None, clock: Callable[[], datetime] | None = None
) -> RunReport:
    services = build_services(config, store)
    if clock is not None:
        services.clock = clock
    return run_once(services, open_source(config))
