"""The person's own words: HTML to text, and quoted history and signatures removed.

Written here rather than taken from a reply-stripping library: the
maintained one (mail-parser-reply) knows no Russian or Kazakh and its
signature rule cuts at any line starting with ``- word``, which is how people
write lists of fields; see library-notes §3 and the README.

The rule is conservative in one direction only: text after the first
attribution line ("On … wrote:", «… написал(а):», Outlook's From/Sent block,
"-----Original Message-----", a "-- " signature, "Sent from my iPhone") is
dropped, and ``>``-quoted lines are dropped wherever they are.  Values found
only in quoted history are therefore never applied: they may be old, or
someone else's.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

_BLOCK_TAGS = (
    "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "pre", "section", "article", "header", "footer", "address", "hr", "dd", "dt",
)
# Quoted history that mail clients mark in HTML: Gmail, Yahoo, Apple Mail, Outlook, Mail.ru.
_HTML_QUOTE_SELECTORS = (
    "blockquote",
    "div.gmail_quote",
    "div.gmail_extra",
    "div.yahoo_quoted",
    "div#divRplyFwdMsg",
    "div#divRplyFwdMsg ~ *",
    "div#appendonsend ~ *",
    "div.moz-cite-prefix",
)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: scripts, styles and quoted history dropped."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "head", "title", "noscript", "template"]):
        tag.decompose()
    for selector in _HTML_QUOTE_SELECTORS:
        for tag in soup.select(selector):
            if isinstance(tag, Tag) and not tag.decomposed:
                tag.decompose()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCK_TAGS):
        block.insert_before("\n")
        block.insert_after("\n")
    text = soup.get_text()
    lines = [re.sub(r"[ \t\u00a0\u200b]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_WROTE_LINE = re.compile(
    r"""(
        ^(on|am|le)\s.+\s(wrote|schrieb|a\ écrit)\s*:?$          # English and kin
      | (написал|написала|написал\(а\)|пишет|писал\(а\)|писал)\s*:$   # Russian
      | (жазды|жазған|деп\sжазды)\s*:$                             # Kazakh
      | г\.\s*(в|,)\s*\d{1,2}:\d{2}.*:$                            # Gmail in Russian
      | ^\d{1,2}\.\d{1,2}\.\d{2,4},?\s+(в\s+)?\d{1,2}:\d{2}.*:$    # Mail.ru, Yandex
      | \sот\s.*<[^>]+@[^>]+>\s*:$                                 # «… от Имя <a@b>:»
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_SEPARATOR = re.compile(
    r"^\s*[-_=]{2,}\s*(original message|forwarded message|исходное сообщение|"
    r"пересылаемое сообщение|оригинальное сообщение|переадресованное сообщение|"
    r"бастапқы хабарлама|жіберілген хабарлама)\s*[-_=]{2,}\s*$"
    r"|^\s*_{10,}\s*$",
    re.IGNORECASE,
)
_OUTLOOK_FROM = re.compile(r"^\s*\**\s*(from|от|кімнен|кімде)\s*\**\s*:", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*\**\s*(sent|date|to|subject|cc|отправлено|дата|кому|тема|копия|"
    r"жіберілді|күні|кімге|тақырыбы)\s*\**\s*:",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^--\s?$")
_SENT_FROM = re.compile(
    r"^\s*(sent from my|sent from mail|get outlook for|отправлено с|отправлено из|"
    r"отправлено через|с уважением,?$|best regards,?$|kind regards,?$|regards,?$|"
    r"құрметпен,?$|менің .*жіберілді)",
    re.IGNORECASE,
)


def _is_outlook_block(lines: list[str], index: int) -> bool:
    if not _OUTLOOK_FROM.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 5] if line.strip()]
    return any(_OUTLOOK_NEXT.match(line) for line in following)


def reply_text(body: str) -> str:
    """The part of ``body`` the sender wrote now, without quotes, history or signature."""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">"):
            continue
        joined = f"{stripped} {lines[index + 1].strip()}" if index + 1 < len(lines) else stripped
        if (
            _WROTE_LINE.search(stripped)
            or (stripped and not stripped.endswith(":") and _WROTE_LINE.search(joined)
                and len(stripped) > 15 and stripped.lower().startswith("on "))
            or _SEPARATOR.match(stripped)
            or _SIGNATURE.match(line.rstrip("\n"))
            or _SENT_FROM.match(stripped)
            or _is_outlook_block(lines, index)
        ):
            break
        kept.append(line.rstrip())
    return "\n".join(kept).strip()
