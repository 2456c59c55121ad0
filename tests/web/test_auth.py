"""Passwords, the login throttle, sessions and CSRF tokens of the console (web/auth.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dsr_mailbot.config import WebOperator
from dsr_mailbot.web.auth import (
    FREE_FAILURES,
    IDLE_TIMEOUT,
    MAX_AGE,
    MAX_LOCKOUT,
    LoginThrottle,
    Passwords,
    Sessions,
    same_token,
)
from tests.web.console import LOGIN, PASSWORD, PASSWORD_HASH

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OPERATOR = WebOperator(LOGIN, PASSWORD_HASH, "kk")


def test_only_the_right_password_of_a_configured_login_passes() -> None:
    passwords = Passwords({LOGIN: OPERATOR})
    assert passwords.check(LOGIN, PASSWORD) == OPERATOR
    assert passwords.check(LOGIN, PASSWORD + " ") is None
    assert passwords.check("nobody", PASSWORD) is None  # checked against a dummy hash: no timing hint
    assert passwords.check(LOGIN, "") is None


def test_the_first_failures_cost_nothing_then_each_waits_twice_as_long_up_to_a_cap() -> None:
    waits = [LoginThrottle.lockout(n) for n in range(FREE_FAILURES + 12)]
    assert waits[:FREE_FAILURES] == [timedelta(0)] * FREE_FAILURES
    assert waits[FREE_FAILURES + 1] == 2 * waits[FREE_FAILURES] > timedelta(0)
    assert waits[-1] == MAX_LOCKOUT and LoginThrottle.lockout(10**6) == MAX_LOCKOUT


def test_a_login_or_a_client_that_keeps_failing_must_wait_and_a_success_clears_the_login() -> None:
    throttle = LoginThrottle()
    keys = ("login:aigerim", "client:10.0.0.7")
    for _ in range(FREE_FAILURES):
        assert throttle.wait(keys, NOW) == timedelta(0)
        throttle.failed(keys, NOW)
    assert throttle.wait(keys, NOW) > timedelta(0)
    # Another login from the same client waits too (a password spray), and so does the login from elsewhere.
    assert throttle.wait(("login:other", "client:10.0.0.7"), NOW) > timedelta(0)
    assert throttle.wait(("login:aigerim", "client:10.9.9.9"), NOW) > timedelta(0)
    assert throttle.wait(keys, NOW + MAX_LOCKOUT) == timedelta(0)
    throttle.succeeded("login:aigerim")
    assert throttle.wait(("login:aigerim", "client:10.9.9.9"), NOW) == timedelta(0)


def test_sessions_end_when_idle_when_too_old_and_at_logout() -> None:
    now = [NOW]
    sessions = Sessions(lambda: now[0])
    token = sessions.start(OPERATOR)
    found = sessions.find(token)
    assert found is not None and (found.login, found.language) == (LOGIN, "kk") and found.csrf_token
    assert sessions.find(token + "x") is None and sessions.find(None) is None
    # Used every 20 minutes it lives until its maximum age, not longer.
    while now[0] + timedelta(minutes=20) - NOW <= MAX_AGE:
        now[0] += timedelta(minutes=20)
        assert sessions.find(token) is not None
    now[0] = NOW + MAX_AGE + timedelta(seconds=1)
    assert sessions.find(token) is None
    idle = sessions.start(OPERATOR)
    now[0] += IDLE_TIMEOUT + timedelta(seconds=1)
    assert sessions.find(idle) is None
    ended = sessions.start(OPERATOR)
    sessions.end(ended)
    assert sessions.find(ended) is None


def test_each_session_has_its_own_token_and_csrf_token() -> None:
    sessions = Sessions(lambda: NOW)
    one, two = sessions.start(OPERATOR), sessions.start(OPERATOR)
    first, second = sessions.find(one), sessions.find(two)
    assert one != two and first is not None and second is not None and first.csrf_token != second.csrf_token


def test_a_csrf_token_must_be_present_and_equal() -> None:
    assert same_token("abc", "abc")
    assert not same_token("abc", "abd") and not same_token("abc", "") and not same_token("abc", None)
    assert not same_token(None, "abc") and not same_token("", "")
