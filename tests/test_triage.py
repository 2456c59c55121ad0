"""The triage's fast path: ordinary mail told from its bytes, with exactly the full triage's answer."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from dsr_mailbot.pipeline import certainly_ordinary
from dsr_mailbot.reading.classify import classify_subject, shipped_table
from dsr_mailbot.reading.parse import parse_headers
from dsr_mailbot.store.keys import Keyring
from dsr_mailbot.trust.bounces import is_report
from dsr_mailbot.trust.own_mail import our_messages, reply_message_id
from dsr_mailbot.trust.tokens import find_token
from tests.harness import mail
from tests.servers import ImapAccount

KEYS = Keyring(b"k" * 32)


def full_triage_says_ordinary(data: bytes) -> bool:
    headers = parse_headers(data)
    return (not is_report(headers) and find_token(headers) is None
            and classify_subject(headers.subject) is None
            and not our_messages(KEYS, " ".join([headers.in_reply_to or "", *headers.references])))


def b64_subject(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode()).decode()}?="


@pytest.mark.parametrize(("data", "ordinary"), [
    (mail("a@example.kz", "Где мой заказ?", "Привет"), True),
    (mail("a@example.kz", "Re: Доставка", "x", headers={"In-Reply-To": "<abc@shop.kz>"}), True),
    (mail("a@example.kz", "Обновление персональных данных"), False),
    (mail("a@example.kz", b64_subject("Отзыв согласия на обработку персональных данных")), False),
    # A confirmation whose client encoded the Subject and dropped In-Reply-To: the token is only in the text.
    (mail("a@example.kz", b64_subject("Re: Подтвердите запрос [DSR-12-o-1893456000-0123456789abcdef0123]")), False),
    (mail("a@example.kz", "Thanks!", headers={"In-Reply-To": reply_message_id(KEYS, 7, "reply", "shop.kz")}), False),
    (b"From: mailer-daemon@x\r\nSubject: Undelivered\r\nContent-Type: Multipart/Report; report-type=delivery-status;"
     b" boundary=b\r\n\r\n", False),
])
def test_only_mail_the_full_triage_calls_ordinary_is_ordinary(data: bytes, ordinary: bool) -> None:
    assert certainly_ordinary(data, shipped_table()) is ordinary
    assert full_triage_says_ordinary(data) or not ordinary


def test_on_every_corpus_message_and_thousands_of_mutations_it_never_misses_one(shared_dir: Path) -> None:
    from tests.fuzzing import corpus_messages, mutated

    corpus = corpus_messages(shared_dir / "corpora")
    mutations = [m for seed in (3, 4) for m in mutated(corpus, seed, 2000, ["ivan@example.ru"])]
    fast = 0
    for data in (*corpus, *mutations):
        if certainly_ordinary(data, shipped_table()):
            fast += 1
            assert full_triage_says_ordinary(data), data[:300]
    assert fast > len(corpus) // 2  # most ordinary mail takes the fast path


def test_the_triage_fields_from_a_real_server_never_call_a_message_of_ours_ordinary(
    shared_dir: Path, imap_account: ImapAccount
) -> None:
    """Every corpus message through Dovecot: what the scan's fields say "ordinary" the whole block says too."""
    from dsr_mailbot.config import ImapConfig
    from dsr_mailbot.mailbox.imap import ImapSource
    from dsr_mailbot.pipeline import TRIAGE_FIELDS
    from tests.fuzzing import corpus_messages

    corpus = corpus_messages(shared_dir / "corpora")
    for data in corpus:
        imap_account.append(data)
    source = ImapSource(ImapConfig(host=imap_account.host, port=imap_account.port, security="none",
                                   username=imap_account.username, password=imap_account.password))
    source.open()
    records = [r for batch in source.scan(0, 100, TRIAGE_FIELDS) for r in batch]
    complete = source.complete_records([r.uid for r in records])
    source.close()

    assert len(records) == len(corpus) and all(not r.complete for r in records)
    told = [r for r in records if certainly_ordinary(r.header, shipped_table())]
    assert all(full_triage_says_ordinary(complete[r.uid].header) for r in told)
    assert len(told) > len(corpus) // 2  # most of it needs nothing more than its fields
