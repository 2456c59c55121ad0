"""Turning the bytes of real mail into text, whatever their charset claims.

Russian mail arrives in UTF-8, windows-1251 and KOI8-R, often unlabelled or
mislabelled, and sometimes with raw 8-bit bytes in a header where RFC 2047
words belong (mail-parser then returns an empty subject; see
library-notes 2.4).  The rules here:

1. a declared charset that decodes the bytes cleanly wins;
2. otherwise valid UTF-8 wins;
3. otherwise, if the bytes read as Cyrillic in windows-1251 or KOI8-R, the
   one that yields more lower-case letters wins (ordinary text is mostly
   lower case, and each of the two encodings read as the other turns into
   mostly capitals);
4. otherwise charset-normalizer guesses; latin-1 is the last resort, because
   it decodes every byte and never raises.
"""

from __future__ import annotations

import codecs
import re
from email.header import decode_header

from charset_normalizer import from_bytes

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_CYRILLIC_LOWER = re.compile(r"[\u0430-\u045F\u04D9\u0493\u049B\u04A3\u04E9\u04B1\u04AF\u04BB\u0456]")
_FOLD = re.compile(r"\r?\n[ \t]+")
MAX_HEADER_TEXT = 4096  # a Subject longer than this is cut before decoding; markers stand at its start
_NOT_CHARSETS = frozenset({"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined"})


def known_charset(name: str | None) -> str | None:
    """The Python text codec for a MIME charset label, or None when there is none.

    ``codecs.lookup`` also knows ``rot13``, ``base64``, ``hex``, ``zlib`` and
    other codecs that are not character sets, and decoding text with them
    raises.  A label is a charset only if ``bytes.decode`` accepts it, and
    the IDNA codecs are refused too: they decode host names, not text.
    """
    if not name:
        return None
    label = name.strip().strip('"').lower()[:40]
    aliases = {"cp-1251": "cp1251", "win-1251": "cp1251", "x-cp1251": "cp1251", "utf8": "utf-8"}
    label = aliases.get(label, label)
    try:
        codec = codecs.lookup(label).name
        b"a".decode(codec)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return None
    return None if codec in _NOT_CHARSETS else codec

# Controls (C0 but tab, DEL, C1) and lone surrogates: what no stored or displayed text may carry.
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` fit to store and show: controls (NUL, newlines, …) become spaces, lone surrogates U+FFFD."""
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub(" ", text))


def _cyrillic_guess(data: bytes) -> str | None:
    best: tuple[int, str] | None = None
    for codec in ("cp1251", "koi8_r"):
        text = data.decode(codec, errors="replace")
        letters = len(_CYRILLIC.findall(text))
        if letters < max(1, sum(b > 127 for b in data) // 2):
            continue
        lower = len(_CYRILLIC_LOWER.findall(text))
        if best is None or lower > best[0]:
            best = (lower, text)
    return best[1] if best else None


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Decode ``data`` following the module rules; never raises."""
    codec = known_charset(declared)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError):  # a codec may refuse bytes in ways of its own
            pass
    if all(b < 128 for b in data):
        return data.decode("ascii")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    cyrillic = _cyrillic_guess(data)
    if cyrillic is not None:
        return cyrillic
    guess = from_bytes(data).best()
    if guess is not None:
        return str(guess)
    return data.decode("latin-1")


def decode_header_text(value: str) -> str:
    """Decode a raw header value (as read by the compat32 parser) into clean text.

    The parser keeps 8-bit header bytes as surrogate escapes; those are
    recovered and decoded by :func:`decode_bytes`.  RFC 2047 encoded words
    are decoded with their charset, falling back the same way when the
    charset is unknown or lies.
    """
    value = _FOLD.sub(" ", value)[:MAX_HEADER_TEXT]
    if "=?" not in value and value.isascii():
        return clean_text(value).strip()  # the common case: nothing to decode
    raw = value.encode("ascii", "surrogateescape")
    if any(b > 127 for b in raw):
        value = decode_bytes(raw)
    try:
        parts = decode_header(value)
    except Exception:  # a malformed encoded word must not lose the rest of the header
        return clean_text(value).strip()
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            # decode_header hands back unencoded runs as raw-unicode-escape bytes.
            out.append(chunk.decode("raw-unicode-escape"))
        else:
            out.append(decode_bytes(chunk, charset))
    return clean_text("".join(out)).strip()
