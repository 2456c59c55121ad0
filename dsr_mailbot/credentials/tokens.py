"""Access tokens for one mail login, from the refresh token in its token file (Authlib over httpx2).

The token file is the only state: it holds the refresh token and the last
access token with its expiry, mode 0600, and is replaced atomically (a new
file, fsynced, renamed over the old one), so that a crash never leaves half
a token and a rotated refresh token is never lost.  Every login reads it:
an access token with more than ``LEEWAY_SECONDS`` left is used as it is,
otherwise it is refreshed first.  A refresh holds an exclusive lock on
``<token_file>.lock`` and reads the file again under it, so that two
workers (or the IMAP and SMTP logins sharing one file) refresh once and a
rotated refresh token is never spent twice.

A refresh the provider refuses (consent revoked, the app's secret expired)
raises :class:`CredentialsRefused`, naming the provider's answer: a person
must run ``dsr-mailbot auth login`` again, and retrying cannot help.  A
provider that cannot be reached raises :class:`CredentialsUnavailable`.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dsr_mailbot.config.oauth2 import OAuth2Config
from dsr_mailbot.credentials.providers import Use
from dsr_mailbot.errors import ConfigError, CredentialsRefused, CredentialsUnavailable

LEEWAY_SECONDS = 120  # an access token this close to its expiry is refreshed before a login, not after a refusal
HTTP_TIMEOUT_SECONDS = 30
# RFC 6749 §4.1.2.1 (which Microsoft's token endpoint answers too, e.g. AADSTS90033): retrying later can help.
TRANSIENT_ERRORS = ("temporarily_unavailable", "server_error")
ANSWER_CHARS = 200  # of a provider's error description, in a message: it names codes and trace ids, not people


@dataclass(frozen=True)
class StoredToken:
    refresh_token: str
    access_token: str | None = None
    expires_at: float | None = None  # seconds since the epoch; None: the provider did not say

    def usable(self, now: float) -> bool:
        return self.access_token is not None and (self.expires_at is None or self.expires_at - now > LEEWAY_SECONDS)


def read_token_file(path: Path, section: str) -> StoredToken:
    """The stored token, or a :class:`ConfigError` naming the file and what to do."""
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            raw = handle.read(64 * 1024)
    except FileNotFoundError:
        raise ConfigError(f"[{section}] token_file: {path} does not exist; run 'dsr-mailbot auth login'") from None
    except OSError as exc:
        raise ConfigError(f"[{section}] token_file: cannot read {path} ({exc.strerror})") from exc
    if mode & 0o077:
        # A refresh token is a standing password to the mailbox: like ssh with a private key, refuse to use it.
        raise ConfigError(f"[{section}] token_file: {path} is readable by others (mode {mode & 0o777:o}); "
                          f"chmod 600 it")
    try:
        data = json.loads(raw)
        return StoredToken(refresh_token=str(data["refresh_token"]), access_token=data.get("access_token"),
                           expires_at=float(data["expires_at"]) if data.get("expires_at") is not None else None)
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"[{section}] token_file: {path} is not a token file; "
                          f"run 'dsr-mailbot auth login'") from exc


def write_token_file(path: Path, token: StoredToken) -> None:
    """Replace the token file atomically, mode 0600 from its first byte."""
    # A new name of its own (O_EXCL, not followed): a file or symlink planted under a guessable name in a shared
    # directory would otherwise receive the refresh token, or become the token file.
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(asdict(token), handle)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


@contextmanager
def _refresh_lock(path: Path, section: str) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    try:  # a symlink planted under the lock's name is not followed (it would create or hold another file)
        descriptor = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise ConfigError(f"[{section}] token_file: cannot lock {lock} ({exc.strerror})") from exc
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing releases the lock


def token_from_answer(answer: dict[str, Any], previous_refresh_token: str, now: float) -> StoredToken:
    """What to store from a token endpoint's answer: a rotated refresh token when it sent one, else the old one."""
    expires_in = answer.get("expires_in")
    if not answer.get("access_token"):
        raise ValueError("no access_token in the answer")
    return StoredToken(
        refresh_token=str(answer.get("refresh_token") or previous_refresh_token),
        access_token=str(answer["access_token"]),
        expires_at=now + float(expires_in) if expires_in is not None else None,
    )


def one_line(text: object) -> str:
    """A provider's words, made fit for a log line: printable, on one line, bounded."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in str(text or ""))
    return " ".join(cleaned.split())[:ANSWER_CHARS]


def oauth_client(config: OAuth2Config, scope: str) -> Any:
    """Authlib's client over httpx2 (imported here: a password login never pays for it)."""
    from authlib.integrations.httpx_client import OAuth2Client

    client = OAuth2Client(client_id=config.client_id, client_secret=config.client_secret, scope=scope,
                          timeout=HTTP_TIMEOUT_SECONDS, trust_env=False, follow_redirects=False)
    for hook in ("access_token_response", "refresh_token_response"):
        client.register_compliance_hook(hook, _busy_is_an_http_error)
    return client


def _busy_is_an_http_error(response: Any) -> Any:
    """A throttled or timed-out request (429, 408) is an outage, whatever OAuth2 error its body names."""
    if response.status_code in (408, 429):
        response.raise_for_status()
    return response


@contextmanager
def provider_errors(config: OAuth2Config, section: str, what: str,
                    advice: str = "; run 'dsr-mailbot auth login'") -> Iterator[None]:
    """Authlib's and httpx2's errors as ours: refused for good, or not reachable now."""
    import httpx2
    from authlib.integrations.base_client import OAuthError
    from authlib.oauth2.base import OAuth2Error

    provider = config.known.display
    try:
        yield
    except (OAuth2Error, OAuthError) as exc:
        answer = one_line(f"{exc.error}: {exc.description}" if exc.description else exc.error)
        if exc.error in TRANSIENT_ERRORS:  # the provider's own "try again later": not a refusal
            raise CredentialsUnavailable(f"[{section}.oauth2] {provider}'s token endpoint: {answer}") from exc
        raise CredentialsRefused(f"[{section}.oauth2] {provider} refused {what} ({answer}){advice}",
                                 answer=answer) from exc
    except httpx2.HTTPStatusError as exc:
        status = exc.response.status_code
        if 400 <= status < 500 and status not in (408, 429):
            raise CredentialsRefused(f"[{section}.oauth2] {provider} refused {what} (HTTP {status}){advice}",
                                     answer=f"HTTP {status}") from exc
        raise CredentialsUnavailable(f"[{section}.oauth2] {provider}'s token endpoint: HTTP {status}") from exc
    except (httpx2.HTTPError, ValueError, KeyError) as exc:  # unreachable, timed out, not JSON, not OAuth2
        raise CredentialsUnavailable(f"[{section}.oauth2] {provider}'s token endpoint: "
                                     f"{type(exc).__name__}") from exc


class AccessTokens:
    """Access tokens for one login (``use``: imap or smtp), read from and refreshed into its token file."""

    def __init__(self, config: OAuth2Config, use: Use, section: str,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.use = use
        self.section = section
        self.clock = clock

    def current(self) -> str:
        """An access token good for at least ``LEEWAY_SECONDS`` more: the stored one, or a fresh one."""
        stored = read_token_file(self.config.token_file, self.section)
        if stored.usable(self.clock()):
            assert stored.access_token is not None
            return stored.access_token
        return self.refresh()

    def refresh(self, rejected: str | None = None) -> str:
        """A new access token.  ``rejected``: the token a server just refused; another worker's newer one is
        taken instead of refreshing again."""
        path = self.config.token_file
        with _refresh_lock(path, self.section):
            stored = read_token_file(path, self.section)
            if stored.usable(self.clock()) and stored.access_token != rejected:
                assert stored.access_token is not None
                return stored.access_token  # refreshed by another worker while this one waited for the lock
            with provider_errors(self.config, self.section, "the refresh token"):
                client = oauth_client(self.config, self.config.scope_for(self.use))
                try:
                    answer = client.refresh_token(self.config.token_url(), refresh_token=stored.refresh_token)
                finally:
                    client.close()
                fresh = token_from_answer(dict(answer), stored.refresh_token, self.clock())
            write_token_file(path, fresh)
        assert fresh.access_token is not None
        return fresh.access_token
