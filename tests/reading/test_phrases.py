"""Phrases of a request's own words add intents, unless a negation in their clause says the opposite."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

from dsr_mailbot.reading.classify import LANGUAGES, MarkerTable, classify_subject, shipped_markers, with_extra
from dsr_mailbot.reading.phrases import TABLES, NegationsError, body_phrases, parse_negations, shipped_negations
from dsr_mailbot.store.models import RequestKind

UPD, WDR, OPT, ACC = RequestKind.UPDATE, RequestKind.WITHDRAW, RequestKind.OPTOUT, RequestKind.ACCESS


def kinds(words: str, table: MarkerTable | None = None) -> tuple[RequestKind, ...]:
    return tuple(found.kind for found in body_phrases(words, table))


@pytest.mark.parametrize(("words", "added"), [
    ("Телефон: 8 701 999 88 77\nИ прошу больше не присылать рекламу.", (OPT,)),
    ("Мой новый телефон: 8 701 999 88 77. Отзываю согласие на рассылки? Нет: отпишите меня.", (UPD, WDR, OPT)),
    ("Телефон: 8 701 999 88 77. Маған жарнама жібермеңіз!", (OPT,)),
    ("Phone: +7 701 999 88 77. Also stop sending me advertising.", (OPT,)),
    ("Please update my phone. And send me a copy of my personal data.", (UPD, ACC)),
    ("Дербес деректерімді жіберіңіз.", (ACC,)),
    ("Здравствуйте, спасибо за быструю доставку!", ()),
    # A conjunction starts a new clause: the negation of the first is not the second's.
    ("I don't want ads and I withdraw my consent", (WDR,)),
    ("Я не хочу звонков, но отзываю согласие", (WDR,)),
    ("Жарнама керек емес және келісімімді кері қайтарып аламын", (WDR,)),
    ("Отпишите меня от рассылки, но я не хочу отозвать согласие!", (OPT,)),
])
def test_phrases_in_a_requests_own_words_add_intents(words: str, added: tuple[RequestKind, ...]) -> None:
    assert set(kinds(words)) == set(added)


@pytest.mark.parametrize("words", [
    # The letters, each of which used to withdraw consent.
    "I do not want to withdraw my consent",
    "I am not going to withdraw my consent",
    "Я не прошу отозвать согласие",
    "…я не хочу отозвать согласие!",
    # A negation anywhere before the phrase in its clause, in each language, and others.
    "I don't withdraw my consent", "Please do not unsubscribe me", "Я не отзываю согласие",
    "Нет, не отпишите меня", "I never said I withdraw my consent", "I no longer want to withdraw my consent",
    "Я вовсе не собираюсь отзывать согласие, тем более прошу отозвать его",
    "Я ни в коем случае не прошу отозвать моё согласие",
    # Kazakh puts the negation after the verb.
    "Мен келісімімді кері қайтарып аламын деп жазған жоқпын",
    "Келісімімді қайтарып аламын деген емеспін",
    "Мен келісімімді кері қайтарып алмаймын",
    "Жарнамадан бас тартамын деп айтқан жоқпын",
    # The attack review's: no apostrophe or another one, a "however" inside the clause, no need, rather than.
    "I dont want to withdraw my consent.", "Please don´t unsubscribe me", "Please don‘t unsubscribe me",
    "I do not, however, withdraw my consent.", "No need to withdraw my consent",
    "Under no circumstances unsubscribe me", "Rather than withdraw my consent, please update my phone",
    "Вместо того чтобы отозвать согласие, обновите телефон",
])
def test_a_negation_in_the_phrases_clause_cancels_it(words: str) -> None:
    assert kinds(words) == ()


@pytest.mark.parametrize("words", [
    "Withdraw my consent? No way!", "Отозвать согласие? Нет, не хочу.", "Келісімімді қайтарып аламын ба? Жоқ.",
    "If I withdraw my consent, what happens?", "Can I withdraw my consent later?",
    "Как отозвать согласие, если понадобится?",
])
def test_a_phrase_found_only_in_a_question_is_marked_so(words: str) -> None:
    [found] = body_phrases(words)
    assert found.kind is WDR and found.in_question


def test_a_polite_question_still_asks_and_a_statement_outranks_a_question() -> None:
    [optout] = body_phrases("Could you unsubscribe me?")
    assert optout.kind is OPT and optout.in_question
    [withdraw] = body_phrases("Can I withdraw my consent? Yes: I withdraw my consent.")
    assert not withdraw.in_question


def test_the_phrase_understood_is_given_for_the_challenge_to_quote() -> None:
    [found] = body_phrases("Телефон менять не надо. Отзываю своё согласие!")
    assert (found.kind, found.phrase) == (WDR, "отзываю свое согласие")


def test_negations_are_data_with_every_table_in_every_language() -> None:
    table = tomllib.loads((resources.files("dsr_mailbot.reading") / "negations.toml").read_text(encoding="utf-8"))
    for language in LANGUAGES:
        assert all(table[language][name] for name in TABLES), language
    assert shipped_negations().languages == set(LANGUAGES)
    with pytest.raises(NegationsError, match=r"\[kk\]"):
        parse_negations('[boundaries]\npunctuation = ["."]\n' + "\n".join(
            f"[{lang}]\n" + "\n".join(f'{n} = ["x"]' for n in TABLES) for lang in ("en", "ru")))


def test_a_thousand_negated_hits_in_one_clause_are_each_looked_at_once() -> None:
    """Every hit is negated; deciding so does not scan the text before each hit again (not quadratic)."""
    words = "не " + "отпишите меня " * 200_000
    assert kinds(words) == ()


def test_an_operators_extra_body_phrase_adds_its_intent(tmp_path: Path) -> None:
    from dsr_mailbot.config import load_config

    (tmp_path / "markers.toml").write_text('[optout.body]\nru = ["хватит спама"]\n', encoding="utf-8")
    (tmp_path / "c.toml").write_text('[maildir]\npath = "m"\n[classify]\nextra_markers_file = "markers.toml"\n',
                                     encoding="utf-8")
    table = MarkerTable.of(with_extra(shipped_markers(), load_config(tmp_path / "c.toml").extra_markers))

    assert kinds("Хватит спама!", table) == (OPT,)
    assert kinds("Хватит спама!") == ()
    assert classify_subject("Хватит спама", table) is None  # a body phrase, not a subject marker
