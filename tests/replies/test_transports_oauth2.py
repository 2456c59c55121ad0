"""Sending with an OAuth2 login: aiosmtpd requiring AUTH, checking each bearer token at the tests' token server."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_mailbot.config import SmtpConfig
from dsr_mailbot.errors import CredentialsRefused
from dsr_mailbot.replies.transports import SmtpTransport
from tests.harness import mail
from tests.oauth_servers import OAuthSmtpServer, TokenServer, generic_oauth2, token_file_for

USER = "support@smarthings.kz"


def oauth_transport(smtp: OAuthSmtpServer, token_file: Path, token_endpoint: str) -> SmtpTransport:
    return SmtpTransport(SmtpConfig.model_validate({
        "host": "127.0.0.1", "port": smtp.port, "security": "none", "from_address": USER, "username": USER,
        "auth": "oauth2", "oauth2": generic_oauth2(token_file, token_endpoint, "smtp")}))


@pytest.fixture
def token_file(tmp_path: Path, token_server: TokenServer) -> Path:
    return token_file_for(tmp_path / "smtp.token", token_server, USER)


def test_a_reply_goes_out_after_an_oauthbearer_login(oauth_smtp: OAuthSmtpServer, token_file: Path,
                                                     token_server: TokenServer) -> None:
    transport = oauth_transport(oauth_smtp, token_file, token_server.url("/token"))
    try:
        transport.send(USER, "user@example.kz", mail(USER, "Re: Unsubscribe", "Done."))
    finally:
        transport.close()
    assert oauth_smtp.handler.logins == [("OAUTHBEARER", USER)]
    assert [m.rcpt_tos for m in oauth_smtp.messages] == [["user@example.kz"]]


def test_a_token_the_server_refuses_is_refreshed_once_and_the_login_tried_again(
        oauth_smtp: OAuthSmtpServer, token_file: Path, token_server: TokenServer) -> None:
    transport = oauth_transport(oauth_smtp, token_file, token_server.url("/token"))
    transport.send(USER, "a@example.kz", mail(USER, "Re: 1", "Done."))
    transport.close()
    token_server.expire_access_tokens()
    transport.send(USER, "b@example.kz", mail(USER, "Re: 2", "Done."))
    transport.close()
    assert oauth_smtp.handler.refusals == 1
    assert len(oauth_smtp.handler.logins) == 2
    assert token_server.grant_types() == ["refresh_token", "refresh_token"]


def test_a_revoked_consent_stops_sending_naming_the_providers_answer(
        oauth_smtp: OAuthSmtpServer, token_file: Path, token_server: TokenServer) -> None:
    token_server.revoke_all()
    with pytest.raises(CredentialsRefused, match=r"\[smtp.oauth2\] the OAuth2 provider refused the refresh token "
                                                 r"\(invalid_grant"):
        oauth_transport(oauth_smtp, token_file, token_server.url("/token")).send(
            USER, "a@example.kz", mail(USER, "Re: 1", "Done."))
    assert oauth_smtp.messages == []
