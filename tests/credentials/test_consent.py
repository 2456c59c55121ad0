"""``dsr-mailbot auth login`` as the operator runs it, against the tests' OAuth2 server on 127.0.0.1.

The device-code flow (Microsoft's): the command prints a code, the owner
approves it elsewhere, the command stores the refresh token.  The loopback
flow (Google's, Yandex's): the command prints the consent address and
listens on 127.0.0.1; the "browser" here is an HTTP client that follows the
provider's redirect back to it.
"""

from __future__ import annotations

import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from dsr_mailbot.credentials.tokens import read_token_file
from tests.oauth_servers import CLIENT_ID, TokenServer

MAILBOX = "support@smarthings.kz"


def config_file(tmp_path: Path, token_server: TokenServer, flow: str) -> Path:
    endpoint = ("device_authorization_endpoint", "/devicecode") if flow == "device" else \
        ("authorization_endpoint", "/authorize")
    path = tmp_path / "config.toml"
    path.write_text(
        f'[imap]\nhost = "127.0.0.1"\nusername = "{MAILBOX}"\nauth = "oauth2"\n'
        f'[imap.oauth2]\nprovider = "generic"\nclient_id = "{CLIENT_ID}"\ntoken_file = "tokens/imap.token"\n'
        f'token_endpoint = "{token_server.url("/token")}"\n{endpoint[0]} = "{token_server.url(endpoint[1])}"\n'
        f'scope = "mail offline_access"\n', encoding="utf-8")
    return path


def auth_login(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "dsr_mailbot", "-c", str(config), "auth", "login"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=config.parent)


def first_lines(process: subprocess.Popen[str], pattern: str, timeout: float = 20) -> re.Match[str]:
    assert process.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += process.stderr.readline()
        found = re.search(pattern, seen)
        if found:
            return found
    raise AssertionError(f"not printed: {pattern!r}; got {seen!r}")


def test_the_device_code_flow_prints_a_code_and_stores_the_refresh_token_once_approved(
        tmp_path: Path, token_server: TokenServer) -> None:
    process = auth_login(config_file(tmp_path, token_server, "device"))
    shown = first_lines(process, r"open (\S+) and enter the code (\w+)")
    assert shown.group(1) == token_server.url("/device")
    assert [d.user_code for d in token_server.devices.values()] == [shown.group(2)]
    time.sleep(1.5)  # it polls, and is told to wait, at least once
    token_server.approve_device(MAILBOX)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    token_file = tmp_path / "tokens" / "imap.token"
    stored = read_token_file(token_file, "imap")
    assert token_server.grants[stored.refresh_token].user == MAILBOX
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stored.refresh_token not in err and (stored.access_token or "-") not in err
    assert "authorization_pending" not in err
    assert token_server.grant_types()[-1] == "urn:ietf:params:oauth:grant-type:device_code"


def test_the_loopback_flow_takes_the_browsers_redirect_with_pkce(tmp_path: Path, token_server: TokenServer) -> None:
    process = auth_login(config_file(tmp_path, token_server, "loopback"))
    url = first_lines(process, r"(http://127\.0\.0\.1:\d+/authorize\?\S+)").group(1)
    assert "code_challenge_method=S256" in url and "ssh -L" in first_lines(process, r"ssh -L \d+").string
    page = httpx2.get(url, follow_redirects=True, timeout=10)  # the browser: consent, then back to 127.0.0.1
    assert page.status_code == 200 and "you can close this window" in page.text
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    stored = read_token_file(tmp_path / "tokens" / "imap.token", "imap")
    assert token_server.grants[stored.refresh_token].user == MAILBOX
    exchanged = [form for path, form in token_server.requests if form.get("grant_type") == "authorization_code"]
    assert len(exchanged) == 1 and exchanged[0]["code_verifier"]  # the server checked it against the challenge


def test_a_refused_consent_exits_78_and_writes_nothing(tmp_path: Path, token_server: TokenServer) -> None:
    process = auth_login(config_file(tmp_path, token_server, "loopback"))
    url = first_lines(process, r"(http://127\.0\.0\.1:\d+/authorize\?\S+)").group(1)
    query = httpx2.URL(url).params
    redirect = httpx2.URL(query["redirect_uri"])
    stranger = httpx2.get(redirect.copy_with(params={"code": "x", "state": "forged"}), timeout=10)
    assert stranger.status_code == 400  # a redirect with another state is no answer
    httpx2.get(redirect.copy_with(params={"error": "access_denied", "state": query["state"]}), timeout=10)
    _out, err = process.communicate(timeout=20)
    assert process.returncode == 78
    assert "did not give consent (access_denied" in err
    assert not (tmp_path / "tokens" / "imap.token").exists()


def test_strangers_at_the_listener_do_not_keep_the_browsers_redirect_out(
        tmp_path: Path, token_server: TokenServer) -> None:
    process = auth_login(config_file(tmp_path, token_server, "loopback"))
    url = first_lines(process, r"(http://127\.0\.0\.1:\d+/authorize\?\S+)").group(1)
    redirect = httpx2.URL(httpx2.URL(url).params["redirect_uri"])
    stranger = httpx2.get(redirect.copy_with(params={"code": "x", "state": "\u00e9"}), timeout=10)
    assert stranger.status_code == 400  # a state that is not even ASCII is no answer either
    # Another local user (or a browser's speculative preconnect) opens the listener's port and says nothing.
    with socket.create_connection(("127.0.0.1", redirect.port or 80)):
        page = httpx2.get(url, follow_redirects=True, timeout=10)
        assert page.status_code == 200 and "you can close this window" in page.text
        _out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert read_token_file(tmp_path / "tokens" / "imap.token", "imap").refresh_token in token_server.grants
