"""Access tokens from a token file, refreshed at a real OAuth2 server on 127.0.0.1 (tests.oauth_servers)."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from dsr_mailbot.config.oauth2 import OAuth2Config
from dsr_mailbot.credentials.tokens import AccessTokens, read_token_file
from dsr_mailbot.errors import ConfigError, CredentialsRefused, CredentialsUnavailable
from tests.oauth_servers import TokenServer, generic_oauth2, token_file_for
from tests.servers import free_port

USER = "support@smarthings.kz"


def generic(token_file: Path, token_endpoint: str, **extra: object) -> OAuth2Config:
    return OAuth2Config.model_validate({**generic_oauth2(token_file, token_endpoint, "mail"), **extra})


@pytest.fixture
def token_file(tmp_path: Path, token_server: TokenServer) -> Path:
    return token_file_for(tmp_path / "imap.token", token_server, USER)


def tokens_for(token_file: Path, token_server: TokenServer, **extra: object) -> AccessTokens:
    return AccessTokens(generic(token_file, token_server.url("/token"), **extra), "imap", "imap")


def test_a_file_without_an_access_token_is_refreshed_and_the_token_kept_for_the_next_login(
        token_file: Path, token_server: TokenServer) -> None:
    tokens = tokens_for(token_file, token_server)
    first = tokens.current()
    assert token_server.user_of(first) == USER
    assert tokens.current() == first  # read back from the file: no second refresh
    assert token_server.grant_types() == ["refresh_token"]
    stored = json.loads(token_file.read_text())
    assert stored["access_token"] == first and stored["expires_at"] > 0


def test_a_token_about_to_expire_is_refreshed_before_the_login(token_file: Path, token_server: TokenServer) -> None:
    token_server.expires_in = 60  # inside the two minutes' leeway
    tokens = tokens_for(token_file, token_server)
    first = tokens.current()
    second = tokens.current()
    assert first != second
    assert token_server.grant_types() == ["refresh_token", "refresh_token"]


def test_a_rotated_refresh_token_is_written_with_mode_0600_and_used_next_time(
        token_file: Path, token_server: TokenServer) -> None:
    token_server.rotate = True
    old = read_token_file(token_file, "imap").refresh_token
    tokens_for(token_file, token_server).refresh()
    new = read_token_file(token_file, "imap").refresh_token
    assert new != old and new in token_server.grants and old not in token_server.grants
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert [p.name for p in token_file.parent.iterdir() if p.name.endswith(".tmp")] == []
    tokens_for(token_file, token_server).refresh(rejected=read_token_file(token_file, "imap").access_token)
    assert read_token_file(token_file, "imap").refresh_token not in (old, new)  # the rotated one was taken
    assert token_server.grant_types() == ["refresh_token", "refresh_token"]


def test_after_a_refusal_a_token_another_worker_refreshed_meanwhile_is_taken_without_refreshing_again(
        token_file: Path, token_server: TokenServer) -> None:
    first, second = tokens_for(token_file, token_server), tokens_for(token_file, token_server)
    rejected = first.current()
    newer = second.refresh(rejected=rejected)
    assert first.refresh(rejected=rejected) == newer
    assert token_server.grant_types() == ["refresh_token", "refresh_token"]


def test_workers_refreshing_at_once_spend_a_rotating_refresh_token_once(
        token_file: Path, token_server: TokenServer) -> None:
    token_server.rotate = True
    results: list[str] = []
    errors: list[BaseException] = []

    def login() -> None:
        try:
            results.append(tokens_for(token_file, token_server).current())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=login) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1  # one refresh; the others read its token from the file under the lock
    assert token_server.grant_types() == ["refresh_token"]


def test_a_revoked_consent_is_refused_naming_the_providers_answer(token_file: Path,
                                                                  token_server: TokenServer) -> None:
    token_server.revoke_all()
    with pytest.raises(CredentialsRefused) as refused:
        tokens_for(token_file, token_server).current()
    assert refused.value.answer == "invalid_grant: AADSTS70000: the refresh token was revoked"
    assert "auth login" in str(refused.value)
    assert read_token_file(token_file, "imap").access_token is None  # nothing half-written


def test_a_wrong_client_secret_is_refused_too(token_file: Path, token_server: TokenServer) -> None:
    token_server.client_secret = "right"
    with pytest.raises(CredentialsRefused, match="invalid_client"):
        tokens_for(token_file, token_server, client_secret="wrong").current()
    assert token_server.user_of(tokens_for(token_file, token_server, client_secret="right").current()) == USER


def test_an_unreachable_token_endpoint_is_temporary(token_file: Path) -> None:
    config = generic(token_file, f"http://127.0.0.1:{free_port()}/token")
    with pytest.raises(CredentialsUnavailable) as unavailable:
        AccessTokens(config, "imap", "imap").current()
    assert unavailable.value.temporary


@pytest.mark.parametrize("failure", [
    (400, {"error": "temporarily_unavailable", "error_description": "AADSTS90033: a transient error"}),
    (400, {"error": "server_error"}),
    (429, {"error": "invalid_request", "error_description": "too many requests"}),
])
def test_a_provider_busy_or_throttling_is_temporary_not_a_refusal(
        token_file: Path, token_server: TokenServer, failure: tuple[int, dict[str, str]]) -> None:
    # RFC 6749 §5.2 / Microsoft: these say "try again later"; a refusal would stop the daemon until a person comes.
    token_server.failure = failure
    with pytest.raises(CredentialsUnavailable) as unavailable:
        tokens_for(token_file, token_server).current()
    assert unavailable.value.temporary
    token_server.failure = None
    assert token_server.user_of(tokens_for(token_file, token_server).current()) == USER


def test_a_missing_token_file_says_to_run_auth_login(tmp_path: Path, token_server: TokenServer) -> None:
    with pytest.raises(ConfigError, match=r"\[imap\] token_file: .* does not exist; run 'dsr-mailbot auth login'"):
        tokens_for(tmp_path / "absent.token", token_server).current()


def test_a_token_file_others_can_read_is_refused(token_file: Path, token_server: TokenServer) -> None:
    token_file.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        tokens_for(token_file, token_server).current()
    assert token_server.requests == []


def test_a_damaged_token_file_is_named(token_file: Path, token_server: TokenServer) -> None:
    token_file.write_text("{not json")
    with pytest.raises(ConfigError, match="is not a token file"):
        tokens_for(token_file, token_server).current()


def test_a_planted_temporary_file_or_symlink_beside_the_token_file_gets_no_token(
        token_file: Path, token_server: TokenServer) -> None:
    # A shared directory: another user plants the writer's next temporary name, as a symlink to a file they can
    # read, and a lock name pointing elsewhere. The refresh token must go only into a file of the bot's own.
    planted = token_file.parent / "planted"
    planted.touch(mode=0o666)
    planted.chmod(0o666)
    (token_file.parent / f".{token_file.name}.{os.getpid()}.tmp").symlink_to(planted)
    elsewhere = token_file.parent / "elsewhere"
    token_file.with_name(token_file.name + ".lock").symlink_to(elsewhere)
    refresh_token = read_token_file(token_file, "imap").refresh_token
    with pytest.raises(ConfigError, match=r"cannot lock .*\.lock"):
        tokens_for(token_file, token_server).refresh()
    assert not elsewhere.exists()
    token_file.with_name(token_file.name + ".lock").unlink()
    tokens_for(token_file, token_server).refresh()
    assert planted.read_text() == ""
    assert read_token_file(token_file, "imap").refresh_token == refresh_token
    assert not token_file.is_symlink() and stat.S_IMODE(token_file.stat().st_mode) == 0o600
