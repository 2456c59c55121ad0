"""Who may use the console: passwords, throttling, sessions and CSRF tokens.

- **Passwords** are checked with argon2-cffi against the ``[[web.operators]]``
  hashes.  An unknown login is checked against a dummy hash, so that the
  time of an answer does not tell which logins exist.
- **Throttling** (:class:`LoginThrottle`): after :data:`FREE_FAILURES`
  failures in a row for a login, or from one client address, every further
  attempt must wait, twice as long each time, up to :data:`MAX_LOCKOUT`.
  While it waits, the password is not even checked.  A success clears the
  login's count.
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

import hmac
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from dsr_mailbot.config import WebOperator

FREE_FAILURES = 5
FIRST_LOCKOUT = timedelta(seconds=2)
MAX_LOCKOUT = timedelta(minutes=15)
FAILURE_MEMORY = timedelta(hours=1)  # a failure older than this is forgotten
IDLE_TIMEOUT = timedelta(minutes=30)
MAX_AGE = timedelta(hours=8)


class Passwords:
    def __init__(self, operators: Mapping[str, WebOperator]) -> None:
        self._operators = dict(operators)
        self._hasher = PasswordHasher()
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def check(self, login: str, password: str) -> WebOperator | None:
        operator = self._operators.get(login)
        try:
            self._hasher.verify(operator.password_hash if operator else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
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

    def wait(self, keys: tuple[str, ...], now: datetime) -> timedelta:
        """How long these keys (``login:…``, ``client:…``) must still wait before an attempt is heard."""
        longest = timedelta(0)
        with self._lock:
            for key in keys:
                found = self._failures.get(key)
                if found is None or now - found.last > FAILURE_MEMORY:
                    continue
                longest = max(longest, found.last + self.lockout(found.count) - now)
        return longest

    def failed(self, keys: tuple[str, ...], now: datetime) -> None:
        with self._lock:
            for key in keys:
                found = self._failures.get(key)
                count = found.count + 1 if found and now - found.last <= FAILURE_MEMORY else 1
                self._failures[key] = _Failures(count, now)
            if len(self._failures) > 10_000:  # a spray of made-up logins must not grow memory for ever
                cutoff = now - FAILURE_MEMORY
                self._failures = {k: v for k, v in self._failures.items() if v.last >= cutoff}

    def succeeded(self, login_key: str) -> None:
        with self._lock:
            self._failures.pop(login_key, None)


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
