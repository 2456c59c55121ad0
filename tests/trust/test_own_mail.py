"""The bot's own Message-IDs: short enough never to be folded, recognised by their keyed tag, old forms too."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from dsr_mailbot.pipeline import certainly_ordinary
from dsr_mailbot.reading.classify import shipped_table
from dsr_mailbot.reading.parse import parse_headers
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.own_mail import PURPOSE_CODES, OurMessage, our_messages, reply_message_id, reply_message_tag
from dsr_mailbot.trust.tokens import OWNER, TokenStatus, challenge_message_id, check_token, find_token, make_token

KEYS = Keyring(b"k" * 32)
EXPIRES = datetime(2026, 12, 12, 10, 0, tzinfo=UTC)
DOMAINS = ("smarthings.kz", "smarththings.kz")


def old_message_id(request_id: int, purpose: str, token: str | None = None) -> str:
    """The form of the versions before issue 18: 96-98 characters for a challenge."""
    tag = reply_message_tag(KEYS, request_id, purpose)[:20]
    return f"<dsr.{request_id}.{purpose}.{tag}{'.' + token if token else ''}@smarthings.kz>"


def folded_reply(in_reply_to: str, references: str, subject: str = "Re: Подтвердите запрос") -> bytes:
    """A reply as Python's email package writes it: a Message-ID past a line's length becomes encoded words."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = "ivan@mail.ru"
    msg["Subject"] = subject
    msg["In-Reply-To"] = in_reply_to
    msg["References"] = references
    msg.set_content("Да")
    return msg.as_bytes()


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_message_id_of_ours_fits_in_64_characters(domain: str) -> None:
    for request_id in (1, 99_999, 10**9):
        for purpose in PURPOSE_CODES:
            assert len(reply_message_id(KEYS, request_id, purpose, domain)) <= 64
        token = make_token(KEYS, request_id, OWNER, EXPIRES)
        assert len(challenge_message_id(token, domain)) <= 64


def test_no_client_folds_them_into_encoded_words() -> None:
    token = make_token(KEYS, 1_234_567, OWNER, EXPIRES)
    ours = challenge_message_id(token, "smarththings.kz")
    headers = parse_headers(folded_reply(ours, f"<CAF+very-long-first-id-from-a-phone-client@mail.gmail.com> {ours}"))
    assert headers.thread_text == ""  # no encoded word in In-Reply-To or References
    assert (headers.in_reply_to, headers.references[-1]) == (ours, ours)
    found = find_token(headers)
    assert found is not None and found.request_id == token.request_id
    assert check_token(KEYS, found, EXPIRES.replace(day=5)) is TokenStatus.VALID


def test_a_challenges_message_id_carries_its_token_and_nothing_forged_passes() -> None:
    token = make_token(KEYS, 42, OWNER, EXPIRES)
    found = find_token(parse_headers(folded_reply(challenge_message_id(token, "smarthings.kz"), "")))
    assert found is not None and (found.request_id, found.audience, found.expires_at) == (42, OWNER, EXPIRES)
    assert check_token(KEYS, found, EXPIRES.replace(day=5)) is TokenStatus.VALID
    for forged in (challenge_message_id(token, "x.kz").replace("<dsr.42.", "<dsr.43."),
                   challenge_message_id(token, "x.kz").replace(".o.", ".n."),
                   challenge_message_id(make_token(Keyring(b"j" * 32), 42, OWNER, EXPIRES), "x.kz")):
        other = find_token(parse_headers(folded_reply(forged, "")))
        assert other is not None and check_token(KEYS, other, EXPIRES.replace(day=5)) is TokenStatus.TAMPERED


def test_our_messages_are_recognised_in_every_form_in_the_order_they_stand() -> None:
    token = make_token(KEYS, 9, OWNER, EXPIRES)
    text = " ".join([old_message_id(5, "reply"), "<x@client>", challenge_message_id(token, "smarthings.kz"),
                     reply_message_id(KEYS, 7, "answer", "smarthings.kz"),
                     old_message_id(8, "challenge_o", str(token))])
    assert our_messages(KEYS, text) == [OurMessage(5, "reply"), OurMessage(9, "challenge_o"), OurMessage(7, "answer"),
                                        OurMessage(8, "challenge_o")]
    assert our_messages(Keyring(b"j" * 32), text) == []


def test_a_reply_to_a_challenge_sent_before_the_upgrade_is_found_inside_encoded_words() -> None:
    """The old 96-character ID, folded by the person's client, and the token gone from the subject."""
    token = make_token(KEYS, 42, OWNER, EXPIRES)
    old = old_message_id(42, "challenge_o", str(token))
    reply = folded_reply(old, f"<first@mail.ru> {old}")
    assert b"In-Reply-To: =?utf-8?q?" in reply  # as the issue found it
    headers = parse_headers(reply)

    assert headers.in_reply_to is None  # no "<…>" in the raw value: structure is never read from decoded text
    assert find_token(headers) == token
    assert our_messages(KEYS, headers.thread_text) == [OurMessage(42, "challenge_o")] * 2
    assert not certainly_ordinary(reply.split(b"\r\n\r\n")[0] + b"\r\n\r\n", shipped_table())


def test_a_base64_encoded_reference_is_not_taken_for_ordinary_mail() -> None:
    ours = reply_message_id(KEYS, 7, "reply", "smarthings.kz")
    import base64

    encoded = "=?utf-8?b?" + base64.b64encode(ours.encode()).decode() + "?="
    header = f"From: ivan@mail.ru\r\nSubject: Thanks\r\nReferences: <a@b>\r\n {encoded}\r\n\r\n".encode()
    assert b"dsr" not in header.lower()
    assert not certainly_ordinary(header, shipped_table())
    assert our_messages(KEYS, parse_headers(header).thread_text) == [OurMessage(7, "reply")]


def test_an_expiry_past_what_a_date_holds_is_no_token_and_no_error() -> None:
    for text in ("Re: [DSR-1-o-300000000000-0123456789abcdef0123]", "<dsr.1.o.4zzzzzzz.0123456789abcdef@x.kz>"):
        headers = parse_headers(f"From: ivan@mail.ru\r\nSubject: {text}\r\nIn-Reply-To: {text}\r\n\r\n".encode())
        assert find_token(headers) is None
        assert our_messages(KEYS, text) == []
