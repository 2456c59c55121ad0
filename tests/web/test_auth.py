"""Passwords, the login throttle, sessions and CSRF tokens of the console (web/auth.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest.mock import patch

import pytest
from argon2 import PasswordHasher, extract_parameters

from dsr_mailbot.config import WebOperator
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.web.auth import (
    DEVICE_MAX_AGE,
    FREE_FAILURES,
    IDLE_TIMEOUT,
    MAX_AGE,
    MAX_CONCURRENT_CHECKS,
    MAX_LOCKOUT,
    MAX_TRACKED,
    Busy,
    DeviceCookies,
    LoginThrottle,
    Passwords,
    Sessions,
    attempt_keys,
    same_token,
)
from tests.web.console import LOGIN, PASSWORD, PASSWORD_HASH

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OPERATOR = WebOperator(login=LOGIN, password_hash=PASSWORD_HASH, language="kk")


def test_only_the_right_password_of_a_configured_login_passes() -> None:
    passwords = Passwords({LOGIN: OPERATOR})
    assert passwords.check(LOGIN, PASSWORD) == OPERATOR
    assert passwords.check(LOGIN, PASSWORD + " ") is None
    assert passwords.check("nobody", PASSWORD) is None  # checked against a dummy hash: no timing hint
    assert passwords.check(LOGIN, "") is None


def test_the_dummy_hash_of_unknown_logins_costs_what_the_configured_hashes_cost() -> None:
    """argon2-cffi's defaults would do for the dummy only while the operators' hashes used them too."""
    strong = PasswordHasher(time_cost=4, memory_cost=96 * 1024, parallelism=2).hash(PASSWORD)
    passwords = Passwords({LOGIN: WebOperator(login=LOGIN, password_hash=strong, language="ru")})
    assert extract_parameters(passwords.dummy_hash) == extract_parameters(strong)
    assert passwords.check("nobody", PASSWORD) is None and passwords.check(LOGIN, PASSWORD) is not None


def test_at_most_a_few_password_checks_run_at_once_and_the_rest_are_told_busy() -> None:
    passwords = Passwords({LOGIN: OPERATOR})
    held = [passwords._slots.acquire(timeout=0) for _ in range(MAX_CONCURRENT_CHECKS)]
    assert all(held) and not passwords._slots.acquire(timeout=0)
    with patch("dsr_mailbot.web.auth.CHECK_QUEUE_SECONDS", 0.05), pytest.raises(Busy):
        passwords.check(LOGIN, PASSWORD)
    for _ in held:
        passwords._slots.release()
    assert passwords.check(LOGIN, PASSWORD) == OPERATOR


def test_the_first_failures_cost_nothing_then_each_waits_twice_as_long_up_to_a_cap() -> None:
    waits = [LoginThrottle.lockout(n) for n in range(FREE_FAILURES + 12)]
    assert waits[:FREE_FAILURES] == [timedelta(0)] * FREE_FAILURES
    assert waits[FREE_FAILURES + 1] == 2 * waits[FREE_FAILURES] > timedelta(0)
    assert waits[-1] == MAX_LOCKOUT and LoginThrottle.lockout(10**6) == MAX_LOCKOUT


def test_an_attempt_is_recorded_before_its_check_so_concurrent_ones_cannot_all_pass() -> None:
    """No check happens between these calls, as when a hundred requests arrive at once."""
    throttle = LoginThrottle()
    keys = attempt_keys("10.0.0.7", LOGIN, None)
    heard = [throttle.begin(keys, NOW) == timedelta(0) for _ in range(150)]
    assert heard.count(True) == FREE_FAILURES


def test_a_client_or_a_login_that_keeps_failing_must_wait_and_a_success_clears_its_keys() -> None:
    throttle = LoginThrottle()
    keys = attempt_keys("10.0.0.7", LOGIN, None)
    for _ in range(FREE_FAILURES):
        assert throttle.begin(keys, NOW) == timedelta(0)  # each failed afterwards: nothing undoes it
    assert throttle.begin(keys, NOW) > timedelta(0)
    # Another login from the same client waits too (a password spray), and so does the login from elsewhere.
    assert throttle.begin(attempt_keys("10.0.0.7", "other", None), NOW) > timedelta(0)
    assert throttle.begin(attempt_keys("10.9.9.9", LOGIN, None), NOW) > timedelta(0)
    assert throttle.begin(keys, NOW + MAX_LOCKOUT) == timedelta(0)
    throttle.succeeded(keys)
    assert throttle.begin(attempt_keys("10.9.9.9", LOGIN, None), NOW + MAX_LOCKOUT) == timedelta(0)


def test_strangers_alone_cannot_lock_an_operator_out_of_the_browser_she_signed_in_with() -> None:
    throttle = LoginThrottle()
    devices = DeviceCookies(Keyring(b"k" * 32))
    cookie = devices.issue(LOGIN, NOW)
    for stranger in range(50):  # from fifty addresses, without her cookie: the shared login key locks
        throttle.begin(attempt_keys(f"203.0.113.{stranger}", LOGIN, None), NOW)
    assert throttle.begin(attempt_keys("198.51.100.1", LOGIN, None), NOW) > timedelta(0)
    her_device = devices.device_key(cookie, LOGIN, NOW)
    assert her_device is not None
    assert throttle.begin(attempt_keys("192.0.2.10", LOGIN, her_device), NOW) == timedelta(0)
    # Strangers behind her own office address lock that address, never her browser.
    for _ in range(20):
        throttle.begin(attempt_keys("192.0.2.10", "whoever", None), NOW)
    assert throttle.begin(attempt_keys("192.0.2.10", LOGIN, her_device), NOW) == timedelta(0)


def test_a_device_cookie_counts_only_for_its_login_while_young_and_cannot_be_forged() -> None:
    devices = DeviceCookies(Keyring(b"k" * 32))
    cookie = devices.issue(LOGIN, NOW)
    assert devices.device_key(cookie, LOGIN, NOW + DEVICE_MAX_AGE) is not None
    assert devices.device_key(cookie, LOGIN, NOW + DEVICE_MAX_AGE + timedelta(seconds=1)) is None  # too old
    assert devices.device_key(cookie, "other", NOW) is None
    assert DeviceCookies(Keyring(b"j" * 32)).device_key(cookie, LOGIN, NOW) is None
    name, issued, nonce, tag = cookie.split(".")
    assert devices.device_key(f"{name}.{issued}.{nonce}x.{tag}", LOGIN, NOW) is None
    assert devices.device_key(f"{name}.zzzzzz.{nonce}.{tag}", LOGIN, NOW) is None  # a later issue date: refused
    assert devices.device_key(None, LOGIN, NOW) is None and devices.device_key("a" * 10_000, LOGIN, NOW) is None


def test_a_spray_from_many_addresses_keeps_memory_bounded_and_the_shared_login_key() -> None:
    throttle = LoginThrottle()
    for n in range(3 * MAX_TRACKED):
        throttle.begin(attempt_keys(f"2001:db8::{n:x}", LOGIN, None), NOW)
    assert len(throttle._failures) <= MAX_TRACKED + 2
    assert throttle.begin(attempt_keys("2001:db8::ffff:1", LOGIN, None), NOW) > timedelta(0)  # still locked


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
