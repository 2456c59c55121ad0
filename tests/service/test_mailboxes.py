"""Several mailboxes ([[mailboxes]]): both spellings of the support address as two accounts on a real Dovecot.

Each mailbox keeps its own cursor and folders; replies come from the address
the request was sent to; the same letter sent to both is one request; one
mailbox down or refused does not stop the other.
"""

from __future__ import annotations

import email
import re
import urllib.request
from email.policy import default
from pathlib import Path

import pytest

from dsr_mailbot.credentials.tokens import StoredToken, write_token_file
from tests.harness import PROCESSED, Bot, DaemonProcess, mail, wait_until
from tests.oauth_servers import CLIENT_ID, OAuthDovecot, OAuthSmtpServer, TokenServer
from tests.servers import Dovecot, ImapAccount, SmtpServer, free_port

IVAN, ANNA = "ivan@example.kz", "anna@example.kz"
SUPPORT, TYPO = "support@smarthings.kz", "support@smarththings.kz"


def imap_entry(name: str, account: ImapAccount, address: str, extra: str = "") -> str:
    return (f'[[mailboxes]]\nname = "{name}"\nkind = "imap"\nhost = "127.0.0.1"\nport = {account.port}\n'
            f'security = "none"\nusername = "{account.username}"\npassword = "{account.password}"\n'
            f'address = "{address}"\nprocessed_folder = "{PROCESSED}"\n{extra}')


def two_mailboxes(bot: Bot, support: str, typo: str, extra: str = "") -> None:
    """The bot's configuration with [[mailboxes]] in place of its [imap]."""
    text = bot.config_path.read_text()
    text = re.sub(r"\[imap\]\n(.*?\n)\n", "", text, count=1, flags=re.DOTALL)
    bot.config_path.write_text(support + "\n" + typo + "\n" + text + extra)


@pytest.fixture
def second(dovecot: Dovecot) -> ImapAccount:
    return dovecot.new_account()


def senders(smtp: SmtpServer, to: str) -> list[tuple[str, str]]:
    """(envelope sender, From address) of each reply to ``to``."""
    found = []
    for message in smtp.messages:
        if message.rcpt_tos == [to]:
            parsed = email.message_from_bytes(message.data, policy=default)
            found.append((message.mail_from, parsed["From"].addresses[0].addr_spec))
    return found


def test_each_mailbox_is_read_and_answered_from_its_own_address(bot: Bot, second: ImapAccount) -> None:
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT), imap_entry("typo", second, TYPO))
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user(ANNA, marketing_consent=True)
    bot.account.append(mail(IVAN, "Unsubscribe", to=SUPPORT))
    second.append(mail(ANNA, "Unsubscribe", to=TYPO))
    bot.account.append(mail("someone@example.kz", "Where is my order?", "Order 1042", to=SUPPORT))

    done = bot.cli("run", "--once")

    assert done.returncode == 0, done.stderr
    assert senders(bot.smtp, IVAN) == [(SUPPORT, SUPPORT)]
    assert senders(bot.smtp, ANNA) == [(TYPO, TYPO)]  # a bounce returns to the mailbox it answers
    assert len(second.snapshot(PROCESSED)) == 1 and second.snapshot("INBOX") == {}
    assert len(bot.account.snapshot(PROCESSED)) == 1 and len(bot.account.snapshot("INBOX")) == 1  # the order
    sources = {r.source for r in bot.requests()}
    assert sources == {f"imap://{a.username}@127.0.0.1:{a.port}/INBOX" for a in (bot.account, second)}
    assert bot.cli("run", "--once").stdout.startswith("scanned 0 new message(s)")  # each mailbox's own cursor


def test_the_same_letter_sent_to_both_addresses_is_one_request(bot: Bot, second: ImapAccount) -> None:
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT), imap_entry("typo", second, TYPO))
    bot.add_user(IVAN, marketing_consent=True)
    letter = mail(IVAN, "Unsubscribe", to=f"{SUPPORT}, {TYPO}", message_id="<both@example.kz>")
    bot.account.append(letter)
    second.append(letter)

    assert bot.cli("run", "--once").returncode == 0

    assert len(bot.requests()) == 1
    assert len(senders(bot.smtp, IVAN)) == 1
    # The copy is moved out of the way as a duplicate, in its own mailbox: nothing of it is left to redo.
    assert second.snapshot("INBOX") == {} and bot.account.snapshot("INBOX") == {}
    assert [e.event for e in bot.events()].count("duplicate_archived") == 1


def test_a_replies_from_address_overrides_the_mailbox_address(bot: Bot, second: ImapAccount) -> None:
    # Microsoft 365: the SMTP login may lack "Send As" for the second mailbox; its replies come from the first.
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT),
                  imap_entry("typo", second, TYPO, extra=f'reply_from = "{SUPPORT}"\n'))
    bot.add_user(ANNA, marketing_consent=True)
    second.append(mail(ANNA, "Unsubscribe", to=TYPO))
    assert bot.cli("run", "--once").returncode == 0
    assert senders(bot.smtp, ANNA) == [(SUPPORT, SUPPORT)]


def test_a_mailbox_that_is_down_does_not_keep_the_other(bot: Bot, second: ImapAccount) -> None:
    down = ImapAccount(port=free_port(), username="nobody", dovecot=second.dovecot)
    two_mailboxes(bot, imap_entry("support", down, SUPPORT), imap_entry("typo", second, TYPO))
    bot.add_user(ANNA, marketing_consent=True)
    second.append(mail(ANNA, "Unsubscribe", to=TYPO))

    done = bot.cli("run", "--once")

    assert done.returncode == 75 and "IMAP connect" in done.stderr
    assert senders(bot.smtp, ANNA) == [(TYPO, TYPO)]


def test_an_erased_persons_letters_go_from_every_mailbox(bot: Bot, second: ImapAccount) -> None:
    bot.write_config(erasure_delay_days=0)
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT), imap_entry("typo", second, TYPO))
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(mail(IVAN, "Unsubscribe", to=SUPPORT))
    second.append(mail(IVAN, "Withdrawal of consent to the processing of personal data", to=TYPO))
    assert bot.cli("run", "--once").returncode == 0
    assert len(bot.account.snapshot(PROCESSED)) == 1 and len(second.snapshot(PROCESSED)) == 1

    assert bot.cli("run", "--once").returncode == 0  # the erasure date has come

    assert bot.user(IVAN) is None
    assert bot.account.snapshot(PROCESSED) == {} and second.snapshot(PROCESSED) == {}


def test_both_ways_of_naming_mailboxes_in_one_file_is_refused(bot: Bot, second: ImapAccount) -> None:
    text = bot.config_path.read_text()
    bot.config_path.write_text(imap_entry("typo", second, TYPO) + "\n" + text)
    done = bot.cli("run", "--once")
    assert done.returncode == 78
    assert "[[mailboxes]] and [imap]/[maildir]: give the mailboxes one way, not both" in done.stderr


def test_the_daemon_idles_on_each_mailbox_and_one_down_does_not_stop_the_others(
        bot: Bot, second: ImapAccount) -> None:
    port = free_port()
    down = ImapAccount(port=free_port(), username="nobody", dovecot=second.dovecot)
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT), imap_entry("typo", second, TYPO),
                  extra=imap_entry("privacy", down, "privacy@smarthings.kz") +
                  f'\n[daemon]\npoll_interval_seconds = 120\nmetrics_listen = "127.0.0.1:{port}"\n')
    bot.add_user(IVAN, marketing_consent=True)
    bot.add_user(ANNA, marketing_consent=True)
    daemon = DaemonProcess(bot)
    daemon.wait_for_log("dsr-mailbot running")
    up = 'dsr_mailbot_server_up{{server="imap:{}"}} {}'
    wait_until(lambda: up.format("support", "1.0") in metrics(port) and up.format("typo", "1.0") in metrics(port)
               and up.format("privacy", "0.0") in metrics(port), what="a pass on each mailbox, one down")
    bot.account.append(mail(IVAN, "Unsubscribe", to=SUPPORT))  # a poll would take two minutes: IDLE on each
    second.append(mail(ANNA, "Unsubscribe", to=TYPO))
    wait_until(lambda: len(senders(bot.smtp, IVAN)) == 1 and len(senders(bot.smtp, ANNA)) == 1, what="both replies")
    assert "mailbox privacy down" in daemon.log
    assert daemon.stop() == 0


def metrics(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


def test_a_refused_oauth2_mailbox_stops_alone_and_the_daemon_goes_on(
        tmp_path: Path, oauth_dovecot: OAuthDovecot, oauth_smtp: OAuthSmtpServer, token_server: TokenServer,
        sqlite_url: str) -> None:
    support = ImapAccount(port=oauth_dovecot.port, username="support-a@smarthings.kz", dovecot=oauth_dovecot)
    typo = ImapAccount(port=oauth_dovecot.port, username="support-b@smarththings.kz", dovecot=oauth_dovecot)
    bot = Bot(tmp_path, support, oauth_smtp, sqlite_url)
    entries = []
    for name, account in (("support", support), ("typo", typo)):
        token_file = bot.dir / f"{name}.token"
        write_token_file(token_file, StoredToken(refresh_token=token_server.issue(account.username)))
        entries.append(
            f'[[mailboxes]]\nname = "{name}"\nkind = "imap"\nhost = "127.0.0.1"\nport = {account.port}\n'
            f'security = "none"\nusername = "{account.username}"\nauth = "oauth2"\n'
            f'processed_folder = "{PROCESSED}"\n[mailboxes.oauth2]\nprovider = "generic"\n'
            f'client_id = "{CLIENT_ID}"\ntoken_file = "{token_file}"\n'
            f'token_endpoint = "{token_server.url("/token")}"\n'
            f'authorization_endpoint = "{token_server.url("/authorize")}"\nscope = "imap"\n')
    smtp_token = bot.dir / "smtp.token"
    write_token_file(smtp_token, StoredToken(refresh_token=token_server.issue(support.username)))
    text = re.sub(r"\[imap\]\n(.*?\n)\n", "", bot.config_path.read_text(), count=1, flags=re.DOTALL)
    text = text.replace("[database]\n", f'username = "{support.username}"\nauth = "oauth2"\n[smtp.oauth2]\n'
                        f'provider = "generic"\nclient_id = "{CLIENT_ID}"\ntoken_file = "{smtp_token}"\n'
                        f'token_endpoint = "{token_server.url("/token")}"\n'
                        f'authorization_endpoint = "{token_server.url("/authorize")}"\nscope = "smtp"\n\n[database]\n')
    bot.config_path.write_text("\n".join(entries) + "\n" + text)
    bot.add_user(IVAN, marketing_consent=True)
    # The typo mailbox's consent is revoked: its refresh token no longer works; the others' do.
    typo_grant = next(t for t, g in token_server.grants.items() if g.user == typo.username)
    token_server.grants[typo_grant].revoked = True

    once = bot.cli("run", "--once")
    assert once.returncode == 78  # the other mailbox was done first; cron hears of the refused one
    assert 'mailboxes.typo.oauth2' in once.stderr and "invalid_grant" in once.stderr
    assert "scanned 0 new message(s)" in once.stdout + once.stderr

    daemon = DaemonProcess(bot)
    daemon.wait_for_log("mailbox typo stopped")
    support.append(mail(IVAN, "Unsubscribe", to=SUPPORT))
    wait_until(lambda: len([m for m in oauth_smtp.messages if m.rcpt_tos == [IVAN]]) == 1, timeout=30,
               what="the reply from the working mailbox")
    assert daemon.process.poll() is None  # still running: one mailbox can be used
    assert daemon.log.count("invalid_grant") == 1  # tried once; the next try is an hour away
    assert daemon.stop() == 0


def test_an_erasure_waits_while_one_mailbox_cannot_be_reached(bot: Bot, second: ImapAccount) -> None:
    bot.write_config(erasure_delay_days=0)
    down = ImapAccount(port=free_port(), username="nobody", dovecot=second.dovecot)
    two_mailboxes(bot, imap_entry("support", bot.account, SUPPORT), imap_entry("typo", second, TYPO))
    bot.add_user(IVAN, marketing_consent=True)
    bot.account.append(mail(IVAN, "Withdrawal of consent to the processing of personal data", to=SUPPORT))
    assert bot.cli("run", "--once").returncode == 0
    working = bot.config_path.read_text()
    bot.config_path.write_text(working.replace(f"port = {second.port}", f"port = {down.port}", 1))

    waiting = bot.cli("run", "--once")  # the date has come, but one mailbox may hold his letters: no act yet

    assert waiting.returncode == 75
    assert bot.user(IVAN) is not None and len(bot.account.snapshot(PROCESSED)) == 1
    assert not any(e.event == "user_erased" for e in bot.events())
    bot.config_path.write_text(working)
    assert bot.cli("run", "--once").returncode == 0
    assert bot.user(IVAN) is None and bot.account.snapshot(PROCESSED) == {}
