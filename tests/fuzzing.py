"""A seeded mutator of real-world mail (``../shared/corpora``), shared by ``tests/test_fuzz.py`` and ``bench/fuzz.py``.

Mutations are the classes of broken input the bot must survive: bit flips,
truncation, mis-nested and unterminated MIME, random encoded words in random
(also non-text) charsets, NULs and other controls, huge lines, forged
trust headers below the MX's line, and — so that the request path is
exercised too — a request marker in the subject and a known user's address
in From.  The same seed gives the same messages.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

CHARSETS = ("utf-8", "koi8-r", "windows-1251", "rot13", "base64", "hex", "x-unknown", "utf-7", "idna", "utf-16")
MARKERS = ("Personal data update", "Отзыв согласия на обработку персональных данных", "Отписаться",
           "Дербес деректерді жаңарту", "Withdrawal of consent")


def corpus_messages(corpora: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(corpora.rglob("*")) if p.is_file() and p.name != "README.md"]


def _split(data: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        index = data.find(sep)
        if index >= 0:
            return data[:index], data[index + len(sep):]
    return data, b""


def _join(header: bytes, body: bytes) -> bytes:
    return header + b"\r\n\r\n" + body


def _set_header(data: bytes, name: bytes, value: bytes) -> bytes:
    header, body = _split(data)
    lines = [line for line in header.splitlines() if not line.lower().startswith(name.lower() + b":")]
    return _join(b"\r\n".join([*lines, name + b": " + value]), body)


def bit_flips(data: bytes, rng: random.Random, _users: list[str]) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 20)):
        if buffer:
            buffer[rng.randrange(len(buffer))] ^= 1 << rng.randrange(8)
    return bytes(buffer)


def truncate(data: bytes, rng: random.Random, _users: list[str]) -> bytes:
    return data[: rng.randint(0, len(data))]


def misnest_mime(data: bytes, rng: random.Random, _users: list[str]) -> bytes:
    header, body = _split(data)
    boundary = f"b{rng.randrange(10**6)}".encode()
    parts = [b"--" + boundary + b"\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + b"\"\r\n\r\n"
             for _ in range(rng.randint(1, 60))]
    closing = b"" if rng.random() < 0.5 else b"--" + boundary + b"--\r\n"
    header = header + b"\r\nContent-Type: multipart/mixed; boundary=\"" + boundary + b"\""
    return _join(header, b"".join(parts) + body + closing)


def encoded_words(data: bytes, rng: random.Random, _users: list[str]) -> bytes:
    charset = rng.choice(CHARSETS).encode()
    word = b"=?" + charset + b"?" + rng.choice([b"q", b"b", b"Q", b"x"]) + b"?" + bytes(
        rng.choice(b"abcXYZ=40_3D?2C<>@") for _ in range(rng.randint(0, 40))) + b"?="
    name = rng.choice([b"Subject", b"From", b"X-Note", b"Authentication-Results", b"Received", b"Message-ID",
                       b"Content-Type", b"References"])
    header, body = _split(data)
    return _join(header + b"\r\n" + name + b": " + word + b" " + word, body)


def controls(data: bytes, rng: random.Random, _users: list[str]) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 10)):
        buffer.insert(rng.randrange(len(buffer) + 1), rng.choice([0, 1, 8, 11, 12, 27, 127, 0xED, 0xA0, 0x80]))
    return bytes(buffer)


def huge_line(data: bytes, rng: random.Random, _users: list[str]) -> bytes:
    header, body = _split(data)
    line = bytes(rng.choice(b" a<>@:=?-") for _ in range(16)) * rng.randint(1_000, 20_000)
    if rng.random() < 0.5:
        return _join(header + b"\r\nX-Long: " + line, body)
    return _join(header, body + b"\r\n" + line + b"\r\n")


def forged_trust(data: bytes, rng: random.Random, _users: list[str]) -> bytes:
    """Trust headers the sender wrote: they end up below the MX's Received line, where nothing counts."""
    header, body = _split(data)
    forged = rng.choice([
        b"Authentication-Results: mx.smarthings.kz; dmarc=pass header.from=example.ru",
        b"Authentication-Results: mx.smarthings.kz; dkim=pass header.d=example.ru",
        b"Received: from a by mx.smarthings.kz; Wed, 25 Nov 2026 10:00:00 +0500",
    ])
    return _join(forged + b"\r\n" + header, body)


def as_request(data: bytes, rng: random.Random, users: list[str]) -> bytes:
    data = _set_header(data, b"Subject", rng.choice(MARKERS).encode())
    if rng.random() < 0.7:
        data = _set_header(data, b"From", rng.choice(users).encode())
    if rng.random() < 0.5:
        header, body = _split(data)
        data = _join(header, b"\xd0\xa2\xd0\xb5\xd0\xbb\xd0\xb5\xd1\x84\xd0\xbe\xd0\xbd: 8 701 765 43 21\r\n"
                             b"E-mail: attacker@example.org\r\n" + body)
    return data


MUTATIONS: tuple[Callable[[bytes, random.Random, list[str]], bytes], ...] = (
    bit_flips, truncate, misnest_mime, encoded_words, controls, huge_line, forged_trust, as_request,
)


def mutated(corpus: list[bytes], seed: int, count: int, users: list[str], mutate: bool = True) -> list[bytes]:
    """``count`` cases drawn from ``corpus``, each with one to three mutations (none: the benchmark's reference)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        data = rng.choice(corpus)
        for mutation in rng.sample(MUTATIONS, rng.randint(1, 3)) if mutate else ():
            data = mutation(data, rng, users)
        cases.append(data)
    return cases
