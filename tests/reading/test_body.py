"""The person's own words: HTML to text, quoted history and signatures removed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_mailbot.reading.body import html_to_text, reply_text
from dsr_mailbot.reading.parse import parse_message


def test_html_to_text_keeps_lines_and_drops_scripts_styles_and_quotes() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p>Телефон: <b>+7&nbsp;701</b> 765 43 21</p><div>Фамилия: Иванова<br>Имя: Анна</div>"
        "<script>alert('Телефон: 000')</script>"
        "<blockquote>Телефон: +7 702 000 00 00</blockquote></body></html>"
    )
    assert html_to_text(html) == "Телефон: +7 701 765 43 21\nФамилия: Иванова\nИмя: Анна"


def test_html_gmail_quote_and_outlook_reply_block_are_dropped() -> None:
    gmail = '<div>New</div><div class="gmail_quote">On Mon wrote:<blockquote>Old</blockquote></div>'
    outlook = '<div>New</div><div id="divRplyFwdMsg">From: x</div><div>Old text</div>'
    assert html_to_text(gmail) == "New"
    assert html_to_text(outlook) == "New"


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 2 Apr 2012 at 10:00, Support <support@smarthings.kz> wrote:",
        "12 сентября 2024 г., в 10:15, Support написал(а):",
        "чт, 12 сент. 2024 г. в 10:15, Support <support@smarthings.kz>:",
        "12.09.2024, 10:15, \"Support\" <support@smarthings.kz>:",
        "Среда, 11 сентября 2024, 10:15 +05:00 от Support <support@smarthings.kz>:",
        "Support пишет:",
        "2024 ж. 12 қыркүйек, Support жазды:",
    ],
)
def test_top_posted_reply_ends_at_the_attribution(attribution: str) -> None:
    body = f"Телефон: +7 701 765 43 21\n\n{attribution}\n> Телефон: +7 702 000 00 00\n"
    assert reply_text(body) == "Телефон: +7 701 765 43 21"


@pytest.mark.parametrize(
    "history",
    [
        "-----Original Message-----\nFrom: Support\nPhone: 000",
        "-------- Исходное сообщение --------\nОт: Support\nТелефон: 000",
        "________________________________\nОт: Support\nОтправлено: 12 сентября 2024 г.\nТелефон: 000",
        "From: Support <support@smarthings.kz>\nSent: Monday\nTo: me\nPhone: 000",
        "От: Support <support@smarthings.kz>\nДата: 12.09.2024\nТема: Re\nТелефон: 000",
        "-- \nИван\nТелефон: 000",
        "Отправлено из мобильной Почты Mail.ru\nТелефон: 000",
        "Sent from my iPhone\nPhone: 000",
    ],
)
def test_unquoted_history_and_signatures_are_cut(history: str) -> None:
    assert reply_text(f"Телефон: +7 701 765 43 21\n\n{history}\n") == "Телефон: +7 701 765 43 21"


def test_bottom_posted_answer_below_a_quote_is_kept() -> None:
    body = "On 04/02/2012 06:26 PM, Support wrote:\n> Hi\nТелефон: +7 701 765 43 21\n"
    assert reply_text(body) == "Телефон: +7 701 765 43 21"


def test_attribution_followed_by_unquoted_history_ends_the_reply() -> None:
    body = "On Nov 26, 2012, at 10:27 AM, Support <s@x.kz> wrote:\nPhone: +7 702 000 00 00\n"
    assert reply_text(body) == ""


def test_answer_under_a_quoted_empty_form_line_is_read_as_that_field() -> None:
    body = "> Телефон:\n+7 701 765 43 21\n> E-mail:\n> Фамилия:\nИванова\n"
    assert reply_text(body) == "Телефон: +7 701 765 43 21\nФамилия: Иванова"


def test_dash_lists_are_not_mistaken_for_signatures() -> None:
    body = "- Телефон: +7 701 765 43 21\n- Фамилия: Иванова\n"
    assert reply_text(body) == body.strip()


def test_reply_bodies_from_real_clients(shared_dir: Path) -> None:
    """github/email_reply_parser fixtures: the reply part, as that project's own tests expect it."""
    folder = shared_dir / "corpora" / "github-email-reply-parser"
    expected_start = {
        "email_1_2.txt": "Hi,\n\nYou can list the keys for the bucket",
        "email_1_3.txt": "Oh thanks.\n\nHaving the function would be great.",
        "email_1_8.txt": "I will reply under this one\n\n\nand under this.",
        "email_2_1.txt": "Outlook with a reply",
        "email_BlackBerry.txt": "Here is another email",
        "email_iPhone.txt": "Here is another email",
        "email_sig_delimiter_in_middle_of_line.txt": "Hi there!\n\nStuff happened.\n\nAnd here is a fix -- this",
        "greedy_on.txt": "On your remote host you can run:",
    }
    for name, start in expected_start.items():
        text = reply_text((folder / name).read_text(encoding="utf-8"))
        assert text.startswith(start), name
        assert ">" not in text, name
    assert "wrote:" not in reply_text((folder / "email_1_3.txt").read_text(encoding="utf-8"))
    greedy = reply_text((folder / "greedy_on.txt").read_text(encoding="utf-8"))
    assert "George Plymale" not in greedy and "rmate/issues/29" not in greedy
    zapier = shared_dir / "corpora" / "zapier-email-reply-parser" / "email_headers_no_delimiter.txt"
    assert reply_text(zapier.read_text(encoding="utf-8")) == "And another reply!"


def test_full_messages_from_real_clients(shared_dir: Path) -> None:
    """mailgun/talon fixtures: every client's reply reads as just "Hello"."""
    folder = shared_dir / "corpora" / "mailgun-talon" / "standard_replies"
    for path in sorted(folder.glob("*.eml")):
        assert reply_text(parse_message(path.read_bytes()).body_text) == "Hello", path.name


def test_html_replies_from_real_clients(shared_dir: Path) -> None:
    folder = shared_dir / "corpora" / "mailgun-talon" / "html_replies"
    for path in sorted(folder.glob("*.html")):
        text = reply_text(html_to_text(path.read_text(encoding="utf-8")))
        assert text.startswith("Hi. I am fine."), path.name
        assert "How are you" not in text and "Hello" not in text, path.name
