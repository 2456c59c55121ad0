"""The From header is parsed as RFC 5322 says, before anything is decoded; one normal form for every address."""

from __future__ import annotations

import pytest

from dsr_mailbot.addresses import normalise_address, normalise_domain, parse_mailboxes, sender_address


def test_an_encoded_word_is_a_display_name_never_an_address() -> None:
    """The issue's example: DMARC authenticated attacker@mail.ru, so the bot must see exactly that."""
    raw = "=?utf-8?q?ivan=40mail.ru_=28?= <attacker@mail.ru> (=?utf-8?q?=29?=)"
    assert sender_address((raw,)) == ("attacker@mail.ru",)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?utf-8?q?ivan?=@mail.ru", ()),  # an encoded word in a local part is no address at all
        ('"ivan@mail.ru" <attacker@mail.ru>', ("attacker@mail.ru",)),
        ("attacker@mail.ru (ivan@mail.ru)", ("attacker@mail.ru",)),  # a comment is no address
        ("Иван (<ivan@mail.ru>) <attacker@mail.ru>", ("attacker@mail.ru",)),
        ('"ivan"@mail.ru', ("ivan@mail.ru",)),  # a quoted dot-atom is the same address
        ("Ivan.Petrov@Example.RU", ("ivan.petrov@example.ru",)),
        ("Иван <иван@пример.рф>", ("иван@xn--e1afmkfd.xn--p1ai",)),
        ("team: a@example.kz, b@example.kz;", ("a@example.kz", "b@example.kz")),
    ],
)
def test_addresses_are_read_from_the_raw_header(raw: str, expected: tuple[str, ...]) -> None:
    assert sender_address((raw,)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "alice@example.org)<bob@example.org>",  # CVE-2023-27043: older getaddresses reads two addresses
        "alice@example.org <bob@example.org>",
        "<@relay.example:ivan@mail.ru>",  # an obsolete source route is refused, not followed
        "ivan@mail.ru\x00@evil.example",
        "Ivan <ivan@mail.ru",
        '"unclosed <ivan@mail.ru>',
        "(unclosed comment ivan@mail.ru",
        "a@b@c.example",
        "x" * 5000 + "@example.kz",
    ],
)
def test_anything_not_read_exactly_is_no_sender(raw: str) -> None:
    assert sender_address((raw,)) == ()


def test_two_from_headers_give_no_sender() -> None:
    assert sender_address(("a@example.kz", "a@example.kz")) == ()


def test_display_names_are_kept_raw() -> None:
    [mailbox] = parse_mailboxes("=?utf-8?B?0JjQstCw0L0=?= <ivan@mail.ru>") or ()
    assert (mailbox.addr_spec, mailbox.display_name) == ("ivan@mail.ru", "=?utf-8?B?0JjQstCw0L0=?=")


@pytest.mark.parametrize(
    "lookalike",
    [
        "ivan@mail\uff0eru",  # a full-width dot is not a dot
        "ivan@mail\u3002ru",  # nor is an ideographic full stop
        "\u212aate@mail.ru",  # the Kelvin sign is not K (it is not NFC)
        "ivan@mai\u0301l.ru",  # a combining accent: not NFC
        "ivan\u200b@mail.ru",  # a zero-width space hides nothing
        "iv an@mail.ru",
        "ivan@-mail.ru",
        "ivan@localhost",
    ],
)
def test_lookalikes_are_invalid_not_folded(lookalike: str) -> None:
    assert normalise_address(lookalike) is None


def test_a_cyrillic_letter_makes_a_different_address() -> None:
    assert normalise_address("\u0456van@mail.ru") == "\u0456van@mail.ru" != normalise_address("ivan@mail.ru")


def test_case_and_idna_are_normalised() -> None:
    assert normalise_address("IVAN@Mail.RU") == "ivan@mail.ru"
    assert normalise_address("Иван@ПРИМЕР.рф") == "иван@xn--e1afmkfd.xn--p1ai"
    assert normalise_domain("xn--e1afmkfd.xn--p1ai") == normalise_domain("пример.рф")
