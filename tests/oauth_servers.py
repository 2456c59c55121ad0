"""Real OAuth2 servers for the tests: an authorization server, a Dovecot that asks it, and an SMTP server that does.

- :class:`TokenServer`: an OAuth2 authorization server over HTTP on
  127.0.0.1 — the token endpoint (refresh, authorization code with PKCE,
  device code), the device authorization endpoint (RFC 8628), an
  authorization endpoint that consents at once and redirects, and the
  introspection endpoint (RFC 7662) Dovecot asks.
- :class:`OAuthDovecot`: a private Dovecot with ``auth_mechanisms =
  xoauth2 oauthbearer`` and an ``oauth2`` passdb whose introspection URL is
  the token server.
- :class:`OAuthSmtpServer`: aiosmtpd requiring AUTH, with XOAUTH2 and
  OAUTHBEARER checked against the token server.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from dsr_mailbot.credentials.tokens import StoredToken, write_token_file
from tests.harness import Bot
from tests.servers import Dovecot, ImapAccount, RecordingHandler, SmtpServer, free_port

CLIENT_ID = "dsr-test-client"
RESTRICTED_FOLDER = "Read-Only"  # on OAuthDovecot, its owner may only list and read it (the global ACL file)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@dataclass
class Grant:
    """What a refresh token stands for."""

    user: str
    scope: str
    revoked: bool = False


@dataclass
class PendingDevice:
    user_code: str
    scope: str
    user: str | None = None  # set when the person approves (:meth:`TokenServer.approve_device`)


@dataclass
class TokenServer:
    """A small, real OAuth2 authorization server; tests read what it was asked in ``requests``."""

    client_secret: str | None = None
    expires_in: int = 3600
    rotate: bool = False  # hand out a new refresh token with every refresh (and forget the old one)
    consenting_user: str = "support@smarthings.kz"  # who approves at the authorization endpoint
    grants: dict[str, Grant] = field(default_factory=dict)
    access: dict[str, tuple[str, float]] = field(default_factory=dict)  # access token → (user, expires at)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (path, form) of each request
    devices: dict[str, PendingDevice] = field(default_factory=dict)
    codes: dict[str, tuple[str, str, str, str]] = field(default_factory=dict)  # code → user, scope, redirect, challenge
    failure: tuple[int, dict[str, Any]] | None = None  # set: the token endpoint answers only this (an outage)
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        """As new, for the next test (the server and the Dovecot asking it are shared by a session)."""
        with self.lock:
            self.client_secret, self.expires_in, self.rotate, self.failure = None, 3600, False, None
            self.consenting_user = "support@smarthings.kz"
            for table in (self.grants, self.access, self.devices, self.codes):
                table.clear()
            self.requests.clear()

    # What a test arranges.
    def issue(self, user: str, scope: str = "mail") -> str:
        """A refresh token for ``user``, as if they had consented."""
        token = "rt-" + secrets.token_urlsafe(12)
        with self.lock:
            self.grants[token] = Grant(user, scope)
        return token

    def revoke_all(self) -> None:
        """The person withdrew the app's consent: every refresh and access token stops working."""
        with self.lock:
            for grant in self.grants.values():
                grant.revoked = True
            self.access.clear()

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access = {token: (user, 0.0) for token, (user, _at) in self.access.items()}

    def approve_device(self, user: str) -> None:
        with self.lock:
            for pending in self.devices.values():
                pending.user = user

    # What the servers and tests read.
    def user_of(self, access_token: str) -> str | None:
        with self.lock:
            user, expires_at = self.access.get(access_token, ("", 0.0))
        return user if user and expires_at > time.time() else None

    def grant_types(self) -> list[str]:
        return [form.get("grant_type", "") for path, form in self.requests if path == "/token"]

    # The endpoints.
    def _tokens(self, user: str, scope: str) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(12)
        refresh = "rt-" + secrets.token_urlsafe(12)
        self.access[access] = (user, time.time() + self.expires_in)
        self.grants[refresh] = Grant(user, scope)
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": refresh, "scope": scope}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        grant_type = form.get("grant_type", "")
        with self.lock:
            if grant_type == "refresh_token":
                grant = self.grants.get(form.get("refresh_token", ""))
                if grant is None or grant.revoked:
                    return 400, {"error": "invalid_grant",
                                 "error_description": "AADSTS70000: the refresh token was revoked"}
                answer = self._tokens(grant.user, grant.scope)
                if self.rotate:
                    del self.grants[form["refresh_token"]]
                else:
                    del self.grants[answer["refresh_token"]]
                    del answer["refresh_token"]
                return 200, answer
            if grant_type == "authorization_code":
                user, scope, redirect, challenge = self.codes.pop(form.get("code", ""), ("", "", "", ""))
                verifier = form.get("code_verifier", "")
                computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if not user or redirect != form.get("redirect_uri") or computed != challenge:
                    return 400, {"error": "invalid_grant", "error_description": "bad code, redirect or verifier"}
                return 200, self._tokens(user, scope)
            if grant_type == DEVICE_GRANT:
                pending = self.devices.get(form.get("device_code", ""))
                if pending is None:
                    return 400, {"error": "expired_token"}
                if pending.user is None:
                    return 400, {"error": "authorization_pending"}
                del self.devices[form["device_code"]]
                return 200, self._tokens(pending.user, pending.scope)
        return 400, {"error": "unsupported_grant_type"}

    def device(self, form: dict[str, str]) -> dict[str, Any]:
        device_code, user_code = secrets.token_urlsafe(12), secrets.token_hex(4).upper()
        with self.lock:
            self.devices[device_code] = PendingDevice(user_code, form.get("scope", ""))
        return {"device_code": device_code, "user_code": user_code, "verification_uri": self.url("/device"),
                "expires_in": 900, "interval": 1}

    def authorize(self, query: dict[str, str]) -> str:
        """Consent at once, as ``consenting_user``: where to redirect the browser."""
        code = secrets.token_urlsafe(12)
        with self.lock:
            self.codes[code] = (self.consenting_user, query.get("scope", ""), query.get("redirect_uri", ""),
                                query.get("code_challenge", ""))
        answer = urllib.parse.urlencode({"code": code, "state": query.get("state", "")})
        return f"{query.get('redirect_uri', '')}?{answer}"

    def introspect(self, form: dict[str, str]) -> dict[str, Any]:
        user = self.user_of(form.get("token", ""))
        return {"active": True, "username": user} if user else {"active": False}


def _handler(tokens: TokenServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self, status: int, payload: dict[str, Any]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = dict(urllib.parse.parse_qsl(raw))
            tokens.requests.append((self.path, form))
            if tokens.client_secret is not None and self.path == "/token":
                basic = base64.b64encode(f"{CLIENT_ID}:{tokens.client_secret}".encode()).decode()
                if self.headers.get("Authorization") != f"Basic {basic}" and \
                        form.get("client_secret") != tokens.client_secret:
                    self._answer(401, {"error": "invalid_client"})
                    return
            if self.path == "/token" and tokens.failure is not None:
                self._answer(*tokens.failure)
            elif self.path == "/token":
                self._answer(*tokens.token(form))
            elif self.path == "/devicecode":
                self._answer(200, tokens.device(form))
            elif self.path == "/introspect":
                self._answer(200, tokens.introspect(form))
            else:
                self._answer(404, {"error": "not_found"})

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            tokens.requests.append((url.path, query))
            if url.path != "/authorize":
                self._answer(404, {"error": "not_found"})
                return
            self.send_response(302)
            self.send_header("Location", tokens.authorize(query))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class OAuthDovecot(Dovecot):
    """A private Dovecot whose OAUTHBEARER and XOAUTH2 logins are checked by the token server (RFC 7662)."""

    extra_mechanisms = " xoauth2 oauthbearer"

    def __init__(self, binary: str, tokens: TokenServer) -> None:
        super().__init__(binary)
        self.tokens = tokens

    def extra_config(self) -> str:
        settings = self.base / "dovecot-oauth2.conf.ext"
        settings.write_text(
            f"introspection_mode = post\nintrospection_url = {self.tokens.url('/introspect')}\n"
            "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
            "force_introspection = yes\n",
            encoding="utf-8",
        )
        # Dovecot delays a failed login (auth_failure_delay), and more with each failure from one address (anvil's
        # penalty, off when its socket cannot be opened); the tests refuse tokens on purpose, all from 127.0.0.1.
        # ACLs (RFC 4314), for `check`'s rights: owners have every right, except where the global file says.
        (self.base / "global-acl").write_text(f"{RESTRICTED_FOLDER} owner lr\n", encoding="utf-8")
        acl = ("mail_plugins = $mail_plugins acl\nprotocol imap {\n  mail_plugins = $mail_plugins imap_acl\n}\n"
               f"plugin {{\n  acl = vfile:{self.base}/global-acl\n}}\n")
        no_penalty = "service anvil {\n  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n}\n"
        return (acl + "auth_failure_delay = 0\n" + no_penalty +
                f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {settings}\n}}\n")


@dataclass
class OAuthHandler(RecordingHandler):
    """Takes mail only after XOAUTH2 or OAUTHBEARER with a token the token server says is active."""

    tokens: TokenServer | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)  # (mechanism, user) of each accepted login
    refusals: int = 0

    async def _check(self, server: Any, args: list[str], mechanism: str) -> AuthResult:
        blob = base64.b64decode(args[1]) if len(args) > 1 else await server.challenge_auth("")
        text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else ""
        header, _, rest = text.partition("\x01") if mechanism == "OAUTHBEARER" else ("", "", text)
        fields = dict(part.split("=", 1) for part in rest.split("\x01") if "=" in part)
        if mechanism == "OAUTHBEARER":  # the GS2 header "n,a=<user>," (RFC 7628 §3.1)
            parts = header.split(",")
            named = parts[1].removeprefix("a=") if len(parts) > 2 else ""
            fields["user"] = named.replace("=2C", ",").replace("=3D", "=")
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        assert self.tokens is not None
        if self.tokens.user_of(token) == user:
            self.logins.append((mechanism, user))
            return AuthResult(success=True, auth_data=user)
        self.refusals += 1
        # As Gmail does: the error as a challenge; the client's empty answer ends the exchange with 535.
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer"}))
        return AuthResult(success=False, handled=False)

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's name
        return await self._check(server, args, "XOAUTH2")

    async def auth_OAUTHBEARER(self, server: Any, args: list[str]) -> AuthResult:  # noqa: N802 - aiosmtpd's name
        return await self._check(server, args, "OAUTHBEARER")


class OAuthSmtpServer(SmtpServer):
    handler: OAuthHandler

    def __init__(self, tokens: TokenServer) -> None:
        super().__init__()
        self.handler = OAuthHandler(tokens=tokens)

    def start(self) -> None:
        if self.controller is None:
            # AUTH without TLS, as the bot's security = "none" on 127.0.0.1 (pyproject.toml filters its warning).
            self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, auth_required=True,
                                         auth_require_tls=False, auth_exclude_mechanism=["LOGIN", "PLAIN"])
            self.controller.start()


def generic_oauth2(token_file: Path, token_endpoint: str, scope: str) -> dict[str, str]:
    """An ``oauth2`` table for the tests' token server (provider "generic"), as a model's input."""
    return {"provider": "generic", "client_id": CLIENT_ID, "token_file": str(token_file),
            "token_endpoint": token_endpoint, "authorization_endpoint": "https://login.example/authorize",
            "scope": scope}


def token_file_for(path: Path, tokens: TokenServer, user: str) -> Path:
    """A token file holding a refresh token ``user`` consented to, as ``auth login`` writes it."""
    write_token_file(path, StoredToken(refresh_token=tokens.issue(user)))
    return path


def oauth2_table(section: str, token_file: Path, token_server: TokenServer, scope: str) -> str:
    return (f'[{section}.oauth2]\nprovider = "generic"\nclient_id = "{CLIENT_ID}"\ntoken_file = "{token_file}"\n'
            f'token_endpoint = "{token_server.url("/token")}"\n'
            f'authorization_endpoint = "{token_server.url("/authorize")}"\nscope = "{scope}"\n')


def oauth_bot(tmp_path: Path, oauth_dovecot: OAuthDovecot, oauth_smtp: OAuthSmtpServer, token_server: TokenServer,
              sqlite_url: str) -> Bot:
    """A bot whose [imap] and [smtp] log in with OAuth2, each from a token file of its own."""
    mailbox = f"support-{secrets.token_hex(4)}@smarthings.kz"  # its own mailbox on the shared Dovecot
    # The test itself delivers mail with the shared password (Dovecot's static passdb); the bot cannot.
    account = ImapAccount(port=oauth_dovecot.port, username=mailbox, dovecot=oauth_dovecot)
    bot = Bot(tmp_path, account, oauth_smtp, sqlite_url)
    for name in ("imap", "smtp"):
        write_token_file(bot.dir / f"{name}.token", StoredToken(refresh_token=token_server.issue(mailbox)))
    text = bot.config_path.read_text()
    text = text.replace(f'password = "{account.password}"\n', 'auth = "oauth2"\n')
    text = text.replace("[smtp]\n", oauth2_table("imap", bot.dir / "imap.token", token_server, "imap") + "\n[smtp]\n")
    text = text.replace("[database]\n", f'username = "{mailbox}"\nauth = "oauth2"\n'
                        + oauth2_table("smtp", bot.dir / "smtp.token", token_server, "smtp") + "\n[database]\n")
    bot.config_path.write_text(text + "\n[daemon]\npoll_interval_seconds = 60\n")
    return bot
