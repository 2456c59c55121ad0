"""Every part of a deployment tried as a run would use it, without changing anything: a finding for each.

The mailbox (login, folders, rights, the capabilities the bot uses), SMTP
(login, no message sent), the store and its schema, the data map's systems,
the templates, the acts directory, and the mail records of the operator's
domains (:mod:`dsr_mailbot.deployment.dns`).  Each part is tried apart: one
that cannot be reached does not hide what the others say.
"""

from __future__ import annotations

import os
import smtplib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dsr_mailbot.config import Config, ImapConfig, MaildirConfig, SmtpConfig
from dsr_mailbot.config.mailboxes import Mailbox
from dsr_mailbot.deployment.dns import domain_findings, resolver_for
from dsr_mailbot.deployment.findings import Finding, Status
from dsr_mailbot.errors import ConfigError, DsrMailbotError

NEEDED_CAPABILITIES = (  # what the bot uses, and what it does without
    ("IDLE", "the daemon polls every [daemon] poll_interval_seconds instead"),
    ("MOVE", "requests are moved by COPY, \\Deleted and UID EXPUNGE instead"),
    ("UIDPLUS", "without UID EXPUNGE, a moved request's copy stays in the folder flagged \\Deleted"),
)
# MYRIGHTS (RFC 4314): read and see the folder, mark, delete and expunge there (a move); insert into the processed.
NEEDED_RIGHTS = {"folder": "lrsted", "processed": "lrsi"}


def _guarded(area: str, check: Callable[[], list[Finding]]) -> list[Finding]:
    """One part's findings; an error the part did not turn into a finding becomes one."""
    try:
        return check()
    except ConfigError as exc:
        return [Finding(area, Status.FAIL, str(exc))]
    except DsrMailbotError as exc:
        return [Finding(area, Status.UNREACHABLE if exc.temporary else Status.FAIL, str(exc))]


def imap_findings(cfg: ImapConfig) -> list[Finding]:
    from dsr_mailbot.mailbox.survey import survey_imap

    found = survey_imap(cfg)
    where = f"{cfg.username} at {cfg.host}:{cfg.port}"
    findings = [Finding("imap", Status.PASS, f"login as {where} ({found.login_method})")]
    if found.folder_problem:
        findings.append(Finding("imap", Status.FAIL, f"[imap] folder {cfg.folder!r}: {found.folder_problem}"))
    else:
        findings.append(Finding("imap", Status.PASS, f"folder {cfg.folder!r} opens (read-only)"))
    findings.append(Finding("imap", Status.PASS, f"processed folder {cfg.processed_folder!r} exists")
                    if found.processed_exists else
                    Finding("imap", Status.WARN, f"processed folder {cfg.processed_folder!r} does not exist yet: "
                                                 f"the first move creates it"))
    if found.rights is None:
        findings.append(Finding("imap", Status.SKIPPED, "rights: the server has no ACL extension (RFC 4314)"))
    else:
        for key, folder in (("folder", cfg.folder), ("processed", cfg.processed_folder)):
            if key == "processed" and not found.processed_exists:
                continue
            held = found.rights.get(folder, "")
            missing = "".join(right for right in NEEDED_RIGHTS[key] if right not in held)
            findings.append(Finding("imap", Status.FAIL, f"rights on {folder!r}: {held or 'none'}, missing "
                                                         f"{missing} (RFC 4314)") if missing else
                            Finding("imap", Status.PASS, f"rights on {folder!r}: {held}"))
    for capability, otherwise in NEEDED_CAPABILITIES:
        findings.append(Finding("imap", Status.PASS, f"the server offers {capability}")
                        if capability in found.capabilities else
                        Finding("imap", Status.WARN, f"the server does not offer {capability}: {otherwise}"))
    return findings


def maildir_findings(cfg: MaildirConfig) -> list[Finding]:
    missing = [part for part in ("cur", "new", "tmp") if not (cfg.path / part).is_dir()]
    if missing:
        return [Finding("mailbox", Status.FAIL, f"[maildir] path {cfg.path}: not a Maildir (no {', '.join(missing)})")]
    if not os.access(cfg.path, os.W_OK | os.X_OK):
        return [Finding("mailbox", Status.FAIL, f"[maildir] path {cfg.path}: not writable by this user")]
    return [Finding("mailbox", Status.PASS, f"Maildir {cfg.path}")]


def smtp_findings(cfg: SmtpConfig) -> list[Finding]:
    from dsr_mailbot.replies.transports import SmtpTransport

    transport = SmtpTransport(cfg)
    try:
        conn = transport.connect()
        try:
            conn.ehlo_or_helo_if_needed()  # a login said it already; without one, say it now to see the name
        except (smtplib.SMTPException, OSError) as exc:
            return [Finding("smtp", Status.UNREACHABLE, f"{cfg.host}:{cfg.port}: EHLO: {type(exc).__name__}")]
        login = f"login as {cfg.username} ({transport.login_method})" if transport.login_method else "no login"
        findings = [Finding("smtp", Status.PASS, f"{cfg.host}:{cfg.port}, {cfg.security}: {login}; nothing sent")]
        name = conn.local_hostname
        findings.append(Finding("smtp", Status.WARN, f"EHLO {name}: an address, not a name; set [smtp] helo_name "
                                                     f"(some servers score or refuse it)")
                        if name.startswith("[") or "." not in name else
                        Finding("smtp", Status.PASS, f"EHLO {name}"))
        return findings
    finally:
        transport.close()


def delivery_findings(config: Config) -> list[Finding]:
    if config.smtp is not None:
        return smtp_findings(config.smtp)
    assert config.file_delivery is not None
    return [_writable_directory("smtp", config.file_delivery.directory, "[file_delivery] directory")]


def _writable_directory(area: str, directory: Path, key: str) -> Finding:
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        return Finding(area, Status.FAIL, f"{key} {directory}: {existing} is not writable by this user")
    if directory.exists() and directory.stat().st_mode & 0o077:
        mode = directory.stat().st_mode & 0o777
        return Finding(area, Status.FAIL, f"{key} {directory}: others can read it (mode {mode:o}); chmod 700")
    return Finding(area, Status.PASS, f"{key} {directory}" + ("" if directory.exists() else
                                                               " (made, mode 0700, when first needed)"))


def store_findings(config: Config) -> list[Finding]:
    store = config.open_store()
    try:
        store.check_schema()
        state = store.schema_state()
        return [Finding("store", Status.PASS, f"{store.dialect}: schema at revision {state.revision} (current)")]
    finally:
        store.dispose()


def systems_findings(config: Config) -> list[Finding]:
    """Each system of the data map as ``systems check`` tries it (connector.check())."""
    from dsr_mailbot.systems import connect

    if not config.external_systems:
        return [Finding("systems", Status.SKIPPED, "no [[systems]] besides the bot's own store")]
    findings: list[Finding] = []
    for system in config.external_systems:
        connector = connect(config, system)
        try:
            checks = connector.check()
        except DsrMailbotError as exc:  # a wrong mapping or a refusal fails; down is unreachable
            findings.append(Finding("systems", Status.UNREACHABLE if exc.temporary else Status.FAIL,
                                    f"{system.name}: {exc}"))
            continue
        finally:
            connector.close()
        tables = ", ".join(check.table for check in checks)
        findings.append(Finding("systems", Status.PASS, f"{system.name} ({system.kind}): reachable"
                                + (f"; tables as mapped: {tables}" if tables else "")))
        findings += [Finding("systems", Status.WARN, f"{system.name}: {check.table}: {warning}")
                     for check in checks for warning in check.warnings]
    return findings


def template_findings(config: Config) -> list[Finding]:
    from dsr_mailbot.reading.classify import shipped_markers, with_extra
    from dsr_mailbot.replies.render import Renderer
    from dsr_mailbot.service.app import check_registry

    renderer = Renderer(config.templates_dir, policy=config.policy)
    check_registry(with_extra(shipped_markers(), config.extra_markers), config.policy.deadline_profile, renderer)
    where = config.templates_dir or "the shipped templates"
    return [Finding("templates", Status.PASS, f"every template renders, in every language ({where})")]


def acts_findings(config: Config) -> list[Finding]:
    return [_writable_directory("acts", config.policy.acts_dir, "[policy] acts_dir")]


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def dns_findings(config: Config) -> list[Finding]:
    """Mail to every support address must arrive; replies from every address they come from must pass."""
    senders = [config.reply_from, *(m.reply_from for m in config.mailbox_list if m.reply_from)]
    reply_domains = list(dict.fromkeys(_domain(address) for address in senders))
    mail_domains = list(dict.fromkeys([_domain(address) for address in config.policy.operator_addresses]
                                      + reply_domains))
    return domain_findings(resolver_for(config.check.nameservers), mail_domains, reply_domains,
                           config.check.dkim_selector)


def mailbox_findings(config: Config, mailbox: Mailbox) -> list[Finding]:
    """One mailbox's findings; of several, each line names it."""
    imap, maildir = mailbox.imap, mailbox.maildir
    if imap is not None:
        findings = _guarded("imap", lambda: imap_findings(imap))
    else:
        assert maildir is not None
        findings = _guarded("mailbox", lambda: maildir_findings(maildir))
    if len(config.mailbox_list) == 1:
        return findings
    return [replace(finding, text=f'"{mailbox.name}": {finding.text}') for finding in findings]


def check_deployment(config: Config) -> list[Finding]:
    """Every part's findings, in the order a run meets them."""
    parts: list[tuple[str, Callable[[], list[Finding]]]] = [
        *((mailbox.kind, lambda mailbox=mailbox: mailbox_findings(config, mailbox))
          for mailbox in config.mailbox_list),
        ("smtp", lambda: delivery_findings(config)),
        ("store", lambda: store_findings(config)),
        ("systems", lambda: systems_findings(config)),
        ("templates", lambda: template_findings(config)),
        ("acts", lambda: acts_findings(config)),
        ("dns", lambda: dns_findings(config)),
    ]
    return [finding for area, check in parts for finding in _guarded(area, check)]
