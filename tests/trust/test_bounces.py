"""Delivery reports of our own replies are linked to their request; others are left alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dsr_mailbot.reading.parse import parse_headers
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.bounces import find_bounced_reply, is_report
from dsr_mailbot.trust.own_mail import reply_message_id
from dsr_mailbot.trust.tokens import OWNER, Token, challenge_message_id, make_token

KEYS = Keyring(b"k" * 32)


def dsn(original_message_id: str) -> str:
    return (
        "From: MAILER-DAEMON@mx.example.ru\r\nSubject: Undeliverable: Re: Personal data update\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.ru\r\n\r\n"
        "Final-Recipient: rfc822; ivan@example.ru\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {original_message_id}\r\n--b--\r\n"
    )


def test_a_report_of_our_reply_names_its_request() -> None:
    text = dsn(reply_message_id(KEYS, 7, "reply", "smarthings.kz"))
    headers = parse_headers(text.encode())
    assert (headers.content_type, headers.report_type) == ("multipart/report", "delivery-status")
    bounced = find_bounced_reply(text, KEYS)
    assert bounced is not None and (bounced.request_id, bounced.purpose, bounced.status) == (7, "reply", "5.1.1")


def test_a_report_of_a_challenge_names_its_request() -> None:
    token = make_token(KEYS, 9, OWNER, datetime(2030, 1, 1, tzinfo=UTC))
    bounced = find_bounced_reply(dsn(challenge_message_id(token, "smarthings.kz")), KEYS)
    assert bounced is not None and (bounced.request_id, bounced.purpose) == (9, "challenge_o")
    forged = challenge_message_id(Token(9, OWNER, token.expires_at, "0" * 20), "smarthings.kz")
    assert find_bounced_reply(dsn(forged), KEYS) is None


def test_a_forged_or_foreign_report_is_not_linked() -> None:
    assert find_bounced_reply(dsn("<dsr.7.reply.0123456789abcdef0123@smarthings.kz>"), KEYS) is None
    assert find_bounced_reply(dsn("<CAF00@mail.gmail.com>"), KEYS) is None
    assert parse_headers(b"Content-Type: multipart/mixed; boundary=x\r\n\r\n").report_type is None


def test_every_report_type_in_the_corpora_is_automated_mail(shared_dir: Path) -> None:
    """Real delivery-status, feedback (ARF) and disposition-notification (MDN) reports: none is ever a request."""
    seen: set[str] = set()
    for path in sorted((shared_dir / "corpora").rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        headers = parse_headers(path.read_bytes())
        if headers.content_type == "multipart/report":
            assert is_report(headers), path  # also the one without a report-type parameter (RFC 6522 asks for one)
            seen.add(headers.report_type or "(none)")
    assert seen >= {"delivery-status", "feedback-report", "disposition-notification"}
