"""Authentication-Results: only the operator's own, placed where only it can write, is believed."""

from __future__ import annotations

import pytest

from dsr_mailbot.reading.parse import parse_headers
from dsr_mailbot.trust.authresults import check_authentication, trusted_results

MX = "mx.smarthings.kz"
OUR_RECEIVED = ("Received: from mail.example.kz (mail.example.kz [192.0.2.1]) by mx.smarthings.kz with ESMTPS id X;"
                " Wed, 25 Nov 2026 10:00:00 +0500")


def items(*lines: str) -> tuple[tuple[str, str], ...]:
    raw = "\r\n".join(lines).encode() + b"\r\nFrom: a@example.kz\r\nSubject: x\r\n\r\n"
    return parse_headers(raw).items


def check(*lines: str, sender: str = "a@example.kz", authserv_id: str | None = MX,
          own_received_lines: int = 0) -> tuple[bool, str]:
    result = check_authentication(items(*lines), authserv_id, sender, own_received_lines)
    return result.authenticated, result.summary


def test_dmarc_pass_from_the_operators_server_is_believed() -> None:
    assert check(f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz", OUR_RECEIVED) == (
        True, "dmarc=pass")


def test_aligned_dkim_pass_is_enough() -> None:
    auth = f"Authentication-Results: {MX}; dkim=pass header.d=example.kz; dmarc=none"
    assert check(auth, OUR_RECEIVED)[0]
    assert check(auth, OUR_RECEIVED, sender="a@mail.example.kz")[0]  # a parent domain signs for its subdomain


@pytest.mark.parametrize(
    "result",
    [
        "dmarc=fail header.from=example.kz",
        "dkim=pass header.d=attacker.example; spf=pass smtp.mailfrom=attacker.example",
        "dmarc=pass header.from=attacker.example",
        "spf=pass smtp.mailfrom=example.kz",
        "none",
    ],
)
def test_anything_else_is_not_authenticated(result: str) -> None:
    assert not check(f"Authentication-Results: {MX}; {result}", OUR_RECEIVED)[0]


def test_a_foreign_authserv_id_is_ignored() -> None:
    authenticated, summary = check("Authentication-Results: mx.google.com; dmarc=pass header.from=example.kz",
                                   OUR_RECEIVED)
    assert not authenticated and summary == "no trusted header"


def test_a_header_below_the_operators_received_line_is_ignored() -> None:
    """The sender wrote it: everything below our server's own Received line came from outside."""
    forged = f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz"
    assert not check(f"Authentication-Results: {MX}; dmarc=fail header.from=example.kz", OUR_RECEIVED, forged)[0]
    assert not check(OUR_RECEIVED, forged)[0]


def test_a_lower_received_line_naming_our_server_never_moves_the_boundary() -> None:
    """Position decides, never names: a sender can write 'by mx.smarthings.kz' into any line below ours."""
    top = "Received: from mx.smarthings.kz by mx1.smarthings.kz with ESMTPS; Wed, 25 Nov 2026 10:00:01 +0500"
    forged = f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz"
    assert not check(top, forged, OUR_RECEIVED)[0]


def test_own_delivery_hops_are_skipped_by_count_when_configured() -> None:
    lmtp = "Received: from mx.smarthings.kz by imap.smarthings.kz with LMTP; Wed, 25 Nov 2026 10:00:01 +0500"
    auth = f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz"
    assert not check(lmtp, auth, OUR_RECEIVED)[0]
    assert check(lmtp, auth, OUR_RECEIVED, own_received_lines=1)[0]
    assert not check(lmtp, OUR_RECEIVED, auth, own_received_lines=1)[0]


def test_an_explicit_dmarc_fail_vetoes_an_aligned_dkim_pass() -> None:
    auth = f"Authentication-Results: {MX}; dkim=pass header.d=example.kz; dmarc=fail header.from=example.kz"
    assert not check(auth, OUR_RECEIVED)[0]
    two = (f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz",
           f"Authentication-Results: {MX}; dmarc=fail header.from=example.kz")
    assert not check(*two, OUR_RECEIVED)[0]


def test_a_dmarc_pass_without_header_from_proves_nothing() -> None:
    assert not check(f"Authentication-Results: {MX}; dmarc=pass", OUR_RECEIVED)[0]
    assert not check(f"Authentication-Results: {MX}; dkim=pass header.d=example.kz; dmarc=pass", OUR_RECEIVED)[0]


def test_an_encoded_word_in_the_header_is_text_not_a_result() -> None:
    """Decoded, '=?utf-8?q?dmarc=3Dpass?=' would read as a pass; raw, it is an unknown token."""
    auth = f"Authentication-Results: {MX}; =?utf-8?q?dmarc=3Dpass_header.from=3Dexample.kz?="
    assert not check(auth, OUR_RECEIVED)[0]
    received = "Received: =?utf-8?q?by_mx.smarthings.kz?= ; Wed, 25 Nov 2026 10:00:00 +0500"
    assert not check(received, f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz", OUR_RECEIVED)[0]


def test_header_from_is_compared_in_the_normal_form() -> None:
    auth = f"Authentication-Results: {MX}; dmarc=pass header.from=EXAMPLE.kz"
    assert check(auth, OUR_RECEIVED)[0]
    lookalike = f"Authentication-Results: {MX}; dmarc=pass header.from=example\uff0ekz"
    assert not check(lookalike.encode().decode("unicode-escape"), OUR_RECEIVED)[0]


def test_without_any_received_line_nothing_counts() -> None:
    assert not check(f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz")[0]


def test_without_a_configured_authserv_id_nothing_counts() -> None:
    auth = f"Authentication-Results: {MX}; dmarc=pass header.from=example.kz"
    assert check(auth, OUR_RECEIVED, authserv_id=None) == (False, "no trusted authserv-id configured")


def test_unparseable_headers_are_skipped_not_trusted() -> None:
    lines = ("Authentication-Results: dmarc=pass", f"Authentication-Results: {MX}; dkim=pass header.d=example.kz",
             OUR_RECEIVED)
    assert [(r.method, r.result) for r in trusted_results(items(*lines), MX)] == [("dkim", "pass")]
