"""Who may use the console: passwords, throttling, sessions and CSRF tokens.

- **Passwords** are checked with argon2-cffi against the ``[[web.operators]]``
  hashes (start-up refuses hashes weaker than RFC 9106 recommends, or of
  different costs).  An unknown login is checked against a dummy hash made
  with the same parameters, so that the time of an answer does not tell
  which logins exist.  At most :data:`MAX_CONCURRENT_CHECKS` checks run at
  once (each takes 64 MiB or more): a flood of logins queues, then gets 503,
  and never exhausts memory.
- **Throttling** (:class:`LoginThrottle`): an attempt is *recorded before
  its password is checked*, in the same locked step that decides whether it
  may be heard, so concurrent attempts cannot all slip past the count.
  After :data:`FREE_FAILURES` attempts in a row that did not succeed, every
  further attempt on the same key must wait, twice as long each time, up to
  :data:`MAX_LOCKOUT`, and is refused without a check.  The keys: the
  **client** address first; then the login as tried from a browser that
  never signed in to it (``login:…``, shared by every stranger), or, from a
  browser that did, that browser's own **device** key (a signed cookie set
  at each successful login, after OWASP's "device cookies").  So strangers
  alone can slow down only strangers: an operator's usual browser keeps its
  own count (and only that one: an attacker behind her office's address
  cannot lock it either), and a success clears the keys it used.
- **Sessions** (:class:`Sessions`) are kept in the console's memory, keyed by
  a random token that is the cookie's whole value: logging out ends a session
  at once, and a restart ends them all.  A session ends after
  :data:`IDLE_TIMEOUT` without a request and :data:`MAX_AGE` after login,
  whatever happens.  The cookie is ``Secure; HttpOnly; SameSite=Strict``.
- **CSRF**: each session has its own token, carried by every form as
  ``csrf_token`` and compared in constant time.  The login form, which comes
  before any session, uses a double-submit cookie instead.

Chose server-side sessions over Starlette's signed-cookie sessions: a signed
cookie cannot be revoked at logout and would outlive a password change.
"""

from __future__ import annotations

import base64
import hmac
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError

from dsr_mailbot.config import WebOperator
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.tokens import base36

MAX_CONCURRENT_CHECKS = 2
CHECK_QUEUE_SECONDS = 10.0  # how long an attempt waits for a free check before it is answered "busy"
DEVICE_MAX_AGE = timedelta(days=180)
FREE_FAILURES = 5
FIRST_LOCKOUT = timedelta(seconds=2)
MAX_LOCKOUT = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(hours=1)  # a failure older than this is forgotten
MAX_TRACKED = 10_000  # keys remembered at most
IDLE_TIMEOUT = timedelta(minutes=30)
MAX_AGE = timedelta(hours=8)


class Busy(Exception):
    """Every password check is in use: answer "try again shortly" rather than queue without end."""


class Passwords:
    def __init__(self, operators: Mapping[str, WebOperator]) -> None:
        self._operators = dict(operators)
        hashes = [operator.password_hash for operator in self._operators.values()]
        # The dummy costs what the configured hashes cost (start-up made them all alike).
        self._hasher = PasswordHasher.from_parameters(extract_parameters(hashes[0])) if hashes else PasswordHasher()
        self.dummy_hash = self._hasher.hash(secrets.token_hex(16))
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT_CHECKS)

    def check(self, login: str, password: str) -> WebOperator | None:
        """The operator whose password this is, or None; raises :class:`Busy` when no check is free in time."""
        operator = self._operators.get(login)
        if not self._slots.acquire(timeout=CHECK_QUEUE_SECONDS):
            raise Busy
        try:
            self._hasher.verify(operator.password_hash if operator else self.dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        finally:
            self._slots.release()
        return operator


@dataclass(frozen=True)
class _Failures:
    count: int
    last: datetime


@dataclass
class LoginThrottle:
    """Failures by login and by client address; both must be clear for an attempt to be heard."""

    _failures: dict[str, _Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def lockout(count: int) -> timedelta:
        """How long to wait after ``count`` failures in a row (pure): none for the first few, then doubling."""
        if count < FREE_FAILURES:
            return timedelta(0)
        doubled: timedelta = FIRST_LOCKOUT * (2 ** min(count - FREE_FAILURES, 20))
        return min(MAX_LOCKOUT, doubled)

    def begin(self, keys: tuple[str, ...], now: datetime) -> timedelta:
        """Record an attempt on ``keys`` (read in order) before its check, or say how long it must still wait.

        One locked step: either some key must wait (nothing is recorded, the
        wait is returned) or the attempt counts as a failure on every key
        now, undone by :meth:`succeeded`.  So a hundred concurrent attempts
        get at most :data:`FREE_FAILURES` checks.
        """
        with self._lock:
            for key in keys:
                found = self._failures.get(key)
                if found is None or now - found.last > FAILURE_MEMORY:
                    continue
                wait = found.last + self.lockout(found.count) - now
                if wait > timedelta(0):
                    return wait
            for key in keys:
                found = self._failures.get(key)
                count = found.count + 1 if found and now - found.last <= FAILURE_MEMORY else 1
                self._failures[key] = _Failures(count, now)
            if len(self._failures) > MAX_TRACKED:  # a spray from many addresses must not grow memory for ever
                self._forget_some(now)
        return timedelta(0)

    def _forget_some(self, now: datetime) -> None:
        """Forget old failures; if too many are recent, keep the newest half, so this runs once per many attempts."""
        cutoff = now - FAILURE_MEMORY
        kept = {k: v for k, v in self._failures.items() if v.last >= cutoff}
        if len(kept) > MAX_TRACKED // 2:
            kept = dict(sorted(kept.items(), key=lambda item: item[1].last)[-(MAX_TRACKED // 2):])
        self._failures = kept

    def succeeded(self, keys: tuple[str, ...]) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)

    def cancel(self, keys: tuple[str, ...]) -> None:
        """Take back an attempt :meth:`begin` recorded but that was never checked (every check was busy)."""
        with self._lock:
            for key in keys:
                found = self._failures.get(key)
                if found is not None:
                    self._failures[key] = _Failures(max(0, found.count - 1), found.last)


@dataclass(frozen=True)
class DeviceCookies:
    """A browser's proof that it signed in to a login before: ``<login, base64>.<issued, base 36>.<nonce>.<tag>``.

    The tag is keyed over all three; a cookie older than :data:`DEVICE_MAX_AGE` proves nothing.
    """

    keyring: Keyring

    def _tag(self, login: str, issued: str, nonce: str) -> str:
        return self.keyring.digest("console-device", f"{login}\0{issued}\0{nonce}")[:32]

    def issue(self, login: str, now: datetime) -> str:
        nonce = secrets.token_urlsafe(12)
        issued = base36(int(now.timestamp()))
        name = base64.urlsafe_b64encode(login.encode()).decode().rstrip("=")
        return f"{name}.{issued}.{nonce}.{self._tag(login, issued, nonce)}"

    def device_key(self, value: str | None, login: str, now: datetime) -> str | None:
        """``device:…`` when ``value`` is a live cookie this console issued for ``login``, else None."""
        parts = (value or "")[:512].split(".")
        if len(parts) != 4:
            return None
        name, issued, nonce, tag = parts
        expected = base64.urlsafe_b64encode(login.encode()).decode().rstrip("=")
        if not hmac.compare_digest(name, expected) or not hmac.compare_digest(self._tag(login, issued, nonce), tag):
            return None
        age = now.timestamp() - int(issued, 36)
        if not 0 <= age <= DEVICE_MAX_AGE.total_seconds():
            return None
        return f"device:{login.casefold()}:{nonce}"


def attempt_keys(client: str, login: str, device_key: str | None) -> tuple[str, ...]:
    """The throttle's keys for one attempt (see the module's docstring).

    From a browser that signed in to this login before, its device key
    alone: strangers sharing the operator's address (an office NAT, a VPN)
    cannot lock her out through it.  From any other, the client first, then
    the login as tried by strangers.
    """
    return (device_key,) if device_key else (f"client:{client}", f"login:{login.casefold()}")


@dataclass(frozen=True)
class WebSession:
    login: str
    language: str
    csrf_token: str
    created_at: datetime
    last_seen: datetime


@dataclass
class Sessions:
    clock: Callable[[], datetime]
    _by_token: dict[str, WebSession] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, operator: WebOperator) -> str:
        """A new session (never one the browser brought: no fixation); its token is the cookie's value."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._by_token = {t: s for t, s in self._by_token.items() if self._alive(s, now)}
            self._by_token[token] = WebSession(operator.login, operator.language, secrets.token_urlsafe(32), now, now)
        return token

    @staticmethod
    def _alive(session: WebSession, now: datetime) -> bool:
        return now - session.last_seen <= IDLE_TIMEOUT and now - session.created_at <= MAX_AGE

    def find(self, token: str | None) -> WebSession | None:
        """The live session of this token, its idle clock restarted; None when there is none (or it expired)."""
        if not token:
            return None
        now = self.clock()
        with self._lock:
            found = self._by_token.get(token)
            if found is None:
                return None
            if not self._alive(found, now):
                del self._by_token[token]
                return None
            found = replace(found, last_seen=now)
            self._by_token[token] = found
            return found

    def end(self, token: str | None) -> None:
        with self._lock:
            self._by_token.pop(token or "", None)


def same_token(expected: str | None, given: object) -> bool:
    """A CSRF check: both present, equal, compared in constant time."""
    if not expected or not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
