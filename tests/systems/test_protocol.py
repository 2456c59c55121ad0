"""What an access answer shows of a system's text (pure): one line each, valid Unicode, bounded."""

from __future__ import annotations

import pytest

from dsr_mailbot.systems.protocol import MAX_VALUE_CHARS, shown


@pytest.mark.parametrize(("raw", "expected"), [
    ("a\n-- \nSmartThings", "a --  SmartThings"),  # a forged signature never starts a line
    ("a\r\nBcc: x@evil.example", "a  Bcc: x@evil.example"),
    ("a\u2028b\u2029c\x85d", "a b c d"),  # Unicode's own line breaks, which mail readers honour too
    ("nul\x00tab\tdel\x7f", "nul tab del "),
    ("Анна \u212aate", "Анна \u212aate"),  # letters are kept as written, look-alikes included: shown, not matched
])
def test_a_systems_text_is_shown_on_one_line(raw: str, expected: str) -> None:
    assert shown(raw, 200) == expected


def test_broken_unicode_and_a_megabyte_value_are_shown_bounded_and_valid() -> None:
    assert "\ufffd" in shown("x\ud800y", 200) and shown("x\ud800y", 200).encode("utf-8")
    assert len(shown("я" * 1_000_000, MAX_VALUE_CHARS)) == MAX_VALUE_CHARS
