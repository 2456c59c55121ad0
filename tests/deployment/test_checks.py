"""``dsr-mailbot check`` against a whole deployment on real servers: Dovecot, SMTP, SQLite, NSD for DNS.

A line for each part; exit 0 when nothing failed (warnings allowed), 78 when
something must be changed, 75 when a server could not be reached.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from dsr_mailbot.store.database import Store
from tests.dns_server import AuthoritativeDns
from tests.harness import PROCESSED, Bot
from tests.oauth_servers import RESTRICTED_FOLDER
from tests.servers import Dovecot, ImapAccount, free_port
from tests.service.test_mailboxes import SUPPORT, TYPO, imap_entry, two_mailboxes
from tests.systems.shop import data_map_toml, maildir_config, running_receiver

Zones = Callable[[dict[str, str]], AuthoritativeDns]
DOMAIN = ('@ IN MX 10 mx1\nmx1 IN A 192.0.2.25\n@ IN TXT "v=spf1 mx -all"\n'
          '_dmarc IN TXT "v=DMARC1; p=reject"\nmail._domainkey IN TXT "v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0B"\n')
OTHER_SPELLING = "@ IN MX 10 mx1.smarthings.kz.\n"


def configure(bot: Bot, dns: AuthoritativeDns, acts: Path, helo: str | None = "mail.smarthings.kz") -> None:
    bot.write_config(extra=f'acts_dir = "{acts}"\n[check]\nnameservers = ["{dns.nameserver}"]\n'
                           f'dkim_selector = "mail"\n')
    if helo:
        text = bot.config_path.read_text()
        bot.config_path.write_text(text.replace('from_address = "support@smarthings.kz"\n',
                                                f'from_address = "support@smarthings.kz"\nhelo_name = "{helo}"\n'))


def lines(output: str) -> dict[str, str]:
    """The findings as "area: text" → status."""
    found = {}
    for line in output.splitlines():
        match = re.match(r"(PASS|WARN|FAIL|UNREACHABLE|SKIPPED)\s+(\S+)\s+(.*)", line)
        if match:
            found[f"{match.group(2)}: {match.group(3)}"] = match.group(1)
    return found


def status_of(found: dict[str, str], start: str) -> list[str]:
    return [status for text, status in found.items() if text.startswith(start)]


def test_a_sound_deployment_passes_every_check_and_changes_nothing(bot: Bot, dns_zones: Zones,
                                                                     tmp_path: Path) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": OTHER_SPELLING})
    configure(bot, dns, tmp_path / "acts")
    bot.account.append(b"From: a@example.kz\r\nSubject: hello\r\n\r\nhi\r\n", folder=PROCESSED)
    before = bot.account.snapshot("INBOX"), bot.account.snapshot(PROCESSED)
    result = bot.cli("check")
    assert result.returncode == 0, result.stdout + result.stderr
    found = lines(result.stdout)
    assert status_of(found, f"imap: login as {bot.account.username}") == ["PASS"]
    assert status_of(found, "imap: the server offers") == ["PASS", "PASS", "PASS"]  # IDLE, MOVE, UIDPLUS
    assert status_of(found, "imap: rights") == ["SKIPPED"]  # this Dovecot has no ACL plugin
    assert status_of(found, "smtp: 127.0.0.1") == ["PASS"] and "nothing sent" in result.stdout
    assert bot.smtp.handler.ehlo_names == ["mail.smarthings.kz"] and bot.smtp.messages == []
    assert status_of(found, "store: sqlite: schema at revision") == ["PASS"]
    assert status_of(found, "templates:") == ["PASS"] and status_of(found, "systems:") == ["SKIPPED"]
    assert status_of(found, "acts:") == ["PASS"] and not (tmp_path / "acts").exists()
    assert status_of(found, "dns: MX of smarthings.kz") == ["PASS"]
    assert status_of(found, "dns: MX of smarththings.kz") == ["PASS"]
    assert status_of(found, "dns: SPF") == ["PASS"] and status_of(found, "dns: DMARC") == ["PASS"]
    assert status_of(found, "dns: DKIM key mail._domainkey.smarthings.kz") == ["PASS"]
    assert result.stdout.splitlines()[-1] == f"{len(found) - 2} pass, 0 warn, 0 fail, 0 unreachable, 2 skipped: exit 0"
    assert (bot.account.snapshot("INBOX"), bot.account.snapshot(PROCESSED)) == before


def test_dmarc_at_p_none_and_a_missing_processed_folder_warn_but_pass(bot: Bot, dns_zones: Zones,
                                                                      tmp_path: Path) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN.replace("p=reject", "p=none"), "smarththings.kz": OTHER_SPELLING})
    configure(bot, dns, tmp_path / "acts", helo=None)
    result = bot.cli("check")
    found = lines(result.stdout)
    assert result.returncode == 0, result.stdout
    assert status_of(found, "dns: DMARC") == ["WARN"]
    assert status_of(found, f"imap: processed folder '{PROCESSED}' does not exist yet") == ["WARN"]
    assert PROCESSED not in bot.account.folders()  # looked up, not created


def test_no_spf_a_readable_acts_directory_and_an_empty_store_fail_with_78(bot: Bot, dns_zones: Zones,
                                                                          tmp_path: Path) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN.replace('@ IN TXT "v=spf1 mx -all"\n', ""),
                     "smarththings.kz": OTHER_SPELLING})
    acts = tmp_path / "acts"
    acts.mkdir(mode=0o755)
    acts.chmod(0o755)
    configure(bot, dns, acts)
    empty = tmp_path / "empty.db"
    text = bot.config_path.read_text()
    bot.config_path.write_text(re.sub(r'url = "[^"]+"', f'url = "sqlite:///{empty}"', text, count=1))
    result = bot.cli("check")
    assert result.returncode == 78, result.stdout
    found = lines(result.stdout)
    assert status_of(found, "dns: SPF of smarthings.kz: no v=spf1 record") == ["FAIL"]
    assert status_of(found, "acts: [policy] acts_dir") == ["FAIL"] and "chmod 700" in result.stdout
    assert "run 'dsr-mailbot db init'" in result.stdout
    assert status_of(found, f"imap: login as {bot.account.username}") == ["PASS"]  # the rest still checked


def test_a_server_that_cannot_be_reached_exits_75_and_the_others_are_still_checked(
        bot: Bot, dns_zones: Zones, tmp_path: Path) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": OTHER_SPELLING})
    configure(bot, dns, tmp_path / "acts")
    text = bot.config_path.read_text()
    bot.config_path.write_text(text.replace(f"port = {bot.account.port}", f"port = {free_port()}", 1))
    result = bot.cli("check")
    assert result.returncode == 75, result.stdout
    found = lines(result.stdout)
    assert status_of(found, "imap:") == ["UNREACHABLE"]
    assert status_of(found, "smtp: 127.0.0.1") == ["PASS"] and status_of(found, "dns: SPF") == ["PASS"]


def test_a_wrong_password_is_a_failure_not_an_outage(bot: Bot, dns_zones: Zones, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": OTHER_SPELLING})
    configure(bot, dns, tmp_path / "acts")
    text = bot.config_path.read_text()
    bot.config_path.write_text(text.replace(f'password = "{bot.account.password}"', 'password = "wrong"', 1))
    result = bot.cli("check")
    assert result.returncode == 78
    assert status_of(lines(result.stdout), "imap: [imap] username/password: login refused") == ["FAIL"]


def test_the_schema_line_names_the_revision(bot: Bot, dns_zones: Zones, tmp_path: Path) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": OTHER_SPELLING})
    configure(bot, dns, tmp_path / "acts")
    head = Store(bot.db_url).schema_state().head
    assert f"schema at revision {head} (current)" in bot.cli("check").stdout


def test_an_oauth2_deployment_shows_each_login_and_the_folders_rights(
        oauth_bot: Bot, dns_zones: Zones, tmp_path: Path) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": OTHER_SPELLING})
    text = oauth_bot.config_path.read_text()
    with oauth_bot.account.client() as client:
        client.create_folder(RESTRICTED_FOLDER)  # its owner may list and read it, no more (the global ACL)
    oauth_bot.config_path.write_text(
        text.replace(f'processed_folder = "{PROCESSED}"', f'processed_folder = "{RESTRICTED_FOLDER}"')
        + f'\n[check]\nnameservers = ["{dns.nameserver}"]\n')
    result = oauth_bot.cli("check")
    assert result.returncode == 78, result.stdout
    found = lines(result.stdout)
    mailbox = oauth_bot.account.username
    assert status_of(found, f"imap: login as {mailbox} at 127.0.0.1:{oauth_bot.account.port} (OAUTHBEARER)") == [
        "PASS"]
    assert status_of(found, "imap: rights on 'INBOX': lrwstipekxacd") == ["PASS"]
    assert status_of(found, f"imap: rights on '{RESTRICTED_FOLDER}': lr, missing si") == ["FAIL"]
    assert status_of(found, f"smtp: 127.0.0.1:{oauth_bot.smtp.port}, none: login as {mailbox} (OAUTHBEARER)") == [
        "PASS"]


def test_the_data_maps_systems_are_checked_as_systems_check_does(tmp_path: Path, dns_zones: Zones,
                                                                 sqlite_shop: tuple[str, Engine]) -> None:
    shop_url, _engine = sqlite_shop
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": OTHER_SPELLING})
    with running_receiver(tmp_path, "mailer secret", subscribers=()) as (mailer_url, _database):
        path = maildir_config(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}",
                              data_map_toml(shop_url, mailer_url, url_env="SHOP_URL"))
        path.write_text(path.read_text() + f'\n[check]\nnameservers = ["{dns.nameserver}"]\n')
        done = subprocess.run([sys.executable, "-m", "dsr_mailbot", "-c", str(path), "check"], capture_output=True,
                              text=True, timeout=120, check=False,
                              env={**os.environ, "SHOP_URL": shop_url, "MAILER_SECRET": "mailer secret"})
    found = lines(done.stdout)
    assert status_of(found, "systems: Shop (sql): reachable; tables as mapped: b_user") == ["PASS"]
    assert status_of(found, "systems: Mailer (http): reachable") == ["PASS"]
    assert status_of(found, "systems: Shop: newsletter: ADDR has no index") == ["WARN"]
    assert shop_url not in done.stdout


def test_each_of_several_mailboxes_is_checked_and_named(bot: Bot, dovecot: Dovecot, dns_zones: Zones,
                                                        tmp_path: Path) -> None:
    second = dovecot.new_account()
    # Replies come from each mailbox's address: both domains need SPF, DMARC and a DKIM key now.
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": DOMAIN})
    configure(bot, dns, tmp_path / "acts")
    down = ImapAccount(port=free_port(), username="nobody", dovecot=dovecot)
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT), imap_entry("typo", second, TYPO),
                  extra=imap_entry("privacy", down, "privacy@smarthings.kz"))
    result = bot.cli("check")
    found = lines(result.stdout)
    assert result.returncode == 75, result.stdout
    assert status_of(found, f'imap: "support": login as {bot.account.username}') == ["PASS"]
    assert status_of(found, f'imap: "typo": login as {second.username}') == ["PASS"]
    assert status_of(found, 'imap: "privacy": ') == ["UNREACHABLE"]
    assert status_of(found, "dns: SPF of smarththings.kz") == ["PASS"]


def test_auth_login_asks_which_of_several_mailboxes(bot: Bot, dovecot: Dovecot) -> None:
    second = dovecot.new_account()
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT), imap_entry("typo", second, TYPO))
    asked = bot.cli("auth", "login")
    assert asked.returncode == 64 and "--mailbox NAME: one of support, typo" in asked.stderr
    wrong = bot.cli("auth", "login", "--mailbox", "sales")
    assert wrong.returncode == 64 and "not in the configuration" in wrong.stderr
    password = bot.cli("auth", "login", "--mailbox", "typo")
    assert password.returncode == 78 and '[mailboxes.typo] auth = "oauth2"' in password.stderr


def test_rights_are_asked_of_folders_whose_names_need_quoting_or_utf7(oauth_bot: Bot, dns_zones: Zones) -> None:
    dns = dns_zones({"smarthings.kz": DOMAIN, "smarththings.kz": OTHER_SPELLING})
    processed = "Обработано DSR"  # a space (quoted on the wire) and Cyrillic (modified UTF-7, RFC 3501 §5.1.3)
    with oauth_bot.account.client() as client:
        client.create_folder(processed)
    text = oauth_bot.config_path.read_text()
    oauth_bot.config_path.write_text(
        text.replace(f'processed_folder = "{PROCESSED}"', f'processed_folder = "{processed}"')
        + f'\n[check]\nnameservers = ["{dns.nameserver}"]\n')
    result = oauth_bot.cli("check")
    found = lines(result.stdout)
    assert status_of(found, f"imap: rights on '{processed}': lrwstipekxacd") == ["PASS"], result.stdout + result.stderr
    assert status_of(found, "imap: rights on 'INBOX': lrwstipekxacd") == ["PASS"]
