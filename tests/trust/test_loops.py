"""Mail that must never be answered, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_mailbot.reading.parse import parse_headers
from dsr_mailbot.trust.bounces import is_report
from dsr_mailbot.trust.loops import loop_reason

OWN = ("support@smarthings.kz", "support@smarththings.kz")


def reason(*lines: str, sender: str = "ivan@example.ru", subject: str = "Personal data update") -> str | None:
    raw = "\r\n".join([f"From: {sender}", f"Subject: {subject}", *lines]).encode() + b"\r\n\r\nbody"
    return loop_reason(parse_headers(raw), OWN)


def test_an_ordinary_letter_may_be_answered() -> None:
    assert reason("Auto-Submitted: no", "Precedence: first-class", "Return-Path: <ivan@example.ru>") is None


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("Auto-Submitted: auto-replied", "auto_submitted"),
        ("Auto-Submitted: auto-generated; owner-email=x@example.ru", "auto_submitted"),
        ("Precedence: bulk", "bulk_precedence"),
        ("Precedence: junk", "bulk_precedence"),
        ("Precedence: list", "bulk_precedence"),
        ("List-Id: <news.example.ru>", "list_mail"),
        ("List-Unsubscribe: <mailto:unsubscribe@example.ru>", "list_mail"),
        ("X-Autoreply: yes", "autoreply_header"),
        ("X-Autorespond: Away", "autoreply_header"),
        ("X-Auto-Response-Suppress: All", "autoreply_header"),
        ("Return-Path: <>", "null_return_path"),
        ("X-DSR-Mailbot: reply", "own_loop_marker"),
    ],
)
def test_header_rules(line: str, why: str) -> None:
    assert reason(line) == why


@pytest.mark.parametrize(
    "sender", ["MAILER-DAEMON@mx.example.ru", "postmaster@example.ru", "noreply@example.ru",
               "no-reply@shop.example", "do-not-reply@x.example", "bounces+123@lists.example"],
)
def test_daemon_and_noreply_senders(sender: str) -> None:
    assert reason(sender=sender) == "daemon_sender"


def test_the_operators_own_addresses_in_both_spellings() -> None:
    assert reason(sender="Support@SmartHings.KZ") == "from_operator_address"
    assert reason(sender="support@smarththings.kz") == "from_operator_address"


@pytest.mark.parametrize("subject", ["Automatic reply: Re: Personal data update",
                                     "Автоответ: Re: Обновление персональных данных",
                                     "Out of Office: Withdrawal of consent"])
def test_out_of_office_answers_to_our_replies(subject: str) -> None:
    assert reason(subject=subject) == "auto_reply_subject"


def test_every_real_bounce_and_auto_reply_is_caught(shared_dir: Path) -> None:
    """sisimai's bounces from many MTAs and RFC 3834 auto-replies, some without Auto-Submitted."""
    folder = shared_dir / "corpora" / "sisimai-set-of-emails"
    caught = 0
    for path in sorted(folder.rglob("*.eml")):
        if "not" in path.parts:
            continue  # not a bounce: a plain message
        headers = parse_headers(path.read_bytes())
        assert is_report(headers) or loop_reason(headers, OWN) is not None, path.name
        caught += 1
    assert caught >= 28
