"""The bot on a mailbox and an SMTP server that take only OAuth2 logins, as Microsoft 365 and Google Workspace do.

A real Dovecot with an oauth2 passdb, an aiosmtpd requiring XOAUTH2 or
OAUTHBEARER, and the tests' own OAuth2 server on 127.0.0.1 as the token
endpoint of both and as Dovecot's introspection endpoint.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from dsr_mailbot.credentials.tokens import read_token_file
from tests.harness import PROCESSED, Bot, DaemonProcess, mail, wait_until
from tests.oauth_servers import OAuthDovecot, OAuthSmtpServer, TokenServer

IVAN = "ivan@example.kz"


@pytest.fixture(autouse=True)
def _ivan_consents(oauth_bot: Bot) -> None:
    oauth_bot.add_user(IVAN, marketing_consent=True)


def refreshes(token_server: TokenServer) -> int:
    return token_server.grant_types().count("refresh_token")


def test_run_once_reads_and_replies_after_oauth2_logins(oauth_bot: Bot, oauth_smtp: OAuthSmtpServer,
                                                        token_server: TokenServer) -> None:
    oauth_bot.account.append(mail(IVAN, "Unsubscribe"))
    result = oauth_bot.cli("run", "--once")
    assert result.returncode == 0, result.stderr
    assert [m.rcpt_tos for m in oauth_smtp.messages] == [[IVAN]]
    assert oauth_smtp.handler.logins == [("OAUTHBEARER", oauth_bot.account.username)]
    assert set(oauth_bot.account.snapshot(PROCESSED)) and oauth_bot.account.snapshot("INBOX") == {}
    assert refreshes(token_server) == 2  # one access token for IMAP, one for SMTP
    oauth_bot.account.append(mail(IVAN, "Unsubscribe", message_id="<second@example.kz>"))
    assert oauth_bot.cli("run", "--once").returncode == 0
    assert refreshes(token_server) == 2  # the stored access tokens were still good


def test_a_revoked_consent_exits_78_naming_the_providers_answer_and_asks_once(
        oauth_bot: Bot, oauth_smtp: OAuthSmtpServer, token_server: TokenServer) -> None:
    oauth_bot.account.append(mail(IVAN, "Unsubscribe"))
    before = oauth_bot.account.snapshot("INBOX")
    token_server.revoke_all()
    result = oauth_bot.cli("run", "--once")
    assert result.returncode == 78
    assert "invalid_grant: AADSTS70000: the refresh token was revoked" in result.stderr
    assert "dsr-mailbot auth login" in result.stderr
    assert refreshes(token_server) == 1
    assert oauth_bot.account.snapshot("INBOX") == before and oauth_smtp.messages == []
    assert oauth_bot.requests() == []


def kick(dovecot: OAuthDovecot, user: str) -> None:
    """The server ends the session, as Exchange Online does when the access token expires (BYE AccessTokenExpired)."""
    subprocess.run(["doveadm", "-c", str(dovecot.conf), "kick", user], check=True, capture_output=True)


def test_the_daemon_refreshes_an_access_token_that_expired_during_idle(
        oauth_bot: Bot, oauth_dovecot: OAuthDovecot, oauth_smtp: OAuthSmtpServer, token_server: TokenServer) -> None:
    # A short poll: a letter that arrives while the watcher reconnects is found by the next pass, not an hour later.
    text = oauth_bot.config_path.read_text()
    oauth_bot.config_path.write_text(text.replace("poll_interval_seconds = 60", "poll_interval_seconds = 5"))
    daemon = DaemonProcess(oauth_bot)
    daemon.wait_for_log("dsr-mailbot running")
    wait_until(lambda: refreshes(token_server) == 1, what="the first IMAP login")
    stored = read_token_file(oauth_bot.dir / "imap.token", "imap").access_token
    time.sleep(0.5)  # let the watcher reach IDLE
    token_server.expire_access_tokens()  # the file still says an hour is left: only the server knows
    kick(oauth_dovecot, oauth_bot.account.username)
    wait_until(lambda: read_token_file(oauth_bot.dir / "imap.token", "imap").access_token != stored,
               timeout=30, what="a refreshed IMAP token")
    oauth_bot.account.append(mail(IVAN, "Unsubscribe"))
    wait_until(lambda: [m.rcpt_tos for m in oauth_smtp.messages] == [[IVAN]], timeout=30, what="the reply")
    assert daemon.stop() == 0
    user = oauth_bot.user(IVAN)
    assert user is not None and not user.marketing_consent
    assert "refused" not in daemon.log


def test_a_daemon_whose_consent_is_revoked_exits_78_without_looping(
        oauth_bot: Bot, oauth_dovecot: OAuthDovecot, token_server: TokenServer) -> None:
    daemon = DaemonProcess(oauth_bot)
    daemon.wait_for_log("dsr-mailbot running")
    wait_until(lambda: refreshes(token_server) == 1, what="the first IMAP login")
    time.sleep(0.5)
    token_server.revoke_all()
    kick(oauth_dovecot, oauth_bot.account.username)
    assert daemon.process.wait(timeout=30) == 78
    assert "invalid_grant" in daemon.log
    assert refreshes(token_server) == 2  # the first login's, and the one refused: then it stopped
