"""Mail the bot must never answer: auto-replies, bulk mail, helpdesk acknowledgements, its own mail (pure).

An auto-responder that answers auto-responders floods two mailboxes, and an
auto-reply threaded to a challenge must never count as its owner's "yes".
So every rule here errs towards silence.  The rules are data
(``loop_rules.toml`` beside this module, each row naming its source: an RFC
or the software that sends such mail), read in order after GNU Mailman's
chains: the first that matches gives the reason, which is stored with the
request (state ``ignored``).  A rule's ``test`` picks one of the small
predicates of :data:`TESTS`; a file naming any other test is refused when
it is loaded, so dispatch is exhaustive.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from importlib import resources

from dsr_mailbot.reading.classify import LANGUAGES
from dsr_mailbot.reading.parse import Headers

MAX_TAG_TAIL = 40  # "[Ticket #4711 - Personal data]": what may follow the number inside the brackets


class LoopRulesError(ValueError):
    """The loop rules file is not what :func:`parse_loop_rules` expects."""


@dataclass(frozen=True)
class LoopRule:
    reason: str
    test: str
    source: str
    headers: tuple[str, ...] = ()  # lower case
    values: frozenset[str] = frozenset()  # lower case


@dataclass(frozen=True)
class LoopRules:
    rules: tuple[LoopRule, ...]
    auto_reply_subject: re.Pattern[str]
    ticket_subject: re.Pattern[str]
    subject_languages: frozenset[str]


@dataclass(frozen=True)
class _Message:
    """What the predicates read: the headers, and the operator's own addresses."""

    headers: Headers
    own: Collection[str]


def _values(message: _Message, rule: LoopRule) -> list[str]:
    """Every value of the named headers, lower case, as its first word: before any ``;`` parameter or ``(``
    comment ("auto-generated; owner=…", "no (sent by a person)").  Every copy counts: a second
    ``Auto-Submitted`` below a "no" still says what it says."""
    found = []
    for name in rule.headers:
        for value in message.headers.get(name):
            found.append(value.split(";")[0].split("(")[0].strip().lower())
    return found


def _header_present(message: _Message, rule: LoopRule, rules: LoopRules) -> bool:
    return any(message.headers.get(name) for name in rule.headers)


def _header_any_of(message: _Message, rule: LoopRule, rules: LoopRules) -> bool:
    return any(value in rule.values for value in _values(message, rule))


def _header_other_than(message: _Message, rule: LoopRule, rules: LoopRules) -> bool:
    return any(value not in rule.values for value in _values(message, rule))


def _from_operator(message: _Message, rule: LoopRule, rules: LoopRules) -> bool:
    return any(address in message.own for address in message.headers.from_addresses)


def _sender_local_part(message: _Message, rule: LoopRule, rules: LoopRules) -> bool:
    for address in message.headers.from_addresses:
        local = address.rsplit("@", 1)[0].lower()
        if any(local == name or local.startswith((f"{name}+", f"{name}-")) for name in rule.values):
            return True
    return False


def _subject_prefix(message: _Message, rule: LoopRule, rules: LoopRules) -> bool:
    return bool(rules.auto_reply_subject.match(message.headers.subject))


def _subject_ticket(message: _Message, rule: LoopRule, rules: LoopRules) -> bool:
    return bool(rules.ticket_subject.match(message.headers.subject))


TESTS: dict[str, Callable[[_Message, LoopRule, LoopRules], bool]] = {
    "header_present": _header_present,
    "header_any_of": _header_any_of,
    "header_other_than": _header_other_than,
    "from_operator": _from_operator,
    "sender_local_part": _sender_local_part,
    "subject_prefix": _subject_prefix,
    "subject_ticket": _subject_ticket,
}


def _strings(table: dict[str, object], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LoopRulesError(f"{where}: {key} must be a list of strings")
    return value


def _alternatives(phrases: list[str]) -> str:
    # Longest first, so that "auto reply" is not cut short by "auto"; every phrase an escaped literal.
    return "|".join(re.escape(p.lower()) for p in sorted(set(phrases), key=len, reverse=True))


def parse_loop_rules(text: str) -> LoopRules:
    """The rules of a loop rules file, in the file's order, with their subject patterns compiled."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LoopRulesError(f"not valid TOML ({exc})") from exc
    rules = []
    for index, row in enumerate(table.get("rule", [])):
        where = f"rule {index + 1}"
        if not isinstance(row, dict) or row.get("test") not in TESTS:
            raise LoopRulesError(f"{where}: test must be one of {', '.join(TESTS)}")
        if not isinstance(row.get("reason"), str) or not isinstance(row.get("source"), str) or not row["source"]:
            raise LoopRulesError(f"{where}: every rule needs a reason and a source")
        rules.append(LoopRule(
            reason=row["reason"], test=row["test"], source=row["source"],
            headers=tuple(h.lower() for h in _strings(row, "headers", where)),
            values=frozenset(v.lower() for v in _strings(row, "values", where)),
        ))
    subjects = table.get("subjects", {})
    phrases = [p for language in subjects.values() for p in _strings(language, "phrases", "subjects")]
    tickets = table.get("tickets", {})
    bare_tags = _alternatives(_strings(tickets, "bare_tags", "tickets"))
    bracket_words = _alternatives(_strings(tickets, "bracket_words", "tickets"))
    numbered = _alternatives(_strings(tickets, "numbered", "tickets"))
    verbs = _alternatives(_strings(tickets, "verbs", "tickets"))
    acknowledgements = _alternatives(_strings(tickets, "phrases", "tickets"))
    number = r"\s{0,3}[#№]\s{0,3}\w[\w-]{0,30}"
    gateway_tags = rf"(?:\s{{0,5}}\[[^\]]{{0,{MAX_TAG_TAIL}}}\])*"  # "[EXTERNAL]", "[SPAM]" before the rest
    ticket = (rf"\s{{0,5}}(?:\[\s{{0,3}}(?:{bracket_words})\s{{0,3}}\]"
              rf"|\[[^\]#№]{{0,{MAX_TAG_TAIL}}}{number}[^\]]{{0,{MAX_TAG_TAIL}}}\]"
              rf"|\[?\s{{0,3}}##\s{{0,3}}\d{{1,24}}\s{{0,3}}##\s{{0,3}}\]?"
              rf"|(?:{bare_tags}){number}(?!\w)"
              rf"|(?:{numbered})(?:{number})?\s{{1,3}}(?:{verbs})(?!\w)"
              rf"|(?:{acknowledgements})(?!\w))")
    return LoopRules(
        rules=tuple(rules),
        auto_reply_subject=re.compile(rf"{gateway_tags}\s{{0,5}}(?:{_alternatives(phrases)})(?:(?<=:)|\s{{0,3}}(?:[:\-–—]|$))",
                                      re.IGNORECASE),
        ticket_subject=re.compile(ticket, re.IGNORECASE),
        subject_languages=frozenset(subjects) & frozenset(LANGUAGES),
    )


@cache
def shipped_loop_rules() -> LoopRules:
    return parse_loop_rules((resources.files("dsr_mailbot.trust") / "loop_rules.toml").read_text(encoding="utf-8"))


def loop_reason(headers: Headers, operator_addresses: Collection[str], rules: LoopRules | None = None) -> str | None:
    """Why this message must not be answered (nor confirm anything), or None when it may be."""
    rules = rules or shipped_loop_rules()
    message = _Message(headers, operator_addresses)
    for rule in rules.rules:
        if TESTS[rule.test](message, rule, rules):
            return rule.reason
    return None
