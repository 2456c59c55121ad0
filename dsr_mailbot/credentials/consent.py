"""``dsr-mailbot auth login``: the mailbox owner's first consent, which yields the refresh token.

Two flows, as the provider allows for mail scopes (``providers``):

- **device code** (RFC 8628; Microsoft): the command prints a short code and
  an address; the owner enters the code there from any device, and the
  command polls the token endpoint until they have;
- **loopback** (RFC 8252 §7.3, with PKCE; Google, Yandex): the command
  listens on 127.0.0.1 and prints the provider's consent address; the
  browser comes back to 127.0.0.1 with a code, which is exchanged for the
  tokens.  On a server without a browser, an SSH port forward carries that
  redirect (README, "OAuth2").

Either way the refresh token is written to the token file (mode 0600,
atomically).  Nothing of the tokens is printed.
"""

from __future__ import annotations

import http.server
import secrets
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dsr_mailbot.config.oauth2 import OAuth2Config
from dsr_mailbot.credentials.providers import Use
from dsr_mailbot.credentials.tokens import (
    StoredToken,
    oauth_client,
    one_line,
    provider_errors,
    token_from_answer,
    write_token_file,
)
from dsr_mailbot.errors import ConfigError, CredentialsRefused

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CONSENT_WAIT_SECONDS = 15 * 60  # how long the loopback flow waits for the browser to come back
REQUEST_TIMEOUT_SECONDS = 10  # for one connection to the loopback listener to send its request

Say = Callable[[str], None]


def login(config: OAuth2Config, use: Use, section: str, say: Say, sleep: Callable[[float], None] = time.sleep,
          deadline_seconds: float = CONSENT_WAIT_SECONDS) -> StoredToken:
    """Obtain and store the refresh token by the provider's flow; returns what was stored."""
    if config.device_url() is not None:
        answer = _device_flow(config, use, section, say, sleep)
    elif config.authorization_url() is not None:
        answer = _loopback_flow(config, use, section, say, deadline_seconds)
    else:  # the configuration requires one or the other
        raise ConfigError(f"[{section}.oauth2] neither authorization_endpoint nor device_authorization_endpoint")
    if not answer.get("refresh_token"):
        raise ConfigError(f"[{section}.oauth2] {config.known.display} gave no refresh token: the app registration "
                          f"must allow offline access (scope {config.scope_for(use)!r})")
    with provider_errors(config, section, "the consent", advice=""):
        stored = token_from_answer(answer, "", time.time())
    config.token_file.parent.mkdir(parents=True, exist_ok=True)
    write_token_file(config.token_file, stored)
    return stored


def _device_flow(config: OAuth2Config, use: Use, section: str, say: Say,
                 sleep: Callable[[float], None]) -> dict[str, Any]:
    from authlib.integrations.base_client import OAuthError  # what Authlib's httpx2 client raises

    device_url = config.device_url()
    assert device_url is not None
    scope = config.scope_for(use)
    client = oauth_client(config, scope)
    try:
        with provider_errors(config, section, "the device code request", advice=""):
            response = client.request("POST", device_url, data={"client_id": config.client_id, "scope": scope},
                                      withhold_token=True)  # no token yet: that is what this asks for
            response.raise_for_status()
            grant = response.json()
            device_code, interval = str(grant["device_code"]), float(grant.get("interval", 5))
            expires_at = time.monotonic() + float(grant.get("expires_in", 900))
        say(f"On any device, open {grant['verification_uri']} and enter the code {grant['user_code']}, "
            f"signed in as the mailbox ({config.known.display}). Waiting…")
        while time.monotonic() < expires_at:
            sleep(interval)
            with provider_errors(config, section, "the consent", advice=""):
                try:
                    return dict(client.fetch_token(config.token_url(), grant_type=DEVICE_GRANT,
                                                   device_code=device_code))
                except OAuthError as exc:
                    if exc.error == "authorization_pending":
                        continue
                    if exc.error == "slow_down":  # RFC 8628 §3.5: five seconds more from now on
                        interval += 5
                        continue
                    raise
        raise CredentialsRefused(f"[{section}.oauth2] the code expired before it was entered; run the command again",
                                 answer="expired_token")
    finally:
        client.close()


@dataclass
class _Redirect:
    query: dict[str, str] | None = None


def _loopback_flow(config: OAuth2Config, use: Use, section: str, say: Say, deadline_seconds: float) -> dict[str, Any]:
    redirect = _Redirect()
    state = secrets.token_urlsafe(24)
    # A thread for each connection, each with a timeout: a connection that never sends its request (another local
    # user, a browser's preconnect) must not keep the browser's redirect waiting behind it.
    server = http.server.ThreadingHTTPServer(("127.0.0.1", config.redirect_port), _redirect_handler(redirect, state))
    server.daemon_threads, server.block_on_close = True, False
    server.timeout = 1.0
    port = server.server_address[1]
    redirect_uri = f"http://127.0.0.1:{port}/"
    scope = config.scope_for(use)
    client = oauth_client(config, scope)
    client.redirect_uri = redirect_uri
    client.code_challenge_method = "S256"
    verifier = secrets.token_urlsafe(64)  # PKCE (RFC 7636): the code is no good to whoever else sees it
    try:
        authorization_url = config.authorization_url()
        assert authorization_url is not None
        url, _state = client.create_authorization_url(authorization_url, state=state, code_verifier=verifier,
                                                      **dict(config.known.authorization_params))
        say(f"Open this address in a browser, signed in as the mailbox ({config.known.display}):\n{url}\n"
            f"It comes back to {redirect_uri}. On a server without a browser, forward that port first from "
            f"your computer:  ssh -L {port}:127.0.0.1:{port} <this server>   (then open the address there).")
        deadline = time.monotonic() + deadline_seconds
        while redirect.query is None and time.monotonic() < deadline:
            server.handle_request()
        if redirect.query is None:
            raise CredentialsRefused(f"[{section}.oauth2] no answer from the browser within "
                                     f"{deadline_seconds / 60:.0f} min; run the command again", answer="timeout")
        if "error" in redirect.query:
            answer = one_line(f"{redirect.query['error']}: {redirect.query.get('error_description', '')}")
            raise CredentialsRefused(f"[{section}.oauth2] {config.known.display} did not give consent ({answer})",
                                     answer=answer)
        with provider_errors(config, section, "the authorization code", advice=""):
            return dict(client.fetch_token(config.token_url(), code=redirect.query["code"], code_verifier=verifier,
                                           redirect_uri=redirect_uri))
    finally:
        client.close()
        server.server_close()


def _redirect_handler(redirect: _Redirect, state: str) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT_SECONDS

        def do_GET(self) -> None:
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            # Only the answer to this very request counts (RFC 6749 §10.12); a favicon or a stranger is ignored.
            # Compared as bytes: compare_digest refuses str that is not ASCII.
            matches = (secrets.compare_digest(query.get("state", "").encode(), state.encode())
                       and ("code" in query or "error" in query))
            if matches and redirect.query is not None:
                matches = False  # the first answer stands
            if matches:
                redirect.query = query
            body = ("dsr-mailbot: done; you can close this window." if matches and "code" in query
                    else "dsr-mailbot: not the answer it waits for.").encode()
            self.send_response(200 if matches else 400)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the query holds the code: never logged

    return Handler
