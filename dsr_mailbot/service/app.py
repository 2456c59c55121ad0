"""Wiring: a :class:`~dsr_mailbot.pipeline.Services` from a configuration.

Preconditions are checked here, before any mail is touched: the database
schema exists, the key file can be read or created, every reply template
renders in every language.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dsr_mailbot.config import Config
from dsr_mailbot.keys import keyring_for
from dsr_mailbot.pipeline import RunReport, Services, run_once
from dsr_mailbot.reply import Renderer
from dsr_mailbot.send import FileTransport, SmtpTransport, Transport
from dsr_mailbot.source import open_source
from dsr_mailbot.store import Store


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
