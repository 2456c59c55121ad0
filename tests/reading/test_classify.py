"""Which subjects mark a request, of which kind, in which language."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsr_mailbot.reading.classify import classify_subject, detect_language, normalise_subject, request_language
from dsr_mailbot.reading.parse import parse_headers, parse_message
from dsr_mailbot.store.models import RequestKind

UPD, WDR, OPT = RequestKind.UPDATE, RequestKind.WITHDRAW, RequestKind.OPTOUT


@pytest.mark.parametrize(
    ("subject", "kind", "language"),
    [
        ("Personal data update", UPD, "en"),
        ("PERSONAL DATA UPDATE", UPD, "en"),
        ("Re: Personal data update", UPD, "en"),
        ("Fwd: RE: Fw: Personal data update", UPD, "en"),
        ("[SmartThings] Re: [#4512] Personal data update – order 1234", UPD, "en"),
        ('"Personal data update"', UPD, "en"),
        ("Обновление персональных данных", UPD, "ru"),
        ("Отв: Обновление персональных данных", UPD, "ru"),
        ("Пересл: «Обновление персональных данных»", UPD, "ru"),
        ("RE[2]: обновление персональных данных", UPD, "ru"),
        ("Дербес деректерді жаңарту", UPD, "kk"),
        ("Жауап: Дербес деректерді жаңарту", UPD, "kk"),
        ("Withdrawal of consent to the processing of personal data", WDR, "en"),
        ("Withdrawal of consent", WDR, "en"),
        ("withdrawal of consent to the processing of personal data: personal data update", WDR, "en"),
        ("Отзыв согласия на обработку персональных данных", WDR, "ru"),
        ("Отзыв согласия", WDR, "ru"),
        ("Дербес деректерді өңдеуге келісімді кері қайтарып алу", WDR, "kk"),
        ("Келісімді қайтарып алу", WDR, "kk"),
        ("Unsubscribe", OPT, "en"),
        ("Please unsubscribe me", OPT, "en"),
        ("Opt-out", OPT, "en"),
        ("Отписаться от рассылки", OPT, "ru"),
        ("Отказ от рекламных рассылок", OPT, "ru"),
        ("Отказ от получения рассылки", OPT, "ru"),
        ("Жазылымнан бас тарту", OPT, "kk"),
    ],
)
def test_marked_subjects_are_requests(subject: str, kind: RequestKind, language: str) -> None:
    found = classify_subject(subject)
    assert found is not None
    assert (found.kind, found.language) == (kind, language)


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "Где мой заказ?",
        "Отказ от получения заказа",  # refusing a parcel is not refusing marketing
        "Отзыв о товаре",
        "Подписка на новости",
        "Personal data",
        "Update on your order",
        "Re: Personal data updated successfully?",
    ],
)
def test_other_subjects_are_not_requests(subject: str) -> None:
    assert classify_subject(subject) is None


def test_normalise_subject_strips_prefixes_tags_quotes_and_case() -> None:
    assert normalise_subject("Fwd: [Tag] RE:  «Отзыв   Согласия»!") == "отзыв согласия"


def test_language_of_text() -> None:
    assert detect_language("Сәлеметсіз бе, телефонымды өзгертіңіз", "ru") == "kk"
    assert detect_language("Здравствуйте, измените телефон", "en") == "ru"
    assert detect_language("Hello, change my phone", "ru") == "en"
    assert detect_language("+7 701 765 43 21", "ru") == "ru"


def test_english_marker_with_russian_text_is_answered_in_russian() -> None:
    found = classify_subject("Personal data update")
    assert found is not None
    assert request_language(found, "Телефон: +7 701 765 43 21, спасибо", "kk") == "ru"
    assert request_language(found, "Phone: +7 701 765 43 21", "ru") == "en"
    russian = classify_subject("Обновление персональных данных")
    assert russian is not None
    assert request_language(russian, "Phone please", "en") == "ru"


def _corpus_messages(shared_dir: Path) -> list[Path]:
    body_only = {"github-email-reply-parser", "zapier-email-reply-parser"}
    return [
        p for p in sorted((shared_dir / "corpora").rglob("*"))
        if p.is_file() and p.name != "README.md" and p.suffix != ".html"
        and not body_only & set(p.parts) and "sparrow_reply_text" not in p.name
    ]


def test_no_real_world_message_is_a_request(shared_dir: Path) -> None:
    """The corpora hold ordinary mail, bounces, auto-replies and spam: none is a request."""
    messages = _corpus_messages(shared_dir)
    assert len(messages) > 150
    for path in messages:
        data = path.read_bytes()
        assert classify_subject(parse_headers(data).subject) is None, path
        assert classify_subject(parse_message(data).headers.subject) is None, path


def test_markers_are_data_with_every_intent_in_every_language() -> None:
    from dsr_mailbot.reading.classify import LANGUAGES, shipped_markers

    markers = shipped_markers()
    kinds = list(dict.fromkeys(m.kind.value for m in markers))
    assert kinds == ["withdraw", "update", "access", "question", "optout"]  # order decides: withdrawal first
    for kind in kinds:
        assert {m.language for m in markers if m.kind.value == kind} == set(LANGUAGES)


def test_an_operators_extra_phrase_is_recognised_without_a_release(tmp_path: Path) -> None:
    from dsr_mailbot.config import load_config
    from dsr_mailbot.reading.classify import MarkerTable, shipped_markers, with_extra

    (tmp_path / "markers.toml").write_text('[optout]\nru = ["Не присылайте мне акции"]\n', encoding="utf-8")
    (tmp_path / "c.toml").write_text('[maildir]\npath = "m"\n[classify]\nextra_markers_file = "markers.toml"\n',
                                     encoding="utf-8")
    config = load_config(tmp_path / "c.toml")
    table = MarkerTable.of(with_extra(shipped_markers(), config.extra_markers))

    found = classify_subject("Re: не присылайте мне акции!", table)
    assert found is not None and (found.kind.value, found.language) == ("optout", "ru")
    assert classify_subject("Re: не присылайте мне акции!") is None  # not a shipped phrase
    assert classify_subject("Отзыв согласия", table).kind.value == "withdraw"  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ['[objection]\nru = ["возражаю"]\n', '[optout]\nde = ["abmelden"]\n',
                                  "[optout]\nru = 'one phrase'\n", "[optout\n"])
def test_a_wrong_markers_file_is_named(tmp_path: Path, text: str) -> None:
    from dsr_mailbot.config import load_config
    from dsr_mailbot.errors import ConfigError

    (tmp_path / "markers.toml").write_text(text, encoding="utf-8")
    (tmp_path / "c.toml").write_text('[maildir]\npath = "m"\n[classify]\nextra_markers_file = "markers.toml"\n',
                                     encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[classify\] extra_markers_file"):
        load_config(tmp_path / "c.toml")


def test_body_phrases_are_data_for_every_intent_but_questions_in_every_language() -> None:
    from dsr_mailbot.reading.classify import BODY, LANGUAGES, shipped_markers

    body = [m for m in shipped_markers() if m.place == BODY]
    for kind in (UPD, WDR, OPT, RequestKind.ACCESS):
        assert {m.language for m in body if m.kind is kind} == set(LANGUAGES), kind
    assert not [m for m in body if m.kind is RequestKind.QUESTION]  # a question is read whole, by a person


def test_body_phrases_never_make_ordinary_mail_a_request() -> None:
    from dsr_mailbot.reading.classify import MarkerTable, shipped_markers

    table = MarkerTable.of(shipped_markers())
    assert classify_subject("Больше не присылать рекламу", table) is None
    assert classify_subject("Please update my phone", table) is None
