"""Who a message is from: the From header parsed as RFC 5322 says, and one normal form of an address (pure).

**Parse first, then decode.**  DMARC (RFC 7489 §3.1) authenticates the
domain of the address in the raw From header.  An RFC 2047 encoded word is
text only where RFC 2047 §5 allows it (a display name, a comment), and a
parser that decodes before it parses can be made to see another address
than DMARC did::

    From: =?utf-8?q?ivan=40mail.ru_=28?= <attacker@mail.ru> (=?utf-8?q?=29?=)

is ``attacker@mail.ru`` with an odd display name, never ``ivan@mail.ru``.
:func:`parse_mailboxes` therefore tokenises the raw (unfolded) header
value: comments are skipped, quoted strings are read with their escapes,
and an encoded word is just an atom, so it can never become an ``@``, a
``<`` or a comma.  Anything it cannot read exactly is no address at all.
The standard library offers no parser that fits: ``email.utils.getaddresses``
(before Python 3.11.10) splits ``a@b <c@d>`` into two addresses, and the
``email.policy.default`` header parser decodes encoded words inside a
local part (``=?utf-8?q?ivan?=@mail.ru`` becomes ``ivan@mail.ru``).

**One normal form** (:func:`normalise_address`), used for every address the
bot stores, looks up or compares:

- ASCII letters are lower-cased, in the local part too (every mail provider
  the shop's customers use treats local parts without regard to case);
- the domain is written in IDNA 2008 A-labels (``пример.рф`` →
  ``xn--e1afmkfd.xn--p1ai``), and a domain that does not survive the round
  trip unchanged is refused, so nothing is folded into something else;
- no look-alikes are folded: text that is not in Unicode NFC (the Kelvin
  sign ``K`` is not ``K``), full-width or ideographic dots (``mail．ru`` is
  not ``mail.ru``), controls, spaces and NUL make the address invalid rather
  than equal to another one.  A Cyrillic ``і`` stays a Cyrillic ``і``: a
  different address, which matches no one on file;
- a local part that holds an RFC 2047 encoded word (``=?utf-8?q?ivan?=``)
  is no address: RFC 2047 §5 forbids it there, and software that decodes it
  anyway would deliver to someone else.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import idna

MAX_HEADER_CHARS = 4096  # a From header longer than this is not parsed (RFC 5322 lines stop at 998)
MAX_ADDRESS_CHARS = 320
_SPECIALS = frozenset('()<>[]:;@\\,."')
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u0080-\U0010ffff]+"
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Mailbox:
    """One address of an address header, exactly as written (not yet normalised)."""

    addr_spec: str
    display_name: str  # raw: may hold encoded words, which are text and are decoded only for display


class _Unreadable(Exception):
    """The header is not a list of mailboxes this parser can read exactly."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "atom", "quoted", "literal" (a domain literal) or "special"
    text: str
    space_before: bool


def _tokens(value: str) -> list[_Token]:
    """RFC 5322 §3.2 lexical tokens; comments and folding white space are dropped."""
    out: list[_Token] = []
    i, n, space = 0, len(value), False
    while i < n:
        ch = value[i]
        if ch in " \t\r\n":
            i, space = i + 1, True
        elif ch == "(":
            depth, i = 1, i + 1
            while depth:
                if i >= n:
                    raise _Unreadable("unclosed comment")
                if value[i] == "\\":
                    i += 2
                    continue
                depth += {"(": 1, ")": -1}.get(value[i], 0)
                i += 1
            space = True
        elif ch == '"':
            text, i = _delimited(value, i + 1, '"')
            out.append(_Token("quoted", text, space))
            space = False
        elif ch == "[":
            text, i = _delimited(value, i + 1, "]")
            out.append(_Token("literal", text, space))
            space = False
        elif ch in _SPECIALS:
            out.append(_Token("special", ch, space))
            i, space = i + 1, False
        else:
            start = i
            while i < n and value[i] not in _SPECIALS and value[i] not in " \t\r\n":
                i += 1
            out.append(_Token("atom", value[start:i], space))
            space = False
    return out


def _delimited(value: str, i: int, closing: str) -> tuple[str, int]:
    chars: list[str] = []
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value):
            chars.append(value[i + 1])
            i += 2
            continue
        if ch == closing:
            return "".join(chars), i + 1
        chars.append(ch)
        i += 1
    raise _Unreadable("unclosed quoted string")


def _addr_spec(tokens: list[_Token]) -> str:
    """``local-part "@" domain`` from exactly these tokens, or _Unreadable."""
    at = [i for i, t in enumerate(tokens) if t.kind == "special" and t.text == "@"]
    if len(at) != 1:
        raise _Unreadable("not one @")
    local_tokens, domain_tokens = tokens[: at[0]], tokens[at[0] + 1 :]
    if len(local_tokens) == 1 and local_tokens[0].kind == "quoted":
        content = local_tokens[0].text
        # A quoted local part that is a plain dot-atom means the same as the unquoted one (RFC 5322 §3.4.1).
        escaped = content.replace("\\", "\\\\").replace('"', '\\"')
        local = content if _DOT_ATOM.fullmatch(content) else f'"{escaped}"'
    else:
        local = _dotted(local_tokens)
    if len(domain_tokens) == 1 and domain_tokens[0].kind == "literal":
        domain = f"[{domain_tokens[0].text}]"
    else:
        domain = _dotted(domain_tokens)
    return f"{local}@{domain}"


def _dotted(tokens: list[_Token]) -> str:
    """A dot-atom: atoms separated by single dots, nothing else."""
    if not tokens or len(tokens) % 2 == 0:
        raise _Unreadable("not a dot-atom")
    for index, token in enumerate(tokens):
        expected = "atom" if index % 2 == 0 else "special"
        if token.kind != expected or (expected == "special" and token.text != "."):
            raise _Unreadable("not a dot-atom")
    return "".join(t.text for t in tokens)


def _mailbox(tokens: list[_Token]) -> Mailbox:
    specials = [t.text for t in tokens if t.kind == "special"]
    if "<" not in specials:
        return Mailbox(_addr_spec(tokens), "")
    opening = next(i for i, t in enumerate(tokens) if t.kind == "special" and t.text == "<")
    if not (tokens[-1].kind == "special" and tokens[-1].text == ">"):
        raise _Unreadable("text after the angle address")
    phrase, inner = tokens[:opening], tokens[opening + 1 : -1]
    if any(t.kind == "special" and t.text not in "." for t in phrase):
        raise _Unreadable("special character in the display name")
    if any(t.kind == "special" and t.text in "<>" for t in inner):
        raise _Unreadable("nested angle brackets")
    if inner and inner[0].kind == "special" and inner[0].text == "@":
        # An obsolete source route (<@relay:user@host>) is not honoured: refuse rather than guess.
        raise _Unreadable("source route")
    display = "".join((" " if t.space_before and k else "") + t.text for k, t in enumerate(phrase))
    return Mailbox(_addr_spec(inner), display.strip())


def _split(tokens: list[_Token]) -> list[list[_Token]]:
    """Mailboxes of an address list; a group (``name: a, b;``) contributes its members."""
    parts: list[list[_Token]] = [[]]
    in_angle = False
    for token in tokens:
        if token.kind == "special" and token.text in "<>":
            in_angle = token.text == "<"
        if token.kind == "special" and not in_angle and token.text in ",;:":
            if token.text == ":":
                parts[-1] = []  # the group's name is no address
            else:
                parts.append([])
            continue
        parts[-1].append(token)
    return [p for p in parts if p]


def parse_mailboxes(raw_value: str) -> tuple[Mailbox, ...] | None:
    """The mailboxes of a raw address header value, or None when it cannot be read exactly."""
    if len(raw_value) > MAX_HEADER_CHARS:
        return None
    if any(unicodedata.category(c) == "Cc" and c not in "\t\r\n" for c in raw_value):
        return None
    try:
        return tuple(_mailbox(part) for part in _split(_tokens(raw_value)))
    except _Unreadable:
        return None


def normalise_domain(domain: str) -> str | None:
    """The domain in lower-case A-labels, or None when it is not a domain name written plainly."""
    domain = domain.removesuffix(".") if domain.endswith(".") and not domain.endswith("..") else domain
    if not domain or len(domain) > 253:
        return None
    if domain.isascii():
        ascii_domain = domain.translate(_ASCII_LOWER)
    else:
        if not unicodedata.is_normalized("NFC", domain):
            return None
        try:
            ascii_domain = idna.encode(domain.lower(), uts46=False).decode("ascii")
            # idna splits at full-width and ideographic dots too; a name that does not come
            # back as written was folded from look-alikes, and is refused.
            if idna.decode(ascii_domain) != domain.lower():
                return None
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LDH_LABEL.fullmatch(label) for label in labels):
        return None
    return ascii_domain


def normalise_address(address: str) -> str | None:
    """The one normal form of an address (see the module docstring), or None when it is not one."""
    if not address or len(address) > MAX_ADDRESS_CHARS or "@" not in address:
        return None
    local, _, domain = address.rpartition("@")
    if not local or any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in local):
        return None
    if "=?" in local and "?=" in local:
        return None  # an encoded word is never an address (some software would decode it, RFC 2047 §5 forbids it)
    if not local.isascii():
        if not unicodedata.is_normalized("NFC", local):
            return None
        local = local.lower()
    else:
        local = local.translate(_ASCII_LOWER)
    if not (_DOT_ATOM.fullmatch(local) or (local.startswith('"') and local.endswith('"') and len(local) > 2)):
        return None
    ascii_domain = normalise_domain(domain)
    if ascii_domain is None:
        return None
    return f"{local}@{ascii_domain}"


def sender_address(raw_from_values: tuple[str, ...]) -> tuple[str, ...]:
    """Normalised addresses of a message's From header(s); empty when it has none that can be trusted.

    Two From headers, or one that cannot be read exactly, give nothing: DMARC
    refuses to pick one of several From headers (RFC 7489 §6.6.1), and so does the bot.
    """
    if len(raw_from_values) != 1:
        return ()
    mailboxes = parse_mailboxes(raw_from_values[0])
    if not mailboxes:
        return ()
    found: list[str] = []
    for mailbox in mailboxes:
        address = normalise_address(mailbox.addr_spec)
        if address is None:
            return ()  # one unreadable address in the list: the sender is unknown
        if address not in found:
            found.append(address)
    return tuple(found)
