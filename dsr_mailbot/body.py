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
# Siblings first: once the marker itself is gone, "marker ~ *" finds nothing.
_HTML_QUOTE_SELECTORS = (
    "div#divRplyFwdMsg ~ *",
    "div#appendonsend ~ *",
    "div#divRplyFwdMsg",
    "blockquote",
    "div.gmail_quote",
    "div.gmail_extra",
    "div.yahoo_quoted",
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
    # Block boundaries leave runs of empty lines; the text is read line by line, so one newline is enough.
    return "\n".join(line for line in lines if line)


_WROTE_LINE = re.compile(
    r"""(
        ^(on|am|le)\s.+?(wrote|schrieb|a\ écrit)\s*:?$            # English and kin
      | (написал|написала|написал\(а\)|пишет|писал\(а\)|писал)\s*:$   # Russian
      | (жазды|жазған|деп\sжазды)\s*:$                             # Kazakh
      | г\.\s*(в|,)\s*\d{1,2}:\d{2}.*:$                            # Gmail in Russian
      | ^\d{1,2}\.\d{1,2}\.\d{2,4},?\s+(в\s+)?\d{1,2}:\d{2}.*:$    # Mail.ru, Yandex
      | \sот\s.*<[^>]+@[^>]+>\s*:$                                 # «… от Имя <a@b>:»
    )""",
    re.IGNORECASE | re.VERBOSE,
)
# A line that may start an attribution wrapped over two lines.
_ATTRIBUTION_START = re.compile(r"@|\d{1,2}[./]\d{1,2}[./]\d{2,4}|^on\s", re.IGNORECASE)
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
    r"^\s*(sent from my|sent from mail|sent with|get outlook for|отправлено с|отправлено из|"
    r"отправлено через|с уважением,?$|best regards,?$|kind regards,?$|regards,?$|"
    r"құрметпен,?$|менің .*жіберілді)",
    re.IGNORECASE,
)
# "> Телефон:" — a label of our fill-in form, quoted with its value left empty.
_QUOTED_EMPTY_LABEL = re.compile(r"^>[>\s]*([^\W\d][\w .\-]{0,40}?)\s*:\s*$")
_ONLY_RULE = re.compile(r"^[\s\-_=*]*$")


def _is_outlook_block(lines: list[str], index: int) -> bool:
    if not _OUTLOOK_FROM.match(lines[index]):
        return False
    following = [line for line in lines[index + 1 : index + 5] if line.strip()]
    return any(_OUTLOOK_NEXT.match(line) for line in following)


def _attribution_length(lines: list[str], index: int) -> int:
    """How many lines the attribution ("On … wrote:") starting here spans: 0, 1 or 2."""
    line = lines[index].strip()
    if _WROTE_LINE.search(line):
        return 1
    if index + 1 >= len(lines) or not _ATTRIBUTION_START.search(line):
        return 0
    following = lines[index + 1].strip()
    return 2 if following and _WROTE_LINE.search(f"{line} {following}") else 0


def _next_text_line(lines: list[str], start: int) -> str:
    return next((line.strip() for line in lines[start:] if line.strip()), "")


def reply_text(body: str) -> str:
    """The part of ``body`` the sender wrote now, without quotes, history or signature.

    ``>``-quoted lines are dropped.  An attribution line ("On … wrote:")
    followed by quoted lines is dropped too and reading goes on, so answers
    written under or between quoted lines (bottom-posting, inline replies)
    are kept; an attribution followed by unquoted text ends the reply, since
    that text is history that was not marked as a quote.  An answer written
    under a quoted, empty line of our fill-in form ("> Телефон:") is read as
    that field.
    """
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    pending_label: str | None = None
    skip = 0
    for index, line in enumerate(lines):
        if skip:
            skip -= 1
            continue
        stripped = line.strip()
        if stripped.startswith(">"):
            label = _QUOTED_EMPTY_LABEL.match(stripped)
            pending_label = label.group(1) if label else None
            continue
        attribution = _attribution_length(lines, index)
        if attribution:
            if not _next_text_line(lines, index + attribution).startswith(">"):
                break
            skip = attribution - 1
            continue
        if (
            _SEPARATOR.match(stripped)
            or _SIGNATURE.match(line)
            or _SENT_FROM.match(stripped)
            or _is_outlook_block(lines, index)
        ):
            break
        if stripped and pending_label and ":" not in stripped:
            line = f"{pending_label}: {stripped}"
        if stripped:
            pending_label = None
        kept.append(line.rstrip())
    while kept and _ONLY_RULE.match(kept[-1]):
        kept.pop()
    return "\n".join(kept).strip()
