"""Every code the console can show has words in ru, kk and en (templates/console/codes.toml).

The codes are read from the bot itself, not listed by hand: its enums
(intents, states), its fields and languages, and, from its source, every
audit event it records and every reason, outcome and problem it writes.  A
new code without words fails here.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from dsr_mailbot.reading.classify import LANGUAGES
from dsr_mailbot.reading.extract import FIELDS
from dsr_mailbot.replies.reply import OUTCOME_TEMPLATES, default_templates_dir
from dsr_mailbot.store.models import RequestKind, RequestState
from dsr_mailbot.web.context import code_words, load_codes

PACKAGE = Path(__file__).resolve().parents[2] / "dsr_mailbot"
CODES = load_codes(default_templates_dir() / "console")
# What a code looks like; prose (an act's reason) is not one, nor the prefix of a family (f"request_{state}").
A_CODE = re.compile(r"[a-z][a-z_]*[a-z]")


def _strings(node: ast.expr) -> list[str]:
    """The string constants an expression can be: "x", or either side of ``"x" if … else "y"``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return [str(node.values[0].value)]  # f"conflicting_intents: {…}": the code, then its detail
    return []


def codes_in_the_source() -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "record_event" and len(node.args) >= 2:
                    found["event"].update(_strings(node.args[1]))
                if name == "Decision" and len(node.args) >= 2:
                    found["reason"].update(_strings(node.args[1]))
                if name == "Problem" and len(node.args) >= 2:
                    found["problem"].update(_strings(node.args[1]))
                for keyword in node.keywords:
                    if keyword.arg in ("reason", "outcome"):
                        found[keyword.arg].update(_strings(keyword.value))
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    pairs = (zip(target.elts, node.value.elts, strict=False)
                             if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple)
                             else [(target, node.value)])
                    for name_node, value in pairs:
                        if isinstance(name_node, ast.Attribute) and name_node.attr in ("reason", "outcome"):
                            found[name_node.attr].update(_strings(value))
    return {category: {code.split(": ")[0] for code in codes if A_CODE.fullmatch(code.split(": ")[0])}
            for category, codes in found.items()}


def every_code() -> dict[str, set[str]]:
    found = codes_in_the_source()
    found["event"] |= {f"request_{state}" for state in RequestState} | {
        f"destruction_notice_{outcome}" for outcome in ("sent", "dropped")}  # pipeline/erasure.py
    found["outcome"] |= set(OUTCOME_TEMPLATES)  # an applied intent's outcome is its reply's template
    return {**found, "intent": {k.value for k in RequestKind}, "state": {s.value for s in RequestState},
            "field": set(FIELDS), "language": set(LANGUAGES)}


def test_the_source_is_read_not_found_empty() -> None:
    found = codes_in_the_source()
    assert {"user_erased", "reply_sent", "request_received"} <= found["event"]
    assert {"awaiting_answer", "no_such_user", "conflicting_intents"} <= found["reason"]
    assert {"unknown_sender", "confirmation_expired", "request_rejected"} <= found["outcome"]
    assert found["problem"] == {"conflict", "invalid", "unavailable"}


@pytest.mark.parametrize("category", ["intent", "state", "outcome", "reason", "field", "problem", "language",
                                      "event"])
def test_every_code_has_words_in_every_language(category: str) -> None:
    table = CODES.get(category, {})
    missing = {code: [lang for lang in LANGUAGES if not table.get(code, {}).get(lang)]
               for code in sorted(every_code()[category])}
    assert {code: langs for code, langs in missing.items() if langs} == {}


def test_the_table_has_each_language_and_no_other() -> None:
    for category, table in CODES.items():
        for code, words in table.items():
            assert set(words) == set(LANGUAGES), (category, code)
            assert all(text.strip() for text in words.values()), (category, code)


def test_a_code_with_a_detail_keeps_the_detail_and_an_unknown_code_shows_as_it_is() -> None:
    assert code_words(CODES, "ru", "reason", "conflicting_intents: optout/withdraw") == (
        "в письме противоречивые просьбы: optout/withdraw")
    assert code_words(CODES, "kk", "state", "awaiting_confirmation") == "Растауды күтуде"
    assert code_words(CODES, "en", "reason", "failed at intake: ValueError") == "failed at intake: ValueError"
    assert code_words(CODES, "ru", "reason", None) == ""
    assert code_words(CODES, "kk", "field:problem", "phone:conflict") == "Телефон: екі түрлі мән берілген"
