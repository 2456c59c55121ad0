"""Parsing real and broken mail: headers, text of the body, charsets; never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_mailbot.reading.decode import decode_bytes, decode_header_text, known_charset
from dsr_mailbot.reading.parse import parse_headers, parse_message

RU = "Обновление персональных данных"


@pytest.mark.parametrize("codec", ["cp1251", "koi8_r", "utf-8"])
def test_unlabelled_cyrillic_bytes_are_decoded(codec: str) -> None:
    assert decode_bytes(f"Телефон: {RU}".encode(codec)) == f"Телефон: {RU}"


def test_a_lying_charset_label_is_overruled() -> None:
    assert decode_bytes(RU.encode("cp1251"), "utf-8") == RU


def test_an_unknown_charset_falls_back_to_detection() -> None:
    assert known_charset("x-unknown") is None
    assert decode_bytes(RU.encode("utf-8"), "x-unknown") == RU


def test_header_words_in_several_charsets_and_raw_8bit() -> None:
    assert decode_header_text("=?koi8-r?B?8NLJ18XU?= =?utf-8?B?0LzQuNGA?=") == "Приветмир"
    raw = RU.encode("cp1251").decode("ascii", "surrogateescape")
    assert decode_header_text(raw) == RU
    assert decode_header_text("=?unknown-8bit?Q?=D0=9F=D1=80?=") == "Пр"


def test_headers_give_sender_ids_and_threading() -> None:
    headers = parse_headers(
        b"From: =?utf-8?B?0JjQstCw0L0=?= <Ivan@Example.RU>\r\n"
        b"Subject: =?utf-8?B?0J7RgtC30YvQsiDRgdC+0LPQu9Cw0YHQuNGP?=\r\n"
        b"Message-ID:  <abc@x>\r\nIn-Reply-To: <p@x>\r\nReferences: <o@x>\r\n <p@x>\r\n"
        b"Date: Wed, 25 Nov 2026 10:00:00 +0500\r\nContent-Language: ru-RU\r\n\r\nbody"
    )
    assert headers.sender == "ivan@example.ru"
    assert headers.subject == "Отзыв согласия"
    assert (headers.message_id, headers.has_message_id) == ("<abc@x>", True)
    assert headers.in_reply_to == "<p@x>" and headers.references == ("<o@x>", "<p@x>")
    assert headers.date is not None and headers.date.hour == 5
    assert headers.content_language == "ru-ru"


def test_missing_message_id_is_replaced_by_a_stable_hash() -> None:
    raw = b"From: a@example.kz\r\nSubject: x\r\n\r\nbody"
    first, second = parse_headers(raw), parse_headers(raw + b" more body")
    assert not first.has_message_id
    assert first.message_id == second.message_id
    assert first.message_id != parse_headers(b"From: b@example.kz\r\nSubject: x\r\n\r\n").message_id


def test_several_from_addresses_give_no_single_sender() -> None:
    assert parse_headers(b"From: a@example.kz, b@example.kz\r\n\r\n").sender is None
    assert parse_headers(b"Subject: no from\r\n\r\n").sender is None


def test_body_prefers_plain_text_and_skips_attachments_and_forwarded_mail() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPhone: 1\r\n"
        b'--b\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="a.txt"\r\n\r\nPhone: 2\r\n'
        b"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: old\r\n\r\nPhone: 3\r\n--b--\r\n"
    )
    parsed = parse_message(raw)
    assert parsed.body_kind == "plain" and parsed.body_text.strip() == "Phone: 1"


def test_html_only_body_is_turned_into_text() -> None:
    parsed = parse_message(b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Phone: 1</p><p>Name: A</p>")
    assert parsed.body_kind == "html" and parsed.body_text == "Phone: 1\nName: A"


def test_mislabelled_cp1251_body_is_recovered() -> None:
    raw = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + f"Телефон: {RU}".encode("cp1251")
    assert parse_message(raw).body_text == f"Телефон: {RU}"


def test_truncated_message_still_parses() -> None:
    raw = (b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\n\r\nPhone: 1\r\n--b\r\nCont")
    parsed = parse_message(raw, truncated=True)
    assert parsed.truncated and "Phone: 1" in parsed.body_text


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"Subject: =?utf-8?B?not base64!!?=\r\n\r\n",
        b'Content-Type: multipart/alternative; boundary="x"\r\n\r\nno parts at all',
        b"Content-Type: text/plain; charset=x-foo\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!",
        b"From: <<<@@@>>>\r\nDate: not a date\r\nMessage-ID: no-brackets\r\n\r\n",
    ],
)
def test_broken_mail_never_raises(raw: bytes) -> None:
    parsed = parse_message(raw)
    assert isinstance(parsed.body_text, str)
    assert parse_headers(raw).message_id.startswith("<")


def test_every_corpus_message_parses(shared_dir: Path) -> None:
    """Real-world mail no one here wrote: bounces, auto-replies, spam, broken MIME, Cyrillic charsets."""
    count = 0
    for path in sorted((shared_dir / "corpora").rglob("*")):
        if not path.is_file() or path.name == "README.md":
            continue
        data = path.read_bytes()
        parsed = parse_message(data)
        assert parsed.headers.message_id, path
        assert "\ufffd" not in parsed.headers.subject, path
        count += 1
    assert count > 150


def test_sendgrid_bounce_that_crashes_mail_parser_is_parsed_by_the_fallback(shared_dir: Path) -> None:
    path = shared_dir / "corpora" / "sisimai-set-of-emails" / "bsd" / "lhost-sendgrid-01.eml"
    parsed = parse_message(path.read_bytes())
    assert "mailparser-failed" in parsed.defects
    assert parsed.body_text


@pytest.mark.parametrize("codec", ["rot13", "base64", "hex", "zlib", "bz2", "uu", "quopri", "idna", "punycode"])
def test_codecs_that_are_not_charsets_are_unknown(codec: str) -> None:
    """codecs.lookup knows them; decoding text with them raises, so they are no charset."""
    assert known_charset(codec) is None
    assert decode_header_text(f"=?{codec}?q?uryyb?=")  # falls back, never raises


def test_structured_headers_are_never_decoded() -> None:
    headers = parse_headers(
        b"Received: =?utf-8?q?by_mx.smarthings.kz?=\r\n"
        b"Authentication-Results: =?utf-8?q?mx.smarthings.kz=3B_dmarc=3Dpass?=\r\n"
        b"X-Note: =?rot13?q?uryyb?=\r\nFrom: a@example.kz\r\n\r\n"
    )
    assert headers.get("received") == ("=?utf-8?q?by_mx.smarthings.kz?=",)
    assert headers.items[1] == ("authentication-results", "=?utf-8?q?mx.smarthings.kz=3B_dmarc=3Dpass?=")
    assert headers.get("x-note") == ("=?rot13?q?uryyb?=",)


def test_subject_text_is_clean_enough_to_store() -> None:
    headers = parse_headers(b"Subject: Personal data update\x00\x01 =?utf-8?b?7aCA?=\r\n\r\n")
    assert "\x00" not in headers.subject and "\x01" not in headers.subject
    assert headers.subject.encode("utf-8")  # no lone surrogate: it encodes


def test_an_overlong_or_dirty_message_id_is_replaced_by_its_hash() -> None:
    long_id = b"<" + b"a" * 2000 + b"@example.kz>"
    headers = parse_headers(b"Message-ID: " + long_id + b"\r\n\r\n")
    assert headers.has_message_id and len(headers.message_id) < 100 and headers.message_id.startswith("<sha256-")
    assert headers.message_id == parse_headers(b"Message-ID: " + long_id + b"\r\nX: y\r\n\r\n").message_id
    assert parse_headers(b"Message-ID: <a\x00b@example.kz>\r\n\r\n").message_id.startswith("<sha256-")


def test_report_type_is_read_from_the_content_type_parameter() -> None:
    headers = parse_headers(b'Content-Type: Multipart/Report; boundary="b"; Report-Type="Disposition-Notification"'
                            b"\r\n\r\n")
    assert (headers.content_type, headers.report_type) == ("multipart/report", "disposition-notification")
    fake = parse_headers(b'Content-Type: text/plain; x="multipart/report; report-type=delivery-status"\r\n\r\n')
    assert (fake.content_type, fake.report_type) == ("text/plain", None)


@pytest.mark.parametrize("junk", [b"\xff\xfe\x00" * 1000, b":\r\n" * 500, b"From: \x80\x81\r\n\t\r\n\r\n", b""])
def test_header_parsing_never_raises(junk: bytes) -> None:
    assert parse_headers(junk).message_id


def _fast_agrees(data: bytes) -> bool:
    from dsr_mailbot.reading.parse import fast_subject

    fast = fast_subject(data)
    return fast is None or fast == parse_headers(data).subject


def test_the_fast_subject_is_the_parsers_on_every_corpus_message_and_thousands_of_mutations(shared_dir: Path) -> None:
    """The triage reads the Subject from the bytes; wherever it answers, it answers as the full parse does."""
    from dsr_mailbot.reading.parse import fast_subject
    from tests.fuzzing import corpus_messages, mutated

    corpus = corpus_messages(shared_dir / "corpora")
    answered = [data for data in corpus if fast_subject(data) is not None]
    # It answers for most mail, or it would save nothing; it is unsure of mbox "From " lines (IMAP never sends
    # them), mixed line ends, and files with no blank line after their headers.
    assert len(answered) > 0.75 * len(corpus)
    assert all(_fast_agrees(data) for data in corpus)
    for seed in (1, 2):
        for data in mutated(corpus, seed, 2000, ["ivan@example.ru"]):
            assert _fast_agrees(data), data[:300]


@pytest.mark.parametrize("raw", [
    b"Subject: =?utf-8?b?0J7QsdC90L7QstC70LXQvdC40LU=?=\r\n =?utf-8?b?INC/0LXRgNGB0L7QvdCw0LvRjNC90YvRhQ==?=\r\n\r\n",
    b"SUBJECT:\tPersonal data\r\n\tupdate\r\nFrom: a@b\r\n\r\n",
    b"Subject: \xd0\x9e\xd1\x82\xd0\xb7\xd1\x8b\xd0\xb2\n\n",
    b"From: a@b\r\n\r\n",
    b"Subject: one\r\nSubject: two\r\n\r\n",
    b"Subject : spaced\r\n\r\n",
    b"Subject: mixed\r\nTo: x\n\n",
    b"From nobody Mon Jan 1 00:00:00 2026\r\nSubject: mbox\r\n\r\n",
])
def test_the_fast_subject_agrees_or_says_it_is_unsure(raw: bytes) -> None:
    assert _fast_agrees(raw)


def test_a_message_read_whole_has_text_nothing_attached_and_was_not_cut() -> None:
    from email.message import EmailMessage

    plain = EmailMessage()
    plain["From"], plain["Subject"] = "ivan@mail.ru", "Re: Подтвердите запрос"
    plain.set_content("")
    assert parse_message(plain.as_bytes()).read_whole
    assert not parse_message(plain.as_bytes(), truncated=True).read_whole
    scanned = EmailMessage()
    scanned["From"], scanned["Subject"] = "ivan@mail.ru", "Re: Подтвердите запрос"
    scanned.set_content("")
    scanned.add_attachment(b"%PDF-1.4 objection", maintype="application", subtype="pdf", filename="objection.pdf")
    inline = EmailMessage()
    inline["From"] = "ivan@mail.ru"
    inline.set_content("")
    inline.add_related(b"\x89PNG", maintype="image", subtype="png")
    for message in (scanned, inline):
        parsed = parse_message(message.as_bytes())
        assert parsed.attachments == 1 and not parsed.read_whole
