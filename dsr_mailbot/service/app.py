"""Wiring: a :class:`~dsr_mailbot.pipeline.Services` from a configuration.

Preconditions are checked here, before any mail is touched: the database
schema exists, the key file can be read or created, every reply template
renders in every language.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from dsr_mailbot.config import Config
from dsr_mailbot.errors import ConfigError
from dsr_mailbot.intents.deadlines import profiles
from dsr_mailbot.intents.registry import COMMON_TEMPLATES, NOT_INTENTS, REGISTRY
from dsr_mailbot.mailbox.every import EveryMailbox
from dsr_mailbot.mailbox.maildir import MaildirSource
from dsr_mailbot.mailbox.source import Expunging, MailSource
from dsr_mailbot.pipeline import RunReport, Services, run_once
from dsr_mailbot.reading.classify import LANGUAGES, SUBJECT, Marker, MarkerTable, shipped_markers, with_extra
from dsr_mailbot.replies.notices import NOTICE_TEMPLATES
from dsr_mailbot.replies.render import Renderer, sample_contexts
from dsr_mailbot.replies.transports import FileTransport, SmtpTransport, Transport
from dsr_mailbot.store.database import Store
from dsr_mailbot.store.keys import keyring_for
from dsr_mailbot.store.models import RequestKind


def open_source(config: Config) -> MailSource:
    """The mailbox the configuration names, or its view of one mailbox names (not yet opened)."""
    if config.imap is not None:
        from dsr_mailbot.mailbox.imap import ImapSource  # imapclient only for an IMAP mailbox

        return ImapSource(config.imap)
    assert config.maildir is not None
    return MaildirSource(config.maildir)


def every_mailbox(config: Config) -> Expunging:
    """All the watched mailboxes, for erasure and retention (not yet opened)."""
    sources = [open_source(config.for_mailbox(mailbox)) for mailbox in config.mailbox_list]
    return sources[0] if len(sources) == 1 else EveryMailbox(sources)


def mailbox_passes(services: Services) -> list[tuple[Services, MailSource]]:
    """Each mailbox's pass: its view of the services, and its source (not yet opened)."""
    views = [services.for_mailbox(mailbox) for mailbox in services.config.mailbox_list]
    return [(view, open_source(view.config)) for view in views]


def check_registry(markers: Sequence[Marker], profile_names: Sequence[str], renderer: Renderer) -> None:
    """Refuse to start unless every intent in the registry is complete; the message names what is missing."""
    for kind in RequestKind:
        if kind not in REGISTRY and kind not in NOT_INTENTS:
            raise ConfigError(f"intent {kind.value}: no handler in the registry")
    for kind in REGISTRY:
        languages = {m.language for m in markers if m.kind is kind and m.place == SUBJECT}
        if missing := [language for language in LANGUAGES if language not in languages]:
            raise ConfigError(f"intent {kind.value}: no subject markers in {', '.join(missing)}")
        for name in profile_names:
            if kind.value not in profiles()[name]:
                raise ConfigError(f"intent {kind.value}: no deadline in profile {name}")
    renders = [(template, language, context) for kind, spec in REGISTRY.items()
               for template in (*spec.templates, *COMMON_TEMPLATES) for language in LANGUAGES
               for context in sample_contexts(kind.value)]
    # Notices belong to no intent: checked once, not once per intent.
    renders += [(template, language, context) for template in NOTICE_TEMPLATES.values() for language in LANGUAGES
                for context in sample_contexts("")]
    renderer.render_all(renders)  # raises TemplateError, naming the template


def make_transport(config: Config) -> Transport:
    if config.smtp is not None:
        return SmtpTransport(config.smtp)
    assert config.file_delivery is not None
    return FileTransport(config.file_delivery.directory)


def build_services(config: Config, store: Store | None = None) -> Services:
    store = store or config.open_store()
    store.check_schema()
    renderer = Renderer(config.templates_dir, policy=config.policy)
    markers = with_extra(shipped_markers(), config.extra_markers)
    # Every intent complete, or no start; this renders every template in every language, on every branch.
    check_registry(markers, config.policy.deadline_profile, renderer)
    return Services(
        config=config,
        store=store,
        keyring=keyring_for(config.secret_key, config.key_file),
        renderer=renderer,
        transport=make_transport(config),
        markers=MarkerTable.of(markers),
        mailbox=lambda: every_mailbox(config),
    )


def run_once_from_config(
    config: Config, store: Store | None = None, clock: Callable[[], datetime] | None = None,
    on_scanned: Callable[[int], None] | None = None,
) -> RunReport:
    services = build_services(config, store)
    if clock is not None:
        services.clock = clock
    services.on_scanned = on_scanned
    try:
        return run_once(services, mailbox_passes(services))
    finally:
        services.close_connectors()
