"""Confirmation tokens: unguessable, bound to one request and audience, expiring."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dsr_mailbot.reading.parse import parse_headers
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.tokens import NEW_ADDRESS, OWNER, Token, TokenStatus, check_token, find_token, make_token

KEYS = Keyring(b"k" * 32)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_token_is_found_in_subject_in_reply_to_or_references() -> None:
    token = make_token(KEYS, 42, OWNER, NOW + timedelta(days=7))
    for line in (f"Subject: Re: Подтвердите запрос [{token}]",
                 f"In-Reply-To: <dsr.42.challenge_o.0123456789abcdef0123.{token}@smarthings.kz>",
                 f"References: <a@b> <dsr.42.challenge_o.0123456789abcdef0123.{token}@smarthings.kz>"):
        found = find_token(parse_headers(f"From: a@example.kz\r\n{line}\r\n\r\n".encode()))
        assert found == token
        assert found is not None and check_token(KEYS, found, NOW) is TokenStatus.VALID


def test_no_token_in_ordinary_mail() -> None:
    assert find_token(parse_headers(b"Subject: Re: Personal data update\r\n\r\n")) is None


def test_tampering_with_any_part_is_detected() -> None:
    token = make_token(KEYS, 42, OWNER, NOW + timedelta(days=7))
    for forged in (
        Token(43, token.audience, token.expires_at, token.mac),
        Token(42, NEW_ADDRESS, token.expires_at, token.mac),
        Token(42, OWNER, token.expires_at + timedelta(days=30), token.mac),
        Token(42, OWNER, token.expires_at, "0" * 20),
    ):
        assert check_token(KEYS, forged, NOW) is TokenStatus.TAMPERED
    assert check_token(Keyring(b"j" * 32), token, NOW) is TokenStatus.TAMPERED


def test_a_token_expires() -> None:
    token = make_token(KEYS, 42, OWNER, NOW + timedelta(days=7))
    assert check_token(KEYS, token, NOW + timedelta(days=7)) is TokenStatus.EXPIRED
