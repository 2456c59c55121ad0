"""Reading a request's message: all the work on the sender's text, done before any transaction opens (pure).

Sender text can be crafted to be slow, and a write transaction holds the
store's lock (SQLite: for every other writer) for as long as it is open.
So everything that reads the message — the person's own words, the fields
they ask for, the language, the Authentication-Results check, the addresses
they name — happens here, and :func:`~dsr_mailbot.lifecycle.intake` only
looks things up in the store and decides.  Every step is linear in the
text, and the text itself is bounded (:data:`MAX_OWN_WORDS_CHARS`).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any

from dsr_mailbot.addresses import normalise_address
from dsr_mailbot.config import Config
from dsr_mailbot.intents.registry import spec_for
from dsr_mailbot.reading.body import reply_text
from dsr_mailbot.reading.classify import Classification, MarkerTable, request_language
from dsr_mailbot.reading.extract import UpdateIntent, extract_update
from dsr_mailbot.reading.parse import Headers, ParsedMessage
from dsr_mailbot.reading.phrases import body_phrases
from dsr_mailbot.store.models import RequestKind
from dsr_mailbot.trust.authresults import AuthCheck, check_authentication

MAX_BODY_CHARS = 256 * 1024  # a person's request is a few lines; the rest of a huge body is never read
MAX_OWN_WORDS_CHARS = 32 * 1024
MAX_SUBJECT_CHARS = 998  # RFC 5322's line limit: a longer decoded subject is cut for the reviewer's page
_TOKEN_SEPARATORS = str.maketrans({c: " " for c in "<>()[]{},;:\"'`|"})


@dataclass(frozen=True)
class Reading:
    """What the message says, ready for a decision."""

    language: str
    sender: str | None
    auth: AuthCheck
    # The subject's intent first, then those the person's own words add (in the markers' order).
    intents: tuple[RequestKind, ...]
    # The intents the own words added (not the subject), each with the phrase understood: a challenge quotes it.
    from_words: dict[str, str]
    intent: UpdateIntent
    # Every address the person's own words name, in the normal form, with look-alikes folded: a letter
    # that names another user's address goes to review, and folding here only makes that more cautious.
    named_addresses: frozenset[str]
    detail: dict[str, Any] = field(default_factory=dict)  # for the audit trail: names and flags, no values
    # What a reviewer reads while the request is open (the console's request page): never parsed again.
    subject: str = ""
    own_words: str = ""


def read_request(config: Config, parsed: ParsedMessage, classification: Classification,
                 markers: MarkerTable | None = None) -> Reading:
    """``markers``: the subject and body markers (the shipped ones, and the operator's extra phrases)."""
    headers: Headers = parsed.headers
    own_words = reply_text(parsed.body_text[:MAX_BODY_CHARS])[:MAX_OWN_WORDS_CHARS]
    language = request_language(classification, own_words, config.policy.default_language)
    trust = config.trust
    auth = check_authentication(headers.items, trust.authserv_id, headers.sender, trust.own_received_lines)
    intents: tuple[RequestKind, ...] = (classification.kind,)
    from_words: dict[str, str] = {}
    if not spec_for(classification.kind).answered_by_person:  # a question is read whole, by a person
        # Nor do the own words add a question: it would wait for a person while the rest was carried out.
        for found in body_phrases(own_words, markers):
            spec = spec_for(found.kind)
            # What cannot be undone is never read from a question: "Can I withdraw my consent later?"
            if found.in_question and spec.irreversible:
                continue
            if found.kind not in intents and not spec.answered_by_person:
                intents += (found.kind,)
                from_words[found.kind.value] = found.phrase
    intent = extract_update(own_words) if RequestKind.UPDATE in intents else UpdateIntent({}, ())
    named = set(named_addresses(own_words))
    if "email" in intent.changes:
        named.add(intent.changes["email"])
    return Reading(
        language=language,
        sender=headers.sender,
        auth=auth,
        intents=intents,
        from_words=from_words,
        intent=intent,
        named_addresses=frozenset(named),
        detail={"body": parsed.body_kind, "defects": sorted(parsed.defects)[:20], "truncated": parsed.truncated,
                "has_message_id": headers.has_message_id},
        subject=headers.subject[:MAX_SUBJECT_CHARS],
        own_words=own_words,
    )


def named_addresses(text: str) -> list[str]:
    """Address-like words of ``text``, look-alikes folded (NFKC: a full-width dot becomes a dot), normalised.

    A split on white space and brackets, so linear in the text, whatever it holds.
    """
    found: list[str] = []
    for word in text.translate(_TOKEN_SEPARATORS).split():
        if "@" not in word and "\uff20" not in word:
            continue
        folded = unicodedata.normalize("NFKC", word).strip(".!?*_-")
        if folded.lower().startswith("mailto"):
            folded = folded[6:]
        address = normalise_address(folded)
        if address is not None and address not in found:
            found.append(address)
    return found
