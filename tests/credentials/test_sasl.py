"""The SASL initial responses, byte for byte as the RFCs and the providers' documents give them."""

from __future__ import annotations

from dsr_mailbot.credentials.sasl import OAUTHBEARER, XOAUTH2, chosen_mechanism, oauthbearer, responder, xoauth2


def test_xoauth2_is_user_and_bearer_token_separated_by_ctrl_a() -> None:
    assert xoauth2("support@smarthings.kz", "ya29.abc") == "user=support@smarthings.kz\x01auth=Bearer ya29.abc\x01\x01"


def test_oauthbearer_has_the_gs2_header_host_and_port() -> None:
    assert oauthbearer("support@smarthings.kz", "smtp.office365.com", 587, "tok") == (
        "n,a=support@smarthings.kz,\x01host=smtp.office365.com\x01port=587\x01auth=Bearer tok\x01\x01")


def test_oauthbearer_escapes_comma_and_equals_in_the_identity() -> None:
    assert oauthbearer("a,b=c@x.kz", "h", 1, "t").startswith("n,a=a=2Cb=3Dc@x.kz,\x01")


def test_oauthbearer_is_preferred_then_xoauth2_then_nothing() -> None:
    assert chosen_mechanism(["PLAIN", "XOAUTH2", "OAUTHBEARER"]) == OAUTHBEARER
    assert chosen_mechanism(["login", "xoauth2"]) == XOAUTH2
    assert chosen_mechanism(["PLAIN", "LOGIN"]) is None


def test_the_responder_answers_a_servers_error_challenge_so_the_exchange_ends() -> None:
    bearer = responder(OAUTHBEARER, "u@x.kz", "h", 25, "t")
    assert bearer() == oauthbearer("u@x.kz", "h", 25, "t")
    assert bearer(b'{"status":"invalid_token"}') == "\x01"  # RFC 7628 3.2.3
    google = responder(XOAUTH2, "u@x.kz", "h", 25, "t")
    assert google() == xoauth2("u@x.kz", "t")
    assert google(b'{"status":"401"}') == ""
