"""Crafted request messages that made sender-text processing super-linear, at any size (issue 8, class 3).

Each builder returns a whole request message of about ``size`` bytes of
body from ``sender``: the tests feed them through a full pass at 1 MB, and
``bench/crafted.py`` times them against a plain message of the same size.
"""

from __future__ import annotations

from collections.abc import Callable

from tests.harness import mail

SUBJECT = "Обновление персональных данных"


def _repeat(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit.encode("utf-8")))


def ru_attribution(sender: str, size: int) -> bytes:
    """One line of « от <@» repeated: the Mail.ru attribution pattern was about n⁴ on it."""
    return mail(sender, SUBJECT, _repeat(" от <@", size) + ":\n")


def padded_field(sender: str, size: int) -> bytes:
    """A field line whose value is two words a megabyte of spaces apart: the field pattern was quadratic."""
    return mail(sender, SUBJECT, "Телефон: 8 701" + " " * size + "765 43 21\n")


def padded_outlook_header(sender: str, size: int) -> bytes:
    """Spaces before a word: the Outlook header pattern split the run between two white-space groups."""
    return mail(sender, SUBJECT, " " * size + "x\n" + _repeat("От: \n", size // 4))


def html_divs(sender: str, size: int) -> bytes:
    """An HTML-only body of unclosed <div>s: the HTML conversion was quadratic in their number."""
    return mail(sender, SUBJECT, html=_repeat("<div>", size))


def html_broken_tags(sender: str, size: int) -> bytes:
    """``<a<a<a…``: the standard library's HTML parser is quadratic on it."""
    return mail(sender, SUBJECT, html=_repeat("<a", size))


def wrote_lines(sender: str, size: int) -> bytes:
    """Many lines that almost end an attribution (« г. в 10:00 … » without the colon, « пишет » …)."""
    return mail(sender, SUBJECT, _repeat("12.11.2026, в 10:00 г. в 1:11 пишет    написал   от <a@b> x\n", size))


def quoted_form_labels(sender: str, size: int) -> bytes:
    """Quoted lines of spaces and '>' with a label-like start: the quoted fill-in form rule."""
    return mail(sender, SUBJECT, _repeat("> " + "Телефон " * 5 + " " * 200 + "x\n", size))


def encoded_word_subject(sender: str, size: int) -> bytes:
    """A subject of unterminated encoded words (the subject is cut before decoding)."""
    return mail(sender, SUBJECT + " " + _repeat("=?utf-8?q?a ", min(size, 60_000)), "Телефон: 8 701 765 43 21\n")


def huge_address_header(sender: str, size: int) -> bytes:
    """A To header of a megabyte of addresses: mail-parser reads every address header whole."""
    header = b"To: " + b", ".join(b"a%d@example.org" % n for n in range(size // 16)) + b"\r\n"
    return header + mail(sender, SUBJECT, "Телефон: 8 701 765 43 21\n")


def negated_body_phrases(sender: str, size: int) -> bytes:
    """Body phrases each behind a negation, after a giant word: every hit is looked at, and none counts."""
    return mail(sender, SUBJECT, "x" * (size // 2) + _repeat(" не отпишите меня не присылайте мне рекламу", size // 2))


def ticket_like_subject(sender: str, size: int) -> bytes:
    """Almost-ticket tags and auto-reply words before the marker: the loop rules read the subject whole.

    The decoded subject is cut at 4,095 characters, so this one stays below that whatever ``size`` is.
    """
    almost = _repeat("[#1 ", 1_800) + _repeat("##1 auto ", 1_800)
    return mail(sender, almost + SUBJECT, "Телефон: 8 701 765 43 21\n")


def attribution_quote_pairs(sender: str, size: int) -> bytes:
    """« пишет:» lines each followed by a quote: finding the next text line copied the rest of the letter."""
    return mail(sender, SUBJECT, _repeat("пишет:\n>\n", size))


CRAFTED: dict[str, Callable[[str, int], bytes]] = {
    "ru_attribution": ru_attribution,
    "padded_field": padded_field,
    "padded_outlook_header": padded_outlook_header,
    "html_divs": html_divs,
    "html_broken_tags": html_broken_tags,
    "wrote_lines": wrote_lines,
    "quoted_form_labels": quoted_form_labels,
    "encoded_word_subject": encoded_word_subject,
    "huge_address_header": huge_address_header,
    "negated_body_phrases": negated_body_phrases,
    "ticket_like_subject": ticket_like_subject,
    "attribution_quote_pairs": attribution_quote_pairs,
}


def plain_reference(sender: str, size: int) -> bytes:
    """An ordinary request of the same size: the reference the crafted ones are measured against."""
    return mail(sender, SUBJECT, "Телефон: 8 701 765 43 21\n" + _repeat("Обычный текст письма без подвоха.\n", size))
