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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lxml import etree

MAX_HTML_CHARS = 2 * 1024 * 1024  # more HTML than this is not read (a person's letter is a few KB)
MAX_LINE_CHARS = 1000  # longer lines are kept as text, but never tested for attributions or separators

_BLOCK_TAGS = frozenset({
    "p", "div", "tr", "li", "ul", "ol", "table", "h1", "h2", "h3", "h4", "h5", "h6",
    "pre", "section", "article", "header", "footer", "address", "hr", "dd", "dt", "blockquote", "body",
})
_DROPPED_TAGS = frozenset({"script", "style", "head", "title", "noscript", "template"})
# Quoted history that mail clients mark in HTML: Gmail, Yahoo, Apple Mail, Thunderbird, Outlook, Mail.ru.
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_extra", "yahoo_quoted", "moz-cite-prefix"})
# Outlook puts the quoted message after one of these markers, as siblings: the marker and all that follows go.
_HISTORY_MARKER_IDS = frozenset({"divRplyFwdMsg", "appendonsend"})


def _is_quote(element: etree._Element) -> bool:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag == "blockquote":
        return True
    return tag == "div" and not _QUOTE_CLASSES.isdisjoint((element.get("class") or "").split())


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: scripts, styles and quoted history dropped.

    libxml2 (through lxml) parses in linear time and stops descending at a
    fixed depth, whatever the markup; the standard library's ``html.parser``
    is quadratic on inputs such as ``<a<a<a…`` (CPython 3.11), and a
    BeautifulSoup tree took quadratic time for 20,000 nested ``<div>`` elements.
    The tree is then walked once.
    """
    if not html.strip():
        return ""
    from lxml import etree  # only for HTML bodies

    parser = etree.HTMLParser(recover=True, no_network=True, remove_comments=True, remove_pis=True, encoding="utf-8")
    try:
        root = etree.fromstring(html[:MAX_HTML_CHARS].encode("utf-8", "replace"), parser)
    except (etree.LxmlError, ValueError):
        return ""
    if root is None:
        return ""
    dropped: set[etree._Element] = set()
    for element in root.iter():
        if element.get("id") in _HISTORY_MARKER_IDS and element not in dropped:
            dropped.add(element)
            dropped.update(element.itersiblings())
    out: list[str] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if element in dropped or tag in _DROPPED_TAGS or _is_quote(element):
                walker.skip_subtree()
                continue
            if tag in _BLOCK_TAGS or tag == "br":
                out.append("\n")
            if element.text:
                out.append(element.text)
        else:
            skipped = element in dropped or tag in _DROPPED_TAGS or _is_quote(element)
            if tag in _BLOCK_TAGS and not skipped:
                out.append("\n")
            if element.tail and element is not root:
                out.append(element.tail)
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(out).splitlines())
    # Block boundaries leave runs of empty lines; the text is read line by line, so one newline is enough.
    return "\n".join(line for line in lines if line)


_SPACES = re.compile(r"[ \t\u00a0\u200b]+")


# Attribution lines ("On … wrote:"), one pattern per client family.  Every pattern is linear in the
# line: a fixed word, then bounded white space; "ends with a colon" is a string test, never ".*:$", and
# the Mail.ru form "… от Имя <a@b>:" is read by hand (a regex for it was n⁴ on " от <@" repeated).
_WROTE_EN = re.compile(r"(?:wrote|schrieb|a écrit)\s*:?$", re.IGNORECASE)
_WROTE_EN_START = re.compile(r"(?:on|am|le)\s", re.IGNORECASE)
_WROTE_RU_KK = re.compile(r"(?:написал|написала|написал\(а\)|пишет|писал\(а\)|писал|жазды|жазған)\s*:$",
                          re.IGNORECASE)
_GMAIL_RU = re.compile(r"г\.\s{0,3}(?:в|,)\s{0,3}\d{1,2}:\d{2}", re.IGNORECASE)
_MAILRU_DATE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{2,4},?\s{1,3}(?:в\s{1,3})?\d{1,2}:\d{2}", re.IGNORECASE)


def _is_wrote_line(line: str) -> bool:
    if len(line) > MAX_LINE_CHARS:
        return False
    if _WROTE_EN_START.match(line) and _WROTE_EN.search(line):
        return True
    if not line.endswith(":"):
        return False
    return bool(_WROTE_RU_KK.search(line) or _GMAIL_RU.search(line) or _MAILRU_DATE.match(line)
                or _from_address_attribution(line))


def _from_address_attribution(line: str) -> bool:
    """«… от Имя <a@b>:» — the line ends in ``<address>:``, and « от » stands before the ``<``."""
    head = line[:-1].rstrip()
    if not head.endswith(">"):
        return False
    opening = head.rfind("<")
    address = head[opening + 1 : -1]
    if opening < 0 or "@" not in address or any(c.isspace() or c in "<>" for c in address):
        return False
    before = head[:opening].lower()
    return any(f"{a}от{b}" in before for a in " \t" for b in " \t")


# A line that may start an attribution wrapped over two lines.
_ATTRIBUTION_START = re.compile(r"@|\d{1,2}[./]\d{1,2}[./]\d{2,4}|^on\s", re.IGNORECASE)
_SEPARATOR = re.compile(
    r"^\s*[-_=]{2,}\s*(original message|forwarded message|исходное сообщение|"
    r"пересылаемое сообщение|оригинальное сообщение|переадресованное сообщение|"
    r"бастапқы хабарлама|жіберілген хабарлама)\s*[-_=]{2,}\s*$"
    r"|^\s*_{10,}\s*$",
    re.IGNORECASE,
)
# "**From:**": optional stars around the word.  One white-space run per gap (never "\s*\**\s*", whose two
# runs split a long run of spaces in quadratically many ways).
_OUTLOOK_FROM = re.compile(r"^\s*(?:\*+\s*)?(?:from|от|кімнен|кімде)\s*(?:\*+\s*)?:", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\s*(?:\*+\s*)?(?:sent|date|to|subject|cc|отправлено|дата|кому|тема|копия|"
    r"жіберілді|күні|кімге|тақырыбы)\s*(?:\*+\s*)?:",
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
    following = [line for line in lines[index + 1 : index + 5] if line.strip() and len(line) <= MAX_LINE_CHARS]
    return any(_OUTLOOK_NEXT.match(line) for line in following)


def _attribution_length(lines: list[str], index: int) -> int:
    """How many lines the attribution ("On … wrote:") starting here spans: 0, 1 or 2."""
    line = lines[index].strip()
    if _is_wrote_line(line):
        return 1
    if index + 1 >= len(lines) or len(line) > MAX_LINE_CHARS or not _ATTRIBUTION_START.search(line):
        return 0
    following = lines[index + 1].strip()
    return 2 if following and _is_wrote_line(f"{line} {following}") else 0


def _next_text_line(lines: list[str], start: int) -> str:
    # By index, never a slice: a slice per attribution line copied the rest of the letter each time (quadratic).
    for index in range(start, len(lines)):
        stripped = lines[index].strip()
        if stripped:
            return stripped
    return ""


def reply_text(body: str, *, through_signatures: bool = False) -> str:
    """The part of ``body`` the sender wrote now, without quotes, history or signature.

    ``>``-quoted lines are dropped.  An attribution line ("On … wrote:")
    followed by quoted lines is dropped too and reading goes on, so answers
    written under or between quoted lines (bottom-posting, inline replies)
    are kept; an attribution followed by unquoted text ends the reply, since
    that text is history that was not marked as a quote.  An answer written
    under a quoted, empty line of our fill-in form ("> Телефон:") is read as
    that field.

    ``through_signatures``: everything the person may have written, for a
    reader looking for a "no": a signature line ("Sent from my iPhone", "--",
    «С уважением») does not end the reading, and the line that starts the
    history ("Нет, это не я вам писал:") is kept too.
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
        if not stripped:
            kept.append("")
            continue
        if stripped.startswith(">"):
            label = _QUOTED_EMPTY_LABEL.match(stripped) if len(stripped) <= MAX_LINE_CHARS else None
            pending_label = label.group(1) if label else None
            continue
        if len(stripped) > MAX_LINE_CHARS:  # no client writes a quote header this long: it is text
            pending_label = None
            kept.append(line.rstrip())
            continue
        attribution = _attribution_length(lines, index)
        if attribution:
            if not _next_text_line(lines, index + attribution).startswith(">"):
                if through_signatures:
                    kept.append(line.rstrip())
                break
            skip = attribution - 1
            continue
        if _SEPARATOR.match(stripped) or _is_outlook_block(lines, index):
            if through_signatures:
                kept.append(line.rstrip())
            break
        if not through_signatures and (_SIGNATURE.match(line) or _SENT_FROM.match(stripped)):
            break
        if pending_label and ":" not in stripped:
            line = f"{pending_label}: {stripped}"
        pending_label = None
        kept.append(line.rstrip())
    while kept and _ONLY_RULE.match(kept[-1]):
        kept.pop()
    return "\n".join(kept).strip()
