"""Logging in to IMAP with OAuth2: a real Dovecot whose oauth2 passdb asks the tests' token server (RFC 7662)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_mailbot.config import ImapConfig
from dsr_mailbot.credentials.tokens import StoredToken, read_token_file, write_token_file
from dsr_mailbot.errors import ConfigError, CredentialsRefused, SourceUnavailable
from dsr_mailbot.mailbox.imap import ImapSource
from tests.oauth_servers import OAuthDovecot, TokenServer, generic_oauth2, token_file_for
from tests.servers import free_port

USER = "support@smarthings.kz"


def oauth_source(dovecot: OAuthDovecot, token_file: Path, token_endpoint: str, user: str = USER) -> ImapSource:
    return ImapSource(ImapConfig.model_validate({
        "host": "127.0.0.1", "port": dovecot.port, "security": "none", "username": user, "auth": "oauth2",
        "oauth2": generic_oauth2(token_file, token_endpoint, "mail")}))


@pytest.fixture
def token_file(tmp_path: Path, token_server: TokenServer) -> Path:
    return token_file_for(tmp_path / "imap.token", token_server, USER)


def test_the_mailbox_logs_in_with_oauthbearer_where_the_server_offers_it(
        oauth_dovecot: OAuthDovecot, token_file: Path, token_server: TokenServer) -> None:
    source = oauth_source(oauth_dovecot, token_file, token_server.url("/token"))
    try:
        assert source.open() > 0  # the UIDVALIDITY of the selected folder
    finally:
        source.close()
    introspected = [form["token"] for path, form in token_server.requests if path == "/introspect"]
    assert introspected == [read_token_file(token_file, "imap").access_token]
    assert "method=OAUTHBEARER" in (oauth_dovecot.base / "dovecot.log").read_text()


def test_an_access_token_the_server_refuses_is_refreshed_once_and_the_login_tried_again(
        oauth_dovecot: OAuthDovecot, token_file: Path, token_server: TokenServer) -> None:
    source = oauth_source(oauth_dovecot, token_file, token_server.url("/token"))
    source.open()
    source.close()
    token_server.expire_access_tokens()  # the provider ended them early: the file still says they are good
    source = oauth_source(oauth_dovecot, token_file, token_server.url("/token"))
    try:
        source.open()
    finally:
        source.close()
    assert token_server.grant_types() == ["refresh_token", "refresh_token"]


def test_a_revoked_consent_stops_the_login_naming_the_providers_answer(
        oauth_dovecot: OAuthDovecot, token_file: Path, token_server: TokenServer) -> None:
    token_server.revoke_all()
    with pytest.raises(CredentialsRefused, match="invalid_grant"):
        oauth_source(oauth_dovecot, token_file, token_server.url("/token")).open()
    assert token_server.grant_types() == ["refresh_token"]  # asked once; no loop


def test_a_fresh_token_for_another_mailbox_is_a_configuration_error(
        oauth_dovecot: OAuthDovecot, tmp_path: Path, token_server: TokenServer) -> None:
    path = tmp_path / "other.token"
    write_token_file(path, StoredToken(refresh_token=token_server.issue("someone-else@smarthings.kz")))
    with pytest.raises(ConfigError, match=r"\[imap\] oauth2: the server refused a fresh access token"):
        oauth_source(oauth_dovecot, path, token_server.url("/token")).open()


def test_an_unreachable_token_endpoint_is_the_mailbox_unavailable_for_now(
        oauth_dovecot: OAuthDovecot, token_file: Path) -> None:
    with pytest.raises(SourceUnavailable):
        oauth_source(oauth_dovecot, token_file, f"http://127.0.0.1:{free_port()}/token").open()
